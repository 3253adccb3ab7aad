// One-shot baselines and BatchNorm re-calibration. A one-shot method allocates per-layer counts from the current
// weights (sparsity/allocate.ts), prunes the smallest |w| of each layer and zeroes them; no weight changes
// otherwise. BN re-calibration recomputes every BatchNorm's running statistics on calibration images (cumulative
// average, no weight change): on its own it moves a 90%-sparse network from chance to far above it.

import { noGrad, type Tensor } from '../core/index.js';
import { BatchNorm2d, type Module } from '../nn/index.js';
import { allocateLayers, type AllocationOptions } from './allocate.js';
import { applyMasks, layerReports, masksFromCounts, type LayerReport, type Mask } from './masks.js';
import { prunableLayers, type PrunableOptions } from './prunable.js';

export interface OneShotOptions extends PrunableOptions, AllocationOptions {}

export interface PruneReport {
  masks: Mask[];
  layers: LayerReport[];
}

/** Prune the model in place with a one-shot allocation. */
export function oneShot(model: Module, opts: OneShotOptions): PruneReport {
  const layers = prunableLayers(model, opts);
  const { counts } = allocateLayers(layers, opts);
  const masks = masksFromCounts(layers, counts);
  applyMasks(layers, masks);
  return { masks, layers: layerReports(layers, masks) };
}

/**
 * Recompute BatchNorm running statistics from calibration batches: reset them, run the model in train mode without
 * gradient with a cumulative average (momentum null), then restore each layer's momentum and the model's mode.
 */
export function bnRecalibrate(model: Module, batches: Iterable<Tensor>): void {
  const bns = model.modules().filter((m): m is BatchNorm2d => m instanceof BatchNorm2d);
  const saved = bns.map((bn) => bn.momentum);
  const wasTraining = model.training;
  noGrad(() => {
    for (const bn of bns) {
      bn.runningMean?.copy_(0);
      bn.runningVar?.copy_(1);
      bn.numBatchesTracked?.copy_(0);
      bn.momentum = null;
    }
    model.train();
    for (const x of batches) model.call(x);
  });
  bns.forEach((bn, i) => (bn.momentum = saved[i]));
  model.train(wasTraining);
}
