// A pruning cell's result.json (CellResult) and the one function that assembles it from a finished prune(): the CLI's
// cells (prune-cell.ts) and the browser page (web/run.ts) write the same record.

import { backend } from '../core/index.js';
import type { Correction, PluginRecord, PruneConfig, PruneOutcome } from '../sparsity/index.js';
import type { ModelMacs } from '../sparsity/macs.js';

export interface CellResult {
  method: string;
  model: string;
  arch: string;
  dataset: string;
  targetSparsity: number;
  achievedSparsity: number;
  prunableParams: number;
  zeroParams: number;
  top1: number;
  denseTop1: number;
  seconds: number;
  seed: number;
  backend: string;
  commit: string | null;
  version: string;
  config: PruneConfig;
  evalImages: number;
  layers: Array<{ name: string; params: number; sparsity: number }>;
  /**
   * Analytic multiply-adds per image of the conv and linear layers (sparsity/macs.ts), dense and with the pruned
   * weights' zeros skipped; absent in result.json files written before it existed.
   */
  macs?: ModelMacs;
  /** FCPTS: global sparsity of the learned thresholds before the exact correction, and the log-offset applied. */
  correction?: Correction;
  /** Plugins the run had loaded: path and sha256 (reproduce refuses a cell whose plugin changed). */
  plugins?: PluginRecord[];
}

/** The record of a finished cell: what ran (config, model, backend, commit) and what came out. */
export function cellResult(r: {
  config: PruneConfig;
  experiment: { name: string; arch: string; dataset: string };
  outcome: PruneOutcome;
  top1: number;
  denseTop1: number;
  evalImages: number;
  macs: ModelMacs;
  commit: string | null;
  version: string;
  plugins?: PluginRecord[];
}): CellResult {
  const { config, outcome } = r;
  return {
    method: config.method,
    model: r.experiment.name,
    arch: r.experiment.arch,
    dataset: r.experiment.dataset,
    targetSparsity: config.sparsity,
    achievedSparsity: outcome.achievedSparsity,
    prunableParams: outcome.prunableParams,
    zeroParams: outcome.zeroParams,
    top1: r.top1,
    denseTop1: r.denseTop1,
    seconds: Math.round(outcome.seconds * 10) / 10,
    seed: config.seed ?? 0,
    backend: backend().name,
    commit: r.commit,
    version: r.version,
    config,
    evalImages: r.evalImages,
    layers: outcome.layers,
    macs: r.macs,
    ...(outcome.correction ? { correction: outcome.correction } : {}),
    ...(r.plugins?.length ? { plugins: r.plugins } : {}),
  };
}
