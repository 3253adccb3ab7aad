// Public surface of sparsity/: allocations, the bridge and its estimators, objectives, FCPTS, baselines, POT, and
// the prune pipeline.

import type { Module } from '../nn/index.js';
import { allocateLayers, type AllocationOptions } from './allocate.js';
import { prunableLayers, type PrunableOptions } from './prunable.js';

/**
 * Each prunable layer's sparsity by state_dict name under a one-shot allocation (uniform, global, global-l1,
 * global-l2, erk, lamp; or given, which rounds `allocation`'s sparsities), computed from the model's current weights. Counts are exact: the parameter-weighted mean
 * is round(S* N) / N.
 */
export function allocate(model: Module, opts: AllocationOptions & PrunableOptions): Record<string, number> {
  return allocateLayers(prunableLayers(model, opts), opts).sparsity;
}

export { allocateLayers, erkDensities, lampScores, roundCounts, ALLOCATION_METHODS, type AllocationMethod, type AllocationOptions, type Allocation } from './allocate.js';
export { histogramDensity, kdeDensity, silvermanBandwidth, estimator, type DensityEstimator, type EstimatorName } from './density.js';
export { layerSparsity, thresholdOf, initialLogits, type ThresholdMode } from './bridge.js';
export { maskFromThreshold, maskFromCount, masksFromCounts, exactGlobalMasks, prunedCount, type Mask, type ExactResult } from './masks.js';
export { maskedWeight, steStep, maskTensor, type GradMode } from './mask-ops.js';
export {
  evaluate as evaluateObjective, klLogits, mseLogits, mseFeatures, controlLoss, objectiveFromConfig,
  type Objective, type ObjectiveTerm, type ObjectiveContext, type ObjectiveConfig, type WeightedTerm, type ControlForm,
} from './objective.js';
export { fcpts, applyMasks, type FcptsConfig, type FcptsInput, type FcptsResult, type StepLog, type LayerReport } from './fcpts.js';
export { oneShot, bnRecalibrate, type OneShotOptions, type PruneReport } from './baselines.js';
export { pot, foldBatchNorms, convBnPairs, correctChannelStats, type PotOptions } from './pot.js';
export { prunableLayers, type ModuleLayer, type PrunableOptions } from './prunable.js';
export { captureBlockOutputs, blockNames, type FeatureTap } from './features.js';
export { prune, copyModel, countZeros, PRUNE_METHODS, type PruneMethod, type PruneConfig, type PruneData, type PruneOutcome } from './prune.js';
export type { PrunableLayer } from './layers.js';
