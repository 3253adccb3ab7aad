// The GPU check's benchmark cases (scripts/gpu-check.sh), as functions that run on whatever backend is current
// (core/backend `backend()` / `setBackend`), so the same code times gpu.js WebGL in the benchmark page (web/bench.ts)
// and the cpu backend in Node (web/gpu-check.ts): a matmul (512 and 1024 cubed), 3x3 convolutions forward (a
// ResNet-20 one at batch 64, 32 channels at 16x16; a ResNet-18 one at batch 8, 256 channels at 14x14) and one FCPTS
// iteration on fmnist-resnet20. Nothing here reads files: the model's weights come in as bytes (the page fetches
// them, Node reads them), so the module bundles for the browser.
//
// Each case: `warmup` untimed runs (kernel compilation, arena sizing), then `reps` timed ones; a row reports the
// MEDIAN of the timed runs, as scripts/bench.ts does, in its row shape { case, shape, engine, gflops, ms } (gflops:
// analytic flops / median time; null for the FCPTS step, whose flop count is nominal).
//
// Timing on a device backend includes a readback: WebGL is asynchronous (a gpu.js kernel call queues draw calls and
// returns before the GPU has run them), so each timed run ends by reading one element of the result back to the host
// (`settle`), which cannot complete before the work that produced it. The FCPTS iteration needs no extra one: it
// reads its loss terms and threshold logits back itself before its onStep (a little trailing work, if any, lands in
// the next iteration's time, so the median of several iterations is the steady rate).

import { backend, F, Generator, noGrad, randn, type Tensor } from '../core/index.js';
import type { TransferStats } from '../core/backend/types.js';
import { buildBundledArch, bundledModelSpec } from '../experiments/models/index.js';
import type { Module } from '../nn/index.js';
import { parseSafetensors } from '../nn/io/safetensors.js';
import { fcpts } from '../sparsity/fcpts.js';
import { copyModel } from '../sparsity/prune.js';

/** One result, the row shape of scripts/bench.ts (`npm run bench --json`); ms is the median of the timed runs. */
export interface BenchRow {
  case: string;
  shape: string;
  engine: string;
  /** Analytic flops / ms; null where there is no exact count (the FCPTS step). */
  gflops: number | null;
  ms: number;
}

export const BENCH_MODEL = 'fmnist-resnet20';

/** What a WebGL context says about itself (the benchmark page's probe). */
export interface GlInfo {
  webgl2: boolean;
  version: string;
  vendor: string;
  /** UNMASKED_RENDERER_WEBGL (WEBGL_debug_renderer_info) where the browser exposes it, else RENDERER. */
  renderer: string;
  maxTextureSize: number;
}

/** What the benchmark page (web/bench.ts) puts into its #result when done. */
export interface BenchReport {
  /** A fresh canvas's renderer at load. */
  probe: GlInfo | null;
  /** The renderer of the context gpu.js ran on (null if it never made one). */
  renderer: GlInfo | null;
  /** gpu.js's mode ('webgl2', 'webgl'). */
  mode: string;
  fallbacks: readonly string[];
  userAgent: string;
  build: { version: string; commit: string | null };
  settings: { reps: number; warmup: number; fcptsBatch: number; fcptsSteps: number; fcptsWarmup: number; cases: string[] };
  rows: BenchRow[];
  seconds: number;
}

export interface BenchOptions {
  /** The row's engine name (default `ptslab-<backend name>`). */
  engine?: string;
  /** Untimed runs before the timed ones (default 2). */
  warmup?: number;
  /** Timed runs of the kernel cases (default 5). */
  reps?: number;
  /** The FCPTS step's batch (default 64) and its timed iterations after `fcptsWarmup` (defaults 3 and 2). */
  fcptsBatch?: number;
  fcptsSteps?: number;
  fcptsWarmup?: number;
  /** Only the cases whose name contains one of these (all without). */
  cases?: readonly string[];
  /** Called with each row when it is done, and before each case with a line saying what runs (a page shows them). */
  onRow?: (r: BenchRow) => void | Promise<void>;
  onStatus?: (s: string) => void | Promise<void>;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * The first element of t on the host, read back from the device when t lives there: one element is gathered into a
 * one-texel texture on the device and read back (4 bytes), which waits for the kernels t depends on. A host tensor
 * is already there.
 */
export function settle(t: Tensor): number {
  if (t.isHost) return (t.data as Float32Array)[t.offset];
  return t.flatten().slice(0, 0, 1).toArray()[0];
}

/** Medians of `reps` timed runs of fn (each settled) after `warmup` untimed ones, in ms. */
function timeRuns(fn: () => Tensor, warmup: number, reps: number): number {
  for (let i = 0; i < warmup; i++) settle(fn());
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    settle(fn());
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/** A seeded randn tensor where the current backend keeps arrays (uploaded, untimed, on a device backend). */
const input = (shape: number[], seed: number): Tensor => randn(shape, { generator: new Generator(seed) }).moveTo(backend());

export interface KernelCase {
  name: string;
  shape: string;
  flops: number;
  /** Make the inputs on the current backend; the returned function runs the case once. */
  prepare: () => () => Tensor;
}

function gemmCase(n: number): KernelCase {
  return {
    name: `gemm-${n}`, shape: `${n}x${n} * ${n}x${n}`, flops: 2 * n ** 3,
    prepare: () => {
      const a = input([n, n], 1), b = input([n, n], 2);
      return () => noGrad(() => a.matmul(b));
    },
  };
}

/** A 3x3 stride-1 padding-1 convolution forward, C -> C channels at HxH, batch N, no bias. */
function convCase(name: string, N: number, C: number, H: number): KernelCase {
  return {
    name, shape: `${N}x${C}x${H}x${H} -> ${C}x${H}x${H} k3 s1`, flops: 2 * N * C * H * H * C * 9,
    prepare: () => {
      const x = input([N, C, H, H], 3), w = input([C, C, 3, 3], 4);
      return () => noGrad(() => F.conv2d(x, w, null, { padding: 1 }));
    },
  };
}

export const KERNEL_CASES: readonly KernelCase[] = [
  gemmCase(512),
  gemmCase(1024),
  convCase('r20-3x3-32-16-b64', 64, 32, 16),
  convCase('r18-3x3-256-14-b8', 8, 256, 14),
];

export const fcptsCaseName = (batch: number) => `${BENCH_MODEL}-fcpts-step-b${batch}`;

/** A student and its teacher: the model, and a frozen eval-mode copy of it built by `arch` (the benchmarks' pair). */
export function withTeacher(model: Module, arch: () => Module): { model: Module; teacher: Module } {
  const teacher = copyModel(model, arch);
  for (const p of teacher.parameters()) p.requiresGrad = false;
  return { model, teacher: teacher.eval() };
}

/** The FCPTS case's student and teacher: fmnist-resnet20 from its safetensors bytes, and a frozen eval-mode copy. */
export function pairFromWeights(weights: Uint8Array): { model: Module; teacher: Module } {
  const spec = bundledModelSpec(BENCH_MODEL);
  const arch = () => buildBundledArch(spec);
  const model = arch();
  model.loadStateDict(parseSafetensors(weights, `${BENCH_MODEL}.safetensors`).tensors);
  return withTeacher(model, arch);
}

export interface StepRecord extends TransferStats {
  step: number;
  ms: number;
}

/** The host <-> device counters of a backend that keeps them (gpujs); absent on host backends. */
interface Counted {
  transfers(): TransferStats;
  resetTransfers(): void;
}
const NO_TRAFFIC: TransferStats = { uploads: 0, uploadBytes: 0, readbacks: 0, readbackBytes: 0 };

/**
 * `iters` iterations of the real fcpts() (target sparsity 0.8, a 1,024-image calibration schedule, the defaults
 * otherwise) on the pair at `batch`, with a seeded randn batch [batch, 1, 28, 28] handed over fresh from the host
 * each iteration, on the current backend; the pair is moved onto it first (Module.moveTo) when it keeps arrays on a
 * device, unless onHost. Per iteration: its ms (from the batch being handed to the loop to its onStep) and, on a
 * backend that counts them, its uploads and readbacks. `before(step)` runs untimed before each iteration (a
 * profiler's reset); `onStep(record)` right after each. The exact correction after the last iteration is not timed.
 * The pair is pruned in place.
 */
export async function fcptsStepRecords(
  pair: { model: Module; teacher: Module }, batch: number, iters: number,
  opts: { onHost?: boolean; before?: (step: number) => void | Promise<void>; onStep?: (r: StepRecord) => void } = {},
): Promise<StepRecord[]> {
  const b = backend();
  const { model, teacher } = pair;
  if (b.upload && !opts.onHost) {
    model.moveTo(b);
    teacher.moveTo(b);
  }
  const counted = typeof (b as Partial<Counted>).transfers === 'function' ? (b as unknown as Counted) : null;
  const x = randn([batch, 1, 28, 28], { generator: new Generator(5) });
  const steps: StepRecord[] = [];
  let start = 0;
  await fcpts(
    {
      model,
      teacher,
      calibSize: 1024,
      batch: async (step) => {
        await opts.before?.(step);
        counted?.resetTransfers();
        start = performance.now();
        // a fresh host batch each iteration, as a loader gives
        return x.clone();
      },
      onStep: (log) => {
        const r = { step: log.step, ms: performance.now() - start, ...(counted?.transfers() ?? NO_TRAFFIC) };
        steps.push(r);
        opts.onStep?.(r);
      },
    },
    { sparsity: 0.8, iters, batchSize: batch },
  );
  return steps;
}

const row = (c: string, shape: string, engine: string, flops: number | null, ms: number): BenchRow => ({
  case: c, shape, engine, gflops: flops === null ? null : +(flops / ms / 1e6).toPrecision(4), ms: +ms.toFixed(2),
});

/**
 * Every case (or those opts.cases names) on the current backend, one after another; yields to the event loop
 * between cases through `onStatus`/`onRow` (a page awaits a repaint there). `weights`: fmnist-resnet20's safetensors
 * bytes, for the FCPTS step (null: that case is skipped).
 */
export async function runBenchCases(weights: Uint8Array | null, opts: BenchOptions = {}): Promise<BenchRow[]> {
  const engine = opts.engine ?? `ptslab-${backend().name}`;
  const warmup = opts.warmup ?? 2, reps = opts.reps ?? 5;
  const fb = opts.fcptsBatch ?? 64, fSteps = opts.fcptsSteps ?? 3, fWarm = opts.fcptsWarmup ?? 2;
  const wanted = (name: string) => !opts.cases?.length || opts.cases.some((c) => name.includes(c));
  const rows: BenchRow[] = [];
  const emit = async (r: BenchRow) => {
    rows.push(r);
    await opts.onRow?.(r);
  };
  for (const c of KERNEL_CASES.filter((c) => wanted(c.name))) {
    await opts.onStatus?.(`${c.name} ${c.shape} (${(c.flops / 1e9).toFixed(2)} GFLOP): ${warmup} warm-up + ${reps} timed runs on ${engine}`);
    const run = c.prepare();
    await emit(row(c.name, c.shape, engine, c.flops, timeRuns(run, warmup, reps)));
  }
  const fName = fcptsCaseName(fb);
  if (weights && wanted(fName)) {
    await opts.onStatus?.(`${fName}: ${fWarm} warm-up + ${fSteps} timed FCPTS iterations at batch ${fb} on ${engine}`);
    const steps = await fcptsStepRecords(pairFromWeights(weights), fb, fWarm + fSteps);
    await emit(row(fName, `${fb}x1x28x28`, engine, null, median(steps.slice(fWarm).map((s) => s.ms))));
  }
  return rows;
}
