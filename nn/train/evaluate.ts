// Accuracy of a classifier on a dataset: top-1 and top-5 in percent over every image, in eval mode and without
// gradients, batch by batch in dataset order (so the figure is deterministic for a given backend). A non-finite output
// is an error naming the image, never a silent hit. On host backends the model runs fused where it can (BatchNorm
// folded into the convs, the ReLU modules after them in the conv kernels: nn/sparse-inference.ts), as `ptslab eval`
// does: set up on the first batch (its first two images are the probe), removed before returning; a model that
// already has sparse inference enabled, or whose parameters live on a device, runs as it is. Fusion changes the
// logits by float rounding only (checked on the probe), so a top-1 may move by an image against o.fuse false.

import { noGrad } from '../../core/index.js';
import { PtslabError } from '../../core/errors.js';
import { DataLoader, type Dataset } from '../data/index.js';
import type { Module } from '../index.js';
import { enableSparseInference, inferenceActive, type SparseInference } from '../sparse-inference.js';

export interface Accuracy {
  /** Percent of images whose top-scoring class is the label. */
  top1: number;
  /** Percent of images whose label is among the min(5, classes) top-scoring classes. */
  top5: number;
  count: number;
  correct1: number;
  correct5: number;
}

/** Count hits at rank 1 and within the top k of a row-major [B, C] logits array. */
export function countHits(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number, k = 5): { hit1: number; hitK: number } {
  let hit1 = 0;
  let hitK = 0;
  const kk = Math.min(k, classes);
  for (let b = 0; b < labels.length; b++) {
    const off = b * classes;
    const target = logits[off + labels[b]];
    // rank = number of classes scoring strictly higher (ties resolved in the label's favour after lower indices)
    let rank = 0;
    for (let c = 0; c < classes; c++) {
      const v = logits[off + c];
      if (v > target || (v === target && c < labels[b])) rank++;
    }
    if (rank === 0) hit1++;
    if (rank < kk) hitK++;
  }
  return { hit1, hitK };
}

export interface EvaluateOptions {
  batchSize?: number;
  onBatch?: (done: number, total: number) => void;
  /** Run fused where it applies (default true; see the top of nn/train/evaluate.ts). */
  fuse?: boolean;
}

/** Evaluate `model` on every image of `dataset`; leaves the model in eval mode. */
export async function evaluate(model: Module, dataset: Dataset, o: EvaluateOptions = {}): Promise<Accuracy> {
  model.eval();
  const loader = new DataLoader(dataset, { batchSize: o.batchSize ?? 256, shuffle: false });
  const fuse = (o.fuse ?? true) && !inferenceActive(model) && model.parameters().every((p) => p.isHost);
  let fused: SparseInference | null = null;
  let c1 = 0;
  let c5 = 0;
  let n = 0;
  try {
    for await (const { images, labels } of loader.batches(0)) {
      if (fuse && !fused) fused = enableSparseInference(model, 'off', { fuse: true, probe: images.slice(0, 0, Math.min(2, images.shape[0])), unfusedOnMismatch: true });
      const logits = noGrad(() => model.call(images));
      const values = logits.toArray();
      // NaN compares false with everything, so countHits would rank a NaN row's label first: refuse instead.
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i])) {
          throw new PtslabError(`evaluate: the model's output for image ${n + Math.floor(i / logits.shape[1])} holds ${values[i]} (tensor 'logits'): the weights or the input are not finite, an accuracy would be meaningless`);
        }
      }
      const { hit1, hitK } = countHits(values, labels, logits.shape[1]);
      c1 += hit1;
      c5 += hitK;
      n += labels.length;
      o.onBatch?.(n, dataset.length);
    }
  } finally {
    fused?.remove();
  }
  const pct = (c: number) => (n === 0 ? 0 : (100 * c) / n);
  return { top1: pct(c1), top5: pct(c5), count: n, correct1: c1, correct5: c5 };
}
