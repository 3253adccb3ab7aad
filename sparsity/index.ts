// Public surface of sparsity/: allocations, the bridge and its estimators, masks, objectives and their terms, the
// distillation loop and its teacher-logit cache, FCPTS and erk-kd, baselines, POT, the method registry and plugins,
// and the prune pipeline.

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
export {
  isPruned, countPruned, keptTensor, maskFromThreshold, maskFromCount, masksFromCounts, exactGlobalMasks, prunedCount, maskedWeight, steStep,
  maskTensor, maskFromTensor, applyMasks, layerReports, type Mask, type ExactResult, type GradMode, type LayerReport,
} from './masks.js';
export {
  evaluate as evaluateObjective, klLogits, mseLogits, mseFeatures, controlLoss, objectiveFromConfig, makeTerm, defineTerm, neededModules,
  BUILTIN_TERMS, objectiveConfigSchema,
  type Objective, type ObjectiveTerm, type ObjectiveContext, type ObjectiveConfig, type WeightedTerm, type ControlForm, type TermSpec, type TermNeeds,
  type TermConfig, type BuiltinTermName,
} from './objective.js';
export { distill, type DistillInput, type DistillConfig, type MaskSchedule, type StepLog, type StepDetail, type OnStep } from './distill.js';
export { fcpts, erkKd, type FcptsConfig, type ErkKdConfig, type FcptsInput, type FcptsResult, type DistillResult, type Correction } from './fcpts.js';
export { calibration, type Calibration, type CalibrationBatch, type CalibrationOptions } from './calibration.js';
export { TeacherCache, cacheApplies, DEFAULT_TEACHER_CACHE_BYTES, type TeacherCacheOptions, type TeacherCacheStats } from './teacher-cache.js';
export {
  BUILTIN_METHODS, defineMethod, oneShotMethod, countsOf, commonOptions, distillOptions, allocationSchema,
  type BuiltinMethodName, type MethodSpec, type MethodContext, type MethodResult, type BnRecal, type CommonOptions, type AllocationRule,
} from './methods/index.js';
export { Registry, registry, parseLabel, BNRECAL_SUFFIX, type OptionKey } from './registry.js';
export { loadPlugin, loadPlugins, changedPlugins, pluginPath, PluginError, type Plugin, type PluginApi, type PluginRecord } from './plugins.js';
export { oneShot, bnRecalibrate, type OneShotOptions, type PruneReport } from './baselines.js';
export { pot, foldBatchNorms, convBnPairs, correctChannelStats, type PotOptions } from './pot.js';
export { prunableLayers, type ModuleLayer, type PrunableOptions } from './prunable.js';
export { captureBlockOutputs, captureModuleOutputs, blockNames, type FeatureTap } from './features.js';
export { prune, checkPruneConfig, applicableConfig, copyModel, countZeros, PRUNE_METHODS, type PruneMethod, type PruneConfig, type PruneOptions, type PruneData, type PruneOutcome, type BuiltinMethodOptions } from './prune.js';
export type { PrunableLayer } from './layers.js';
