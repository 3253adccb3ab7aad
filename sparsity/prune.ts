// One pruning run, whatever the method: the pipeline behind `ptslab prune` and every cell of `ptslab run`.
// Given a dense model, a way to build a fresh copy (the teacher, POT's dense reference), calibration data and a
// held-out set, it prunes with the chosen method, optionally re-calibrates BatchNorm, counts the zeros actually in
// the weights, evaluates, and reports per-layer sparsity and timings.

import { ArgumentError, NumericError, manualSeed, noGrad, type Tensor } from '../core/index.js';
import type { Module } from '../nn/index.js';
import { DataLoader, calibrationSubset, type Dataset } from '../nn/data/index.js';
import { ALLOCATION_METHODS, type AllocationMethod } from './allocate.js';
import { bnRecalibrate, oneShot } from './baselines.js';
import { fcpts, type FcptsConfig, type LayerReport, type StepLog } from './fcpts.js';
import { pot } from './pot.js';
import { prunableLayers } from './prunable.js';

export const PRUNE_METHODS = ['fcpts', ...ALLOCATION_METHODS, 'pot', 'erk-kd'] as const;
export type PruneMethod = (typeof PRUNE_METHODS)[number];

export interface PruneConfig extends Omit<FcptsConfig, 'freezeMasks' | 'iters' | 'batchSize'> {
  method: PruneMethod;
  /** Calibration images (default 1024). */
  calib?: number;
  seed?: number;
  /** FCPTS / erk-kd iterations (default 1600). */
  iters?: number;
  /** FCPTS / erk-kd batch (default 64). */
  batchSize?: number;
  /** Re-calibrate BatchNorm statistics on the calibration images after pruning (one-shot methods, erk-kd, fcpts). */
  bnRecal?: boolean;
  /** POT: Adam iterations per layer, and the number of calibration images it reconstructs on. */
  potIters?: number;
  potImages?: number;
}

export interface PruneData {
  /** The dense model, pruned in place. */
  model: Module;
  /** A fresh model of the same architecture (weights are copied in). */
  makeModel: () => Module;
  /** Training split with augmentation (calibration images are drawn from it). */
  calibSource: Dataset;
  /** The same split without augmentation (BN re-calibration, POT). */
  calibSourcePlain: Dataset;
  onStep?: (log: StepLog) => void;
  /** Progress lines of the slow one-shot paths (POT: one per reconstructed layer). */
  log?: (line: string) => void;
  /** See FcptsInput.onNumericError. */
  onNumericError?: (state: Record<string, Tensor>, iteration: number) => string | void;
}

export interface PruneOutcome {
  layers: LayerReport[];
  prunableParams: number;
  zeroParams: number;
  achievedSparsity: number;
  seconds: number;
  history: StepLog[];
}

/** Materialise a dataset subset as batches of [B, C, H, W] (plain order). */
async function batchesOf(ds: Dataset, batchSize: number): Promise<Tensor[]> {
  const out: Tensor[] = [];
  for await (const b of new DataLoader(ds, { batchSize, shuffle: false }).batches(0)) out.push(b.images);
  return out;
}

/** A copy of the model with the same weights and buffers. */
export function copyModel(model: Module, makeModel: () => Module): Module {
  const c = makeModel();
  c.loadStateDict(model.stateDict(), { strict: true });
  return c;
}

/** Zeros actually present in the prunable weights (what achievedSparsity is counted from). */
export function countZeros(model: Module, keepDense?: readonly string[]): { prunable: number; zeros: number } {
  let prunable = 0;
  let zeros = 0;
  for (const l of prunableLayers(model, { keepDense })) {
    prunable += l.weight.size;
    for (const v of l.weight.toArray()) if (v === 0) zeros++;
  }
  return { prunable, zeros };
}

export async function prune(data: PruneData, cfg: PruneConfig): Promise<PruneOutcome> {
  if (!(PRUNE_METHODS as readonly string[]).includes(cfg.method)) {
    throw new ArgumentError(`prune: unknown method '${cfg.method}', expected one of ${PRUNE_METHODS.join(', ')}`);
  }
  if (cfg.allocation && !['given', 'fcpts', 'erk-kd'].includes(cfg.method)) {
    throw new ArgumentError(`prune: an allocation applies to methods given, fcpts and erk-kd, not to ${cfg.method}`);
  }
  const seed = cfg.seed ?? 0;
  for (const [name, t] of Object.entries(data.model.stateDict())) {
    if (!t.toArray().every(Number.isFinite)) throw new NumericError(`prune: the dense model's ${name} holds NaN or Inf`);
  }
  manualSeed(seed);
  const calibN = Math.min(cfg.calib ?? 1024, data.calibSource.length);
  const calibAug = calibrationSubset(data.calibSource, calibN, seed);
  const calibPlain = calibrationSubset(data.calibSourcePlain, calibN, seed);
  const batchSize = cfg.batchSize ?? 64;
  const start = performance.now();
  let layers: LayerReport[];
  let history: StepLog[] = [];
  const { model } = data;

  if (cfg.method === 'fcpts' || cfg.method === 'erk-kd') {
    const teacher = copyModel(model, data.makeModel);
    const loader = new DataLoader(calibAug, { batchSize, shuffle: true, dropLast: true, seed });
    const perEpoch = loader.length;
    if (perEpoch === 0) throw new ArgumentError(`prune: ${calibN} calibration images make no batch of ${batchSize}`);
    let it: AsyncGenerator<{ images: Tensor }> | null = null;
    let epoch = -1;
    const batch = async (step: number): Promise<Tensor> => {
      const e = Math.floor(step / perEpoch);
      if (e !== epoch || !it) {
        epoch = e;
        it = loader.batches(e);
      }
      const r = await it.next();
      if (r.done) throw new ArgumentError(`prune: calibration loader ended early at step ${step}`);
      return r.value.images;
    };
    const r = await fcpts(
      { model, teacher, batch, calibSize: calibN, onStep: data.onStep, onNumericError: data.onNumericError },
      { ...cfg, iters: cfg.iters ?? 1600, batchSize, freezeMasks: cfg.method === 'erk-kd' },
    );
    layers = r.layers;
    history = r.history;
  } else if (cfg.method === 'pot') {
    const dense = copyModel(model, data.makeModel);
    const potN = Math.min(cfg.potImages ?? 256, calibN);
    const batches = await batchesOf(calibrationSubset(data.calibSourcePlain, potN, seed), batchSize);
    let done = 0;
    const onLayer = (name: string, loss: number, iters: number) =>
      data.log?.(`pot: layer ${++done} ${name}: reconstruction loss ${loss.toExponential(3)} after ${iters} steps (${((performance.now() - start) / 1000).toFixed(0)} s)`);
    layers = pot(model, dense, batches, { sparsity: cfg.sparsity, keepDense: cfg.keepDense, reconIters: cfg.potIters, onLayer }).layers;
  } else {
    layers = oneShot(model, { method: cfg.method as AllocationMethod, sparsity: cfg.sparsity, keepDense: cfg.keepDense, erkPower: cfg.erkPower, allocation: cfg.allocation }).layers;
  }
  if (cfg.bnRecal) {
    if (cfg.method === 'pot') throw new ArgumentError('prune: --bn-recal does not apply to pot (its BatchNorms are folded into biases)');
    bnRecalibrate(model, await batchesOf(calibPlain, batchSize));
  }
  model.eval();
  const { prunable, zeros } = noGrad(() => countZeros(model, cfg.keepDense));
  return {
    layers,
    prunableParams: prunable,
    zeroParams: zeros,
    achievedSparsity: zeros / prunable,
    seconds: (performance.now() - start) / 1000,
    history,
  };
}
