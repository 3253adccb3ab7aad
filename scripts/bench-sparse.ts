// Sparse-inference cases of `npm run bench` (scripts/bench.ts wires them in): a ResNet-18 at 224x224, seeded init,
// pruned to 90% by global magnitude (oneShot, method 'global'), in eval mode, one forward at a batch; dense kernels on
// the pruned weights ('dense', sparse kernels 'off') or the sparse path of nn/sparse-inference.ts ('sparse', mode
// 'auto', its timing runs done in the warm-up). Both engines fold the BatchNorms into the convs and fuse the ReLUs
// after them (opts.fuse), as `ptslab eval` does; PyTorch's peer row is eager PyTorch (no fusion).
// `node dist/scripts/bench-sparse.js [batch] [reps]` prints both.

import { manualSeed, noGrad, randn } from '../core/index.js';
import { models } from '../nn/index.js';
import { enableSparseInference } from '../nn/sparse-inference.js';
import { oneShot } from '../sparsity/index.js';
import { modelMacs } from '../sparsity/macs.js';
import { timeReps, type Runner } from './bench-models.js';

/**
 * The 90%-sparse ResNet-18's forward at a batch, warmed up (under 'auto' the warm-up is also where each layer times
 * dense against sparse once); flops: 2 x dense MACs x batch. `layers` says which layers run sparse.
 */
export function prepareS90Infer(batch: number, engine: 'dense' | 'sparse'): Runner & { layers?: string } {
  manualSeed(0);
  const model = models.resnet18();
  oneShot(model, { method: 'global', sparsity: 0.9 });
  model.eval();
  const macs = modelMacs(model, [3, 224, 224]);
  const x = randn([batch, 3, 224, 224]);
  const sp = enableSparseInference(model, engine === 'sparse' ? 'auto' : 'off', { fuse: true, probe: x });
  const run = () => void noGrad(() => model.call(x));
  run();
  const out = { run, flops: 2 * macs.dense * batch };
  if (engine === 'dense') return out;
  const names = sp.sparseLayers();
  return { ...out, layers: `${names.length} of ${sp.layers.length} layers sparse${names.length < sp.layers.length ? ` (dense: ${sp.layers.filter((l) => !names.includes(l.name)).map((l) => l.name).join(', ')})` : ''}` };
}

/** Median ms of `reps` forwards of a 90%-sparse ResNet-18 at 224x224 (after warm-up); flops: 2 x dense MACs. */
export function resnet18S90Infer(batch: number, engine: 'dense' | 'sparse', reps: number): { ms: number; flops: number; layers?: string } {
  const { run, ...rest } = prepareS90Infer(batch, engine);
  return { ...rest, ms: timeReps(run, reps) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const batch = Number(process.argv[2] ?? 1), reps = Number(process.argv[3] ?? 5);
  for (const engine of ['dense', 'sparse'] as const) {
    const r = resnet18S90Infer(batch, engine, reps);
    console.log(`resnet18-s90-infer-b${batch} ${engine}: ${r.ms.toFixed(1)} ms${r.layers ? ` (${r.layers})` : ''}`);
  }
}
