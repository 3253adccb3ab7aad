// The page's run, shared by the page (on gpu.js WebGL in the tab, or the wasm cpu backend in its Web Worker) and by
// the browser test's Node side, so that all of them compute from the same inputs with the same code: one of the
// page's bundled models (PAGE_MODELS) from its safetensors bytes, the dense model's top-1, then each method through sparsity/prune.ts exactly as a
// CLI cell runs it (FCPTS, and ERK and LAMP with BatchNorm re-calibration), each cell's result.json assembled by the
// CLI's own function (experiments/cell-result.ts). The backend is the caller's; with a device backend the models are
// moved onto it. Everything runPage reports goes through `emit` as structured-cloneable events (a worker posts them).

import { backend } from '../core/index.js';
import { cellResult, type CellResult } from '../experiments/cell-result.js';
import { buildBundledArch, bundledModelSpec } from '../experiments/models/index.js';
import { ArrayDataset } from '../nn/data/array-dataset.js';
import { DataError, type Dataset } from '../nn/data/types.js';
import { parseSafetensors } from '../nn/io/safetensors.js';
import type { Module } from '../nn/index.js';
import { evaluate } from '../nn/train/evaluate.js';
import { evalTransform, trainTransform } from '../nn/train/setup.js';
import type { StepLog } from '../sparsity/distill.js';
import { modelMacs } from '../sparsity/macs.js';
import { prunableLayers } from '../sparsity/prunable.js';
import { prune, type PruneConfig } from '../sparsity/prune.js';

/** Bytes of one 28x28 grey image. */
export const IMAGE = 28 * 28;
/** The bundled models the page offers (all take 28x28 grey images), the first the default. */
export const PAGE_MODELS = ['fmnist-resnet20', 'mnist-resnet20', 'fmnist-mobilenetv2'] as const;
export type PageModel = (typeof PAGE_MODELS)[number];
export const PAGE_MODEL: PageModel = PAGE_MODELS[0];
type PageDataset = 'fashion-mnist' | 'mnist';

/** A page model's dataset, checked: the page ships 28x28 grey image files for these two only. */
export function pageDataset(model: string): PageDataset {
  const d = bundledModelSpec(model).dataset;
  if (d !== 'fashion-mnist' && d !== 'mnist') throw new DataError(`the page has no image files for ${model}'s dataset ${d} (only fashion-mnist and mnist)`);
  return d;
}

/** Where the page's files for a model lie, relative to the page (web/build.ts writes them there). */
export function pageFiles(model: string): { weights: string; calib: string; test: string } {
  const d = pageDataset(model);
  return { weights: `models/${model}.safetensors`, calib: `data/${d}-calib.bin`, test: `data/${d}-test.bin` };
}
/** The methods the page offers: FCPTS and two one-shot baselines, which get BatchNorm re-calibration. */
export const PAGE_METHODS = ['fcpts', 'erk', 'lamp'] as const;
export type PageMethod = (typeof PAGE_METHODS)[number];

// class names (nn/data's dataset modules read files; the page only needs the names)
const CLASSES: Record<PageDataset, string[]> = {
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
};

/** 28x28 grey images (uint8, row-major) and their labels. */
export interface ImageSet {
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
}

/** The page's image files (web/build.ts writes them): uint32 count, count x 784 uint8 pixels, count uint8 labels. */
export function parseImageSet(b: Uint8Array, file: string): ImageSet {
  const n = b.length >= 4 ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true) : -1;
  if (n < 0 || b.length !== 4 + n * (IMAGE + 1)) {
    throw new DataError(`${file}: ${b.length} bytes is not an image set (uint32 count, then count x ${IMAGE} pixel bytes and count labels${n >= 0 ? `: ${4 + n * (IMAGE + 1)} bytes for ${n} images` : ''})`);
  }
  return { pixels: b.slice(4, 4 + n * IMAGE), labels: b.slice(4 + n * IMAGE) };
}

export interface PageRunOptions {
  model: string;
  weights: Uint8Array;
  calib: ImageSet;
  test: ImageSet;
  sparsity: number;
  /** FCPTS iterations. */
  iters: number;
  batchSize: number;
  methods: readonly PageMethod[];
  /** What result.json records as `version` and `commit` (the page: its build's; Node: the checkout's). */
  build: { version: string; commit: string | null };
  /** Cells finished earlier (a run resumed after a lost context, a reload or a switch of engine): not run again. */
  done?: readonly CellResult[];
  /** Evaluate on the first this many held-out images (default all of o.test; software WebGL is slow). */
  evalImages?: number;
  /** The dense model's top-1 when already known (a resumed run). */
  denseTop1?: number;
}

export type PageEvent =
  | { kind: 'status'; text: string }
  | { kind: 'dense'; top1: number; evalImages: number }
  | { kind: 'begin'; method: PageMethod; layers: { name: string; params: number }[] }
  /** One FCPTS iteration: its log and each layer's sparsity S_l in that iteration (layer order of 'begin'). */
  | { kind: 'step'; method: PageMethod; log: StepLog; layers: number[] }
  | { kind: 'cell'; result: CellResult; history: StepLog[] };

export interface PageReport {
  denseTop1: number;
  cells: CellResult[];
}

/** The prune() config of one of the page's cells: the CLI's keys, with the page's schedule. */
export function pageConfig(method: PageMethod, o: Pick<PageRunOptions, 'sparsity' | 'iters' | 'batchSize' | 'calib'>): PruneConfig {
  const common = { method, sparsity: o.sparsity, seed: 0, calib: o.calib.labels.length, batchSize: o.batchSize };
  return method === 'fcpts' ? { ...common, iters: o.iters } : { ...common, bnRecal: true };
}

const dataset = (d: PageDataset, name: string, s: ImageSet, augment: boolean): Dataset =>
  new ArrayDataset(name, s.pixels, s.labels, { height: 28, width: 28, channels: 1 }, CLASSES[d], augment ? trainTransform(d) : evalTransform(d));

export async function runPage(o: PageRunOptions, emit: (e: PageEvent) => unknown): Promise<PageReport> {
  const b = backend();
  const spec = bundledModelSpec(o.model);
  const d = pageDataset(o.model);
  const state = parseSafetensors(o.weights, `${o.model}.safetensors`).tensors;
  const makeModel = (): Module => {
    const m = buildBundledArch(spec);
    m.loadStateDict(state);
    if (b.upload) m.moveTo(b);
    return m;
  };
  const calibSource = dataset(d, 'page calibration subset', o.calib, true);
  const calibSourcePlain = dataset(d, 'page calibration subset', o.calib, false);
  const m = Math.min(o.evalImages ?? o.test.labels.length, o.test.labels.length);
  const test = dataset(d, 'page held-out subset', { pixels: o.test.pixels.subarray(0, m * IMAGE), labels: o.test.labels.subarray(0, m) }, false);
  let denseTop1 = o.denseTop1;
  if (denseTop1 === undefined) {
    await emit({ kind: 'status', text: `evaluating the dense model on ${test.length} held-out images` });
    denseTop1 = (await evaluate(makeModel(), test, { batchSize: 100 })).top1;
    await emit({ kind: 'dense', top1: denseTop1, evalImages: test.length });
  }
  const cells = [...(o.done ?? [])];
  for (const method of o.methods) {
    if (cells.some((c) => c.method === method)) continue;
    const model = makeModel();
    model.eval();
    const layers = prunableLayers(model, {}).map((l) => ({ name: l.name, params: l.weight.size }));
    await emit({ kind: 'begin', method, layers });
    await emit({ kind: 'status', text: method === 'fcpts' ? `FCPTS: ${o.iters} iterations of batch ${o.batchSize}` : `${method.toUpperCase()} and BatchNorm re-calibration` });
    const config = pageConfig(method, o);
    const outcome = await prune(
      {
        model, makeModel, calibSource, calibSourcePlain,
        onStep: (log, detail) => emit({ kind: 'step', method, log, layers: detail.layerSparsity() }),
      },
      config,
    );
    await emit({ kind: 'status', text: `${method}: evaluating the pruned model` });
    const acc = await evaluate(model, test, { batchSize: 100 });
    const result = cellResult({
      config, experiment: { name: o.model, arch: spec.arch, dataset: d }, outcome,
      top1: acc.top1, denseTop1, evalImages: acc.count, macs: modelMacs(model, [1, 28, 28]), ...o.build,
    });
    cells.push(result);
    await emit({ kind: 'cell', result, history: outcome.history });
  }
  return { denseTop1, cells };
}
