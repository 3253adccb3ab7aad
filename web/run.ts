// The page's run, shared with the browser test's Node side so that both compute from the same inputs with the same
// code: FCPTS on a bundled model from its safetensors bytes and a calibration subset given as arrays, then the exact
// global sparsity counted from the pruned weights and top-1 on a held-out subset. The backend is the caller's:
// gpujs (WebGL) in the page, the cpu backend in Node; with a device backend the models are moved onto it.

import { backend, fromStorage, noGrad, type Backend } from '../core/index.js';
import { buildBundledArch, bundledModelSpec } from '../experiments/models/index.js';
import { parseSafetensors } from '../nn/io/safetensors.js';
import { fcpts } from '../sparsity/fcpts.js';
import type { StepLog } from '../sparsity/distill.js';
import { copyModel } from '../sparsity/prune.js';
import { prunableLayers } from '../sparsity/prunable.js';

const IMAGE = 28 * 28;

/** Images [n, 1, 28, 28] (normalised float32, row-major) and their labels. */
export interface ImageSet {
  readonly images: Float32Array;
  readonly labels: Uint8Array;
}

/** The page's image files (web/build.ts writes them): uint32 count, count x 784 float32 images, count uint8 labels. */
export function parseImageSet(b: Uint8Array): ImageSet {
  const n = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  const images = new Float32Array(b.buffer.slice(b.byteOffset + 4, b.byteOffset + 4 + n * IMAGE * 4));
  return { images, labels: b.slice(4 + n * IMAGE * 4, 4 + n * IMAGE * 4 + n) };
}

export interface PageRunOptions {
  model: string;
  weights: Uint8Array;
  calib: ImageSet;
  test: ImageSet;
  sparsity: number;
  iters: number;
  batchSize: number;
  onStep?: (log: StepLog) => void | Promise<void>;
}

export interface PageResult {
  model: string;
  backend: string;
  targetSparsity: number;
  iters: number;
  /** Zero weights of the prunable layers over their size, counted from the weights after pruning. */
  sparsity: number;
  zeros: number;
  prunable: number;
  layers: { name: string; sparsity: number }[];
  top1: number;
  testImages: number;
  history: StepLog[];
}

/** Images i0..i1 of a set as a [n, 1, 28, 28] tensor. */
const batchOf = (s: ImageSet, i0: number, i1: number) => fromStorage(s.images.slice(i0 * IMAGE, i1 * IMAGE), [i1 - i0, 1, 28, 28]);

export async function runFcpts(o: PageRunOptions): Promise<PageResult> {
  const b: Backend = backend();
  const spec = bundledModelSpec(o.model);
  const arch = () => buildBundledArch(spec);
  const model = arch();
  model.loadStateDict(parseSafetensors(o.weights, `${o.model}/model.safetensors`).tensors);
  model.eval();
  const teacher = copyModel(model, arch);
  for (const p of teacher.parameters()) p.requiresGrad = false;
  teacher.eval();
  if (b.upload) {
    model.moveTo(b);
    teacher.moveTo(b);
  }
  const n = o.calib.labels.length;
  const history: StepLog[] = [];
  await fcpts(
    {
      model,
      teacher,
      calibSize: n,
      // the calibration subset in order, wrapping around
      batch: async (step) => {
        const i0 = (step * o.batchSize) % n;
        return batchOf(o.calib, i0, Math.min(i0 + o.batchSize, n));
      },
      onStep: async (log) => {
        history.push(log);
        await o.onStep?.(log);
      },
    },
    { sparsity: o.sparsity, iters: o.iters, batchSize: o.batchSize },
  );
  model.eval();
  const layers = prunableLayers(model, {});
  let zeros = 0, prunable = 0;
  const perLayer = layers.map((l) => {
    const w = l.weight.toArray();
    let z = 0;
    for (let i = 0; i < w.length; i++) if (w[i] === 0) z++;
    zeros += z;
    prunable += w.length;
    return { name: l.name, sparsity: z / w.length };
  });
  let correct = 0;
  const m = o.test.labels.length;
  for (let i0 = 0; i0 < m; i0 += 100) {
    const i1 = Math.min(i0 + 100, m);
    const pred = noGrad(() => model.call(batchOf(o.test, i0, i1)).argmax(1)).toArray();
    for (let i = i0; i < i1; i++) if (pred[i - i0] === o.test.labels[i]) correct++;
  }
  return {
    model: o.model, backend: b.name, targetSparsity: o.sparsity, iters: o.iters,
    sparsity: zeros / prunable, zeros, prunable, layers: perLayer, top1: (100 * correct) / m, testImages: m, history,
  };
}
