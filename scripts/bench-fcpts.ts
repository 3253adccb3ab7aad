// The FCPTS case of `npm run bench` (scripts/bench.ts wires it in, beside PyTorch's reimplementation in
// scripts/bench_torch.py): iterations of the real fcpts() (sparsity/fcpts.ts over distill.ts) on the Fashion-MNIST
// benchmark's architecture, a seeded random-init fmnist-resnet20 (CIFAR option-B ResNet-20, 1 input channel, 10
// classes) with its teacher a copy, synthetic randn batches [B, 1, 28, 28], target sparsity 0.8 and the defaults
// otherwise (STE masks, histogram density, KL T = 4 + |S - S*|, SGD momentum 0.9, weight decay 3e-4, lr 0.04 B / 256
// cosine with one epoch of a 1,024-image calibration set as warm-up).
//
// An iteration's time runs from its batch being handed to the loop to its onStep: the whole iteration (masks and
// layer sparsities, student forward and backward, teacher forward, SGD step, finiteness checks), nothing between
// iterations. `fcptsIterations` runs a number of them with hooks (a profiler wraps them); `fcptsStep` is the bench's
// median; `fcptsStepper` hands them out one at a time so bench.ts can interleave them with PyTorch's;
// `fcptsProfile` is the per-op profile of a few iterations (core/profile.ts) that the bench prints after the case.
// `node dist/scripts/bench-fcpts.js [batch] [reps]` prints one median.

import { formatProfile, manualSeed, profileOpsAsync } from '../core/index.js';
import { buildBundledArch, bundledModelSpec } from '../experiments/models/index.js';
import { fcptsStepRecords, withTeacher } from '../web/bench-cases.js';
import { modelMacs } from '../sparsity/macs.js';
import type { Module } from '../nn/index.js';
import { median } from './bench-models.js';

const MODEL = 'fmnist-resnet20';
/** Iterations a median leaves out: the first runs JIT-compile and size the arena. */
export const FCPTS_WARMUP = 2;

const arch = () => buildBundledArch(bundledModelSpec(MODEL));
let macs: number | null = null;

/** Nominal flops of one iteration at a batch: 2 x MACs x batch x 4 (student forward + backward = 3x, teacher 1x). */
export function fcptsFlops(batch: number): number {
  macs ??= modelMacs(arch(), [1, 28, 28]).dense;
  return 4 * 2 * macs * batch;
}

export interface FcptsHooks {
  /** After iteration `step`, with its time in ms. */
  onStep?: (step: number, ms: number) => void;
  /** Before iteration `step`, untimed (awaited in the loop's batch callback). */
  before?: (step: number) => void | Promise<void>;
}

/**
 * The benchmark's student and teacher: a seeded (manualSeed(0)) random-init model of the fmnist-resnet20
 * architecture and a frozen eval-mode copy of it (scripts/profile-fcpts.ts profiles the same pair).
 */
export function benchmarkPair(): { model: Module; teacher: Module } {
  manualSeed(0);
  return withTeacher(arch(), arch);
}

/**
 * Run `iters` FCPTS iterations on the benchmark pair (web/bench-cases.ts fcptsStepRecords: the exact correction after
 * them untimed, a seeded batch handed over fresh each iteration); each iteration's ms.
 */
export async function fcptsIterations(batch: number, iters: number, hooks: FcptsHooks = {}): Promise<number[]> {
  const records = await fcptsStepRecords(benchmarkPair(), batch, iters, { before: hooks.before, onStep: (r) => hooks.onStep?.(r.step, r.ms) });
  return records.map((r) => r.ms);
}

/** The per-op profile of `iters` iterations after FCPTS_WARMUP (core/profile.ts), as a table of its top rows per iteration. */
export async function fcptsProfile(batch: number, iters: number, top = 12): Promise<string> {
  const { profile } = await profileOpsAsync((ctl) =>
    fcptsIterations(batch, FCPTS_WARMUP + iters, { before: (step) => void (step === FCPTS_WARMUP && ctl.reset()) }),
  );
  return formatProfile(profile, { top, per: iters });
}

/** Median ms of `reps` FCPTS iterations at a batch, after FCPTS_WARMUP more; flops as fcptsFlops. */
export async function fcptsStep(batch: number, reps: number): Promise<{ ms: number; flops: number }> {
  const times = await fcptsIterations(batch, reps + FCPTS_WARMUP);
  return { ms: median(times.slice(FCPTS_WARMUP)), flops: fcptsFlops(batch) };
}

/**
 * The iterations of one fcpts() run handed out one at a time: `next()` runs the next iteration and resolves with its
 * ms; the loop waits between calls. Call it exactly `iters` times, then await `done` (the run's end).
 */
export function fcptsStepper(batch: number, iters: number): { next: () => Promise<number>; done: Promise<void>; flops: number } {
  const flops = fcptsFlops(batch);
  let go: (() => void) | null = null; // resumes the loop, while it waits before an iteration
  let atGate: (() => void) | null = null; // a next() waiting for the loop to reach its gate
  let result: ((ms: number) => void) | null = null;
  const done = fcptsIterations(batch, iters, {
    before: () =>
      new Promise<void>((resume) => {
        go = resume;
        atGate?.();
        atGate = null;
      }),
    onStep: (_step, ms) => {
      result?.(ms);
      result = null;
    },
  }).then(() => undefined);
  // the run failing (or ending early) rejects whatever next() is waiting
  const failed = done.then(() => Promise.reject(new Error('fcptsStepper: next() called after the last iteration')));
  failed.catch(() => undefined);
  const next = async (): Promise<number> => {
    if (!go) await Promise.race([new Promise<void>((r) => (atGate = r)), failed]);
    const ms = new Promise<number>((r) => (result = r));
    const resume = go!;
    go = null;
    resume();
    return Promise.race([ms, failed]);
  };
  return { next, done, flops };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const batch = Number(process.argv[2] ?? 64), reps = Number(process.argv[3] ?? 3);
  const r = await fcptsStep(batch, reps);
  console.log(`resnet20-fcpts-step-b${batch}: ${r.ms.toFixed(1)} ms (${(r.flops / 1e9).toFixed(2)} GFLOP nominal, median of ${reps})`);
}
