// The training loop behind `ptslab train`: SGD (momentum 0.9, Nesterov, coupled weight decay) with linear warm-up
// then cosine decay stepped every iteration, cross-entropy (optional label smoothing), evaluation on the held-out
// split after each epoch, checkpoints after each epoch and every `checkpointEvery` iterations, and `record.json`.
// Resuming loads the checkpoint and replays the epoch's shuffled order, skipping the batches already consumed, so an
// interrupted run ends with the same weights, bit for bit, as an uninterrupted one (same seed and backend).
// A non-finite loss or gradient stops the run with NonFiniteError naming the iteration and tensor, after saving the
// last good state; a weight that overflows after a step stops it too (the last checkpoint on disk is the good one).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { F, fromStorage, hostData, manualSeed, type Tensor } from '../../core/index.js';
import { PtslabError } from '../../core/errors.js';
import { CosineWarmupLR, SGD, serializeSafetensors, type Module } from '../index.js';
import { DataLoader, mixSeed, type Dataset } from '../data/index.js';
import { loadTrainCheckpoint, saveTrainCheckpoint, writeAtomic } from './checkpoint.js';
import { evaluate, type Accuracy } from './evaluate.js';

/** The loss, a gradient or a weight became NaN or Inf. */
export class NonFiniteError extends PtslabError {
  constructor(message: string, readonly iteration: number, readonly tensor: string) {
    super(message);
  }
}

export interface TrainConfig {
  arch: string;
  dataset: string;
  dataDir?: string | null;
  epochs: number;
  lr: number;
  batch: number;
  wd: number;
  seed: number;
  momentum: number;
  nesterov: boolean;
  labelSmoothing: number;
  /** Linear warm-up length in iterations. */
  warmupIters: number;
  widthMult?: number | null;
  /** CIFAR ResNets' shortcut type, when given ('B' is the default). */
  shortcut?: 'A' | 'B';
  /** Checkpoint every this many iterations besides each epoch end (0: epoch ends only). */
  checkpointEvery: number;
  backend: string;
}

export interface EpochRecord {
  epoch: number;
  iterations: number;
  trainLoss: number;
  lr: number;
  top1: number;
  top5: number;
  count: number;
  seconds: number;
  finishedAt: string;
}

export interface TrainState {
  config: TrainConfig;
  /** Epoch in progress (== epochs when done). */
  epoch: number;
  /** Batches of `epoch` already consumed. */
  batchInEpoch: number;
  /** Optimizer steps so far. */
  step: number;
  /** Running sum of the epoch's losses and their count (for the epoch's mean). */
  lossSum: number;
  lossCount: number;
  /** Seconds spent in the current epoch before the last interruption. */
  epochSeconds: number;
  history: EpochRecord[];
}

export interface Progress {
  epoch: number;
  batchInEpoch: number;
  itersPerEpoch: number;
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
}

export interface TrainRun {
  config: TrainConfig;
  out: string;
  model: Module;
  train: Dataset;
  test: Dataset;
  resume?: boolean;
  /** Stop (after checkpointing) once this many optimizer steps are done: for tests and time-boxed sessions. */
  stopAfterStep?: number;
  /** Polled after every iteration: true checkpoints and stops (the CLI sets it on SIGINT / SIGTERM). */
  shouldStop?: () => boolean;
  /** Extra fields for record.json (package version, git commit, command line). */
  meta?: Record<string, unknown>;
  onProgress?: (p: Progress) => void;
  onEpoch?: (r: EpochRecord) => void;
  onEvalBatch?: (done: number, total: number) => void;
  log?: (line: string) => void;
}

export interface TrainResult {
  state: TrainState;
  finished: boolean;
  final?: Accuracy;
}

export const checkpointFile = (out: string) => join(out, 'checkpoint.safetensors');

/** Config fields that must match between a checkpoint and a resumed run. */
const PINNED: Array<keyof TrainConfig> = ['arch', 'dataset', 'epochs', 'lr', 'batch', 'wd', 'seed', 'momentum', 'nesterov', 'labelSmoothing', 'warmupIters', 'widthMult', 'shortcut'];

function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

export async function train(run: TrainRun): Promise<TrainResult> {
  const { config: cfg, out, model } = run;
  const log = run.log ?? (() => {});
  const ckpt = checkpointFile(out);
  const loader = new DataLoader(run.train, { batchSize: cfg.batch, shuffle: true, seed: cfg.seed, dropLast: true });
  const itersPerEpoch = loader.length;
  if (itersPerEpoch === 0) throw new PtslabError(`train: the training set has ${run.train.length} images, fewer than one batch of ${cfg.batch}`);
  const totalSteps = itersPerEpoch * cfg.epochs;
  const named = model.namedParameters();
  const opt = new SGD(named.map(([, p]) => p), { lr: cfg.lr, momentum: cfg.momentum, nesterov: cfg.nesterov, weightDecay: cfg.wd });
  const sched = new CosineWarmupLR(opt, { totalSteps, warmupSteps: Math.min(cfg.warmupIters, totalSteps) });

  let state: TrainState = { config: cfg, epoch: 0, batchInEpoch: 0, step: 0, lossSum: 0, lossCount: 0, epochSeconds: 0, history: [] };
  if (run.resume && existsSync(ckpt)) {
    const saved = loadTrainCheckpoint<TrainState>(ckpt, model, opt);
    const diff = PINNED.filter((k) => JSON.stringify(saved.config[k] ?? null) !== JSON.stringify(cfg[k] ?? null));
    if (diff.length) {
      throw new PtslabError(`train --resume: ${ckpt} was made with ${diff.map((k) => `${k}=${JSON.stringify(saved.config[k])}`).join(', ')}, this run asks for ${diff.map((k) => `${k}=${JSON.stringify(cfg[k])}`).join(', ')}`);
    }
    if (saved.config.backend !== cfg.backend) log(`note: checkpoint made on backend '${saved.config.backend}', resuming on '${cfg.backend}' (weights will not match an uninterrupted run bit for bit)`);
    state = { ...saved, config: cfg };
    sched.loadStateDict({ lastStep: state.step });
    log(`resumed from ${ckpt}: epoch ${state.epoch + 1}/${cfg.epochs}, batch ${state.batchInEpoch}/${itersPerEpoch}, iteration ${state.step}`);
  } else if (run.resume) {
    log(`no checkpoint at ${ckpt}: starting from scratch`);
  }

  const recordFile = join(out, 'record.json');
  let started = new Date().toISOString();
  if (run.resume && existsSync(recordFile)) {
    try {
      started = (JSON.parse(readFileSync(recordFile, 'utf8')) as { started?: string }).started ?? started;
    } catch {
      // a damaged record is rewritten below
    }
  }
  const writeRecord = (extra: Record<string, unknown> = {}) =>
    writeAtomic(recordFile, `${JSON.stringify({ ...run.meta, config: cfg, seed: cfg.seed, backend: cfg.backend, started, updated: new Date().toISOString(), iterations: state.step, totalIterations: totalSteps, epochs: state.history, ...extra }, null, 2)}\n`);
  const save = (buffers?: Record<string, Tensor>) => saveTrainCheckpoint(ckpt, model, opt, state, buffers);

  const buffers = model.namedBuffers();
  const bufCopy = buffers.map(([, b]) => new Float32Array(b.size));
  writeRecord({ status: 'running' });

  while (state.epoch < cfg.epochs) {
    const epoch = state.epoch;
    const t0 = performance.now() - state.epochSeconds * 1000;
    model.train();
    let k = 0;
    for await (const { images, labels } of loader.batches(epoch)) {
      if (k++ < state.batchInEpoch) continue;
      buffers.forEach(([, b], i) => bufCopy[i].set(b.toArray()));
      manualSeed(mixSeed(cfg.seed, state.step, 0xd0)); // dropout draws
      const logits = model.call(images);
      const loss = F.crossEntropy(logits, labels, { labelSmoothing: cfg.labelSmoothing });
      const lv = loss.item();
      const where = `iteration ${state.step + 1} (epoch ${epoch + 1}, batch ${state.batchInEpoch + 1})`;
      const stop = (tensor: string, what: string, saved: boolean): never => {
        throw new NonFiniteError(
          `train: ${what} at ${where}; ${saved ? `saved the last good state (iteration ${state.step}) to ${ckpt}` : `the last good checkpoint on disk is ${ckpt}`}`,
          state.step + 1,
          tensor,
        );
      };
      const saveGood = () => {
        const restored: Record<string, Tensor> = {};
        buffers.forEach(([n, b], i) => (restored[n] = fromStorage(Float32Array.from(bufCopy[i]), [...b.shape])));
        state.epochSeconds = (performance.now() - t0) / 1000;
        save(restored);
      };
      if (!Number.isFinite(lv)) {
        saveGood();
        stop('loss', `the loss is ${lv}`, true);
      }
      opt.zeroGrad();
      loss.backward();
      for (const [name, p] of named) {
        if (p.grad && firstNonFinite(p.grad.toArray()) >= 0) {
          saveGood();
          stop(`${name}.grad`, `the gradient of '${name}' is not finite (element ${firstNonFinite(p.grad.toArray())})`, true);
        }
      }
      opt.step();
      sched.step();
      for (const [name, p] of named) {
        const values = p.isContiguous && p.isHost ? hostData(p.data).subarray(p.offset, p.offset + p.size) : p.toArray();
        const bad = firstNonFinite(values);
        if (bad >= 0) stop(name, `weight '${name}' element ${bad} became ${values[bad]} after the step`, false);
      }
      state.step++;
      state.batchInEpoch++;
      state.lossSum += lv;
      state.lossCount++;
      run.onProgress?.({ epoch, batchInEpoch: state.batchInEpoch, itersPerEpoch, step: state.step, totalSteps, loss: lv, lr: opt.paramGroups[0].lr });
      const stopping = (run.stopAfterStep !== undefined && state.step >= run.stopAfterStep) || (run.shouldStop?.() ?? false);
      if ((cfg.checkpointEvery > 0 && state.step % cfg.checkpointEvery === 0) || stopping) {
        state.epochSeconds = (performance.now() - t0) / 1000;
        save();
      }
      if (stopping && state.batchInEpoch < itersPerEpoch) {
        writeRecord({ status: 'stopped' });
        return { state, finished: false };
      }
    }
    const acc = await evaluate(model, run.test, { batchSize: Math.max(cfg.batch, 256), onBatch: run.onEvalBatch });
    const rec: EpochRecord = {
      epoch: epoch + 1,
      iterations: state.step,
      trainLoss: state.lossCount ? state.lossSum / state.lossCount : NaN,
      lr: opt.paramGroups[0].lr,
      top1: acc.top1,
      top5: acc.top5,
      count: acc.count,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      finishedAt: new Date().toISOString(),
    };
    state = { ...state, epoch: epoch + 1, batchInEpoch: 0, lossSum: 0, lossCount: 0, epochSeconds: 0, history: [...state.history, rec] };
    save();
    run.onEpoch?.(rec);
    const done = state.epoch >= cfg.epochs;
    if (done) return finish(acc);
    writeRecord({ status: 'running' });
    if ((run.stopAfterStep !== undefined && state.step >= run.stopAfterStep) || run.shouldStop?.()) return { state, finished: false };
  }
  // Resumed from a checkpoint saved after the last epoch: a run killed between that checkpoint and its final files,
  // or one resumed again after it finished. The checkpoint holds the final weights; write the final files from them.
  const last = state.history[state.history.length - 1];
  const pct = (p: number) => Math.round((p * (last?.count ?? 0)) / 100);
  return finish(last ? { top1: last.top1, top5: last.top5, count: last.count, correct1: pct(last.top1), correct5: pct(last.top5) } : { top1: NaN, top5: NaN, count: 0, correct1: 0, correct5: 0 });

  /** The final weights (atomically) and the finished record. */
  function finish(acc: Accuracy): TrainResult {
    model.eval();
    writeAtomic(join(out, 'model.safetensors'), serializeSafetensors(model.stateDict(), { arch: cfg.arch, dataset: cfg.dataset }));
    writeRecord({ status: 'finished', final: { top1: acc.top1, top5: acc.top5, count: acc.count } });
    return { state, finished: true, final: acc };
  }
}
