// `npm run bench`: the project's speed harness. Times our backends' kernels (ptslab-<backend>, called through the
// Backend interface on NCHW views) and the peers tfjs-backend-cpu and tfjs-backend-wasm (their kernels through
// tf.engine().runKernel on NHWC tensors) in the same process run: conv2d forward and forward+backward on ResNet-50
// and MobileNetV2 layer shapes (depthwise included) and ResNet-20 ones at batch 64, GEMM, and elementwise ops.
// Warm-up runs are excluded; medians are reported with GFLOP/s and each of our engines' ratio to each peer.
//
// Then whole models, on ptslab-cpu with PyTorch as the peer (engine `torch`: Debian's /usr/bin/python3 with torch,
// or PTSLAB_TORCH_PYTHON; 2 threads; one process for the run, scripts/bench-peer.ts + bench_torch.py), timed in
// interleaved rounds (each engine one run per round, after each one's warm-up; about 2 minutes in all, 30 s with
// --quick), with each ptslab row's time ratio to the rows after it:
//   resnet18-train-step-b1/-b8, mobilenetv2-train-step-b8  224x224 forward, cross-entropy, backward, SGD step
//   resnet20-fcpts-step-b64  one iteration of the real fcpts() on the Fashion-MNIST ResNet-20 (scripts/bench-fcpts.ts)
//   resnet18-infer-b1/-b64   dense eval forward under noGrad
//   resnet18-s90-infer-b1/-b64  the same pruned to 90%: ptslab-cpu (dense kernels), ptslab-cpu-sparse, torch (dense)
// (flops are nominal: 2 x dense MACs x batch, x3 for a training step, x4 for FCPTS: student 3x, teacher 1x), and a
// per-op profile of the FCPTS step (core/profile.ts, after that case) and a
// summary of issue 23's targets (TARGETS in scripts/bench-peer.ts) from this run's rows. Without torch (no
// interpreter, `import torch` failing, or PTSLAB_BENCH_TORCH=0) each torch row is a line saying why; the rest runs.
//   --json     one JSON object per line: { case, shape, engine, gflops, ms } (progress, skip reasons and the target
//              summary go to stderr; a skipped torch row emits nothing)
//   --quick    fewer cases and runs; slow engines (reference, gpujs, tfjs-cpu) only on the headline cases; whole
//              models: the b8 training steps, the FCPTS step and the b1 inference cases only
//   --memory   RSS over 1,000 forward+backward steps of a small conv net instead (target: < 10% growth)
//   --cases S  only cases whose name contains S (S,T,...: one of them; e.g. resnet18,mobilenetv2,fcpts for the
//              whole models); --engines a,b  only these engines (ptslab-cpu-sparse, torch included); --backend B
//              (memory check)

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import os from 'node:os';
import '../core/backend/all.js';
import { backend, listBackends, setBackend, withBackend } from '../core/backend/index.js';
import type { Backend, Conv2dParams, View } from '../core/backend/types.js';
import { hostData } from '../core/dtype.js';
import { cpuKernelInfo, shutdownThreads, threadCount } from '../core/backend/cpu/index.js';
import { convOut } from '../core/backend/reference.js';
import { inferFlops, median, prepareResnetInfer, prepareTrainStep, runMemoryCheck, trainStepFlops, type Runner as ModelRunner } from './bench-models.js';
import { FCPTS_WARMUP, fcptsFlops, fcptsProfile, fcptsStepper } from './bench-fcpts.js';
import { evaluateTargets, formatTarget, lazyTorchPeer, torchPython } from './bench-peer.js';
import { prepareS90Infer } from './bench-sparse.js';

const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(f);
const opt = (f: string) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : undefined);
/** Which cpu kernel build runs (PTSLAB_FMA=0 forces SIMD128). */
const kernelBuild = (): string => {
  try {
    return cpuKernelInfo().fma ? 'FMA (relaxed SIMD)' : 'SIMD128';
  } catch (e) {
    return `no (${(e as Error).message})`;
  }
};
const JSON_OUT = flag('--json'), QUICK = flag('--quick');
/** --cases S[,T...]: the cases whose name contains one of them (all without the flag). */
const caseFilters = opt('--cases')?.split(',').filter(Boolean);
const selected = (caseName: string) => !caseFilters || caseFilters.some((f) => caseName.includes(f));
const log = (s: string) => (JSON_OUT ? process.stderr : process.stdout).write(s + '\n');

interface ConvCase { name: string; N: number; C: number; O: number; H: number; k: number; s: number; dw?: boolean; headline?: boolean; quick?: boolean }
const convCases: ConvCase[] = [
  { name: 'conv3x3-256-56', N: 1, C: 256, O: 256, H: 56, k: 3, s: 1, headline: true, quick: true },
  // ResNet-50
  { name: 'r50-conv1-7x7-3-64-224-s2', N: 1, C: 3, O: 64, H: 224, k: 7, s: 2, quick: true },
  { name: 'r50-1x1-64-256-56', N: 1, C: 64, O: 256, H: 56, k: 1, s: 1 },
  { name: 'r50-3x3-64-56', N: 1, C: 64, O: 64, H: 56, k: 3, s: 1, quick: true },
  { name: 'r50-3x3-128-56-s2', N: 1, C: 128, O: 128, H: 56, k: 3, s: 2 },
  { name: 'r50-3x3-256-14', N: 1, C: 256, O: 256, H: 14, k: 3, s: 1 },
  { name: 'r50-3x3-512-7', N: 1, C: 512, O: 512, H: 7, k: 3, s: 1, quick: true },
  { name: 'r50-1x1-2048-512-7', N: 1, C: 2048, O: 512, H: 7, k: 1, s: 1 },
  // MobileNetV2
  { name: 'mv2-conv-3-32-224-s2', N: 1, C: 3, O: 32, H: 224, k: 3, s: 2 },
  { name: 'mv2-dw3x3-32-112', N: 1, C: 32, O: 32, H: 112, k: 3, s: 1, dw: true, quick: true },
  { name: 'mv2-dw3x3-96-112-s2', N: 1, C: 96, O: 96, H: 112, k: 3, s: 2, dw: true },
  { name: 'mv2-dw3x3-144-56', N: 1, C: 144, O: 144, H: 56, k: 3, s: 1, dw: true },
  { name: 'mv2-dw3x3-960-7', N: 1, C: 960, O: 960, H: 7, k: 3, s: 1, dw: true },
  { name: 'mv2-1x1-24-144-56', N: 1, C: 24, O: 144, H: 56, k: 1, s: 1, quick: true },
  { name: 'mv2-1x1-320-1280-7', N: 1, C: 320, O: 1280, H: 7, k: 1, s: 1 },
  // ResNet-20 on 28x28 images, batch 64 (the cpu backend's direct kernels)
  { name: 'r20-3x3-1-16-28', N: 64, C: 1, O: 16, H: 28, k: 3, s: 1 },
  { name: 'r20-3x3-16-28', N: 64, C: 16, O: 16, H: 28, k: 3, s: 1, quick: true },
  { name: 'r20-3x3-16-32-28-s2', N: 64, C: 16, O: 32, H: 28, k: 3, s: 2 },
  { name: 'r20-1x1-16-32-28-s2', N: 64, C: 16, O: 32, H: 28, k: 1, s: 2 },
  { name: 'r20-3x3-32-14', N: 64, C: 32, O: 32, H: 14, k: 3, s: 1 },
  { name: 'r20-3x3-32-64-14-s2', N: 64, C: 32, O: 64, H: 14, k: 3, s: 2 },
  { name: 'r20-3x3-64-7', N: 64, C: 64, O: 64, H: 7, k: 3, s: 1 },
];
const gemmCases = [
  { name: 'gemm-256x2304x3136', M: 256, K: 2304, N: 3136, quick: true },
  { name: 'gemm-1024', M: 1024, K: 1024, N: 1024 },
];

/**
 * Memory-bound cases on ResNet-20 activation shapes: relu; relu's gradient gy * [x > 0] (gt against a scalar 0, then
 * mul); add; batch norm in training (statistics, forward, backward). flops: elements times elementwise passes.
 */
type EwOp = 'relu' | 'relugrad' | 'add' | 'bn';
interface EwCase { name: string; op: EwOp; shape: number[]; passes: number; quick?: boolean }
const ewCases: EwCase[] = [
  { name: 'ew-relu-64x16x28x28', op: 'relu', shape: [64, 16, 28, 28], passes: 1, quick: true },
  { name: 'ew-relugrad-64x16x28x28', op: 'relugrad', shape: [64, 16, 28, 28], passes: 2 },
  { name: 'ew-add-128x16x28x28', op: 'add', shape: [128, 16, 28, 28], passes: 1 },
  { name: 'ew-bn-train-64x16x28x28', op: 'bn', shape: [64, 16, 28, 28], passes: 5, quick: true },
  { name: 'ew-bn-train-64x64x7x7', op: 'bn', shape: [64, 64, 7, 7], passes: 5 },
];

type Runner = () => void;
interface Engine {
  name: string;
  slow: boolean;
  prepare?: () => Promise<void>;
  conv(c: ConvCase, fwdbwd: boolean): Runner | null;
  gemm(M: number, K: number, N: number): Runner | null;
  elementwise(c: EwCase): Runner | null;
}

let seed = 1;
const rand = (n: number) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return a;
};
const view = (data: Float32Array, shape: number[]): View => ({
  data, shape, strides: shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1)), offset: 0,
});
const params = (c: ConvCase): Conv2dParams => ({
  stride: [c.s, c.s], padding: [c.k >> 1, c.k >> 1], dilation: [1, 1], groups: c.dw ? c.C : 1,
});
const outSize = (c: ConvCase) => convOut(c.H, c.H, c.k, c.k, params(c)).OH;
const convFlops = (c: ConvCase, fwdbwd: boolean) =>
  2 * c.N * c.O * outSize(c) ** 2 * (c.dw ? 1 : c.C) * c.k * c.k * (fwdbwd ? 3 : 1);

function ptslabEngine(b: Backend): Engine {
  return {
    name: `ptslab-${b.name}`,
    slow: b.name === 'reference' || b.name === 'gpujs',
    conv(c, fwdbwd) {
      const p = params(c), OH = outSize(c);
      const x = view(rand(c.N * c.C * c.H * c.H), [c.N, c.C, c.H, c.H]);
      const w = view(rand(c.O * (c.dw ? 1 : c.C) * c.k * c.k), [c.O, c.dw ? 1 : c.C, c.k, c.k]);
      const gy = view(rand(c.N * c.O * OH * OH), [c.N, c.O, OH, OH]);
      return () => {
        b.conv2d(x, w, null, p);
        if (fwdbwd) {
          b.conv2dBackwardInput(gy, w, x.shape, p);
          b.conv2dBackwardWeight(gy, x, w.shape, p);
        }
      };
    },
    gemm(M, K, N) {
      const a = view(rand(M * K), [1, M, K]), bb = view(rand(K * N), [1, K, N]);
      return () => void b.matmul(a, bb);
    },
    elementwise(c) {
      const n = c.shape.reduce((p, d) => p * d, 1), C = c.shape[1];
      const x = view(rand(n), c.shape), y = view(rand(n), c.shape);
      const zero: View = { data: new Float32Array(1), shape: c.shape, strides: c.shape.map(() => 0), offset: 0 };
      const w = rand(C), bias = rand(C);
      if (c.op === 'relu') return () => void b.unary('relu', x);
      if (c.op === 'relugrad') return () => void b.binary('mul', y, view(b.binary('gt', x, zero) as Float32Array, c.shape));
      if (c.op === 'add') return () => void b.binary('add', x, y);
      return () => {
        const { mean, variance } = b.batchNormStats(x);
        const invstd = hostData(variance).map((v) => 1 / Math.sqrt(v + 1e-5));
        b.batchNormForward(x, mean, invstd, w, bias);
        b.batchNormBackward(y, x, mean, invstd, w, true);
      };
    },
  };
}

function tfjsEngine(name: 'cpu' | 'wasm'): Engine {
  const has = (k: string) => tf.getKernel(k, name) !== undefined;
  const run = (kernel: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>) => {
    const y = tf.engine().runKernel(kernel, inputs as never, attrs as never) as tf.Tensor;
    y.dataSync();
    y.dispose();
  };
  return {
    name: `tfjs-${name}`,
    slow: name === 'cpu',
    prepare: async () => {
      await tf.setBackend(name);
      await tf.ready();
    },
    conv(c, fwdbwd) {
      const OH = outSize(c), pd = c.k >> 1;
      const pad = [[0, 0], [pd, pd], [pd, pd], [0, 0]];
      const fwdK = c.dw ? 'DepthwiseConv2dNative' : 'Conv2D';
      const binK = c.dw ? 'DepthwiseConv2dNativeBackpropInput' : 'Conv2DBackpropInput';
      const bwK = c.dw ? 'DepthwiseConv2dNativeBackpropFilter' : 'Conv2DBackpropFilter';
      if (!has(fwdK) || (fwdbwd && (!has(binK) || !has(bwK)))) return null;
      const xShape = [c.N, c.H, c.H, c.C], fShape = [c.k, c.k, c.C, c.dw ? 1 : c.O];
      const x = tf.tensor(rand(c.N * c.H * c.H * c.C), xShape as [number, number, number, number]);
      const f = tf.tensor(rand(fShape.reduce((a, b) => a * b, 1)), fShape as [number, number, number, number]);
      const dy = tf.tensor(rand(c.N * OH * OH * c.O), [c.N, OH, OH, c.O]);
      const common = { strides: [c.s, c.s], pad, dataFormat: 'NHWC', dilations: [1, 1] };
      return () => {
        run(fwdK, { x, filter: f }, common);
        if (fwdbwd) {
          run(binK, { dy, filter: f }, { ...common, inputShape: xShape });
          run(bwK, { x, dy }, { ...common, filterShape: fShape });
        }
      };
    },
    gemm(M, K, N) {
      const a = tf.tensor(rand(M * K), [1, M, K]), b = tf.tensor(rand(K * N), [1, K, N]);
      return () => run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
    },
    elementwise(c) {
      // no peer for batch norm's training backward (tfjs differentiates it op by op)
      const n = c.shape.reduce((p, d) => p * d, 1);
      if (c.op === 'bn' || !has('Relu') || !has('Step') || !has('Multiply') || !has('Add')) return null;
      const x = tf.tensor(rand(n), c.shape), y = tf.tensor(rand(n), c.shape);
      if (c.op === 'relu') return () => run('Relu', { x }, {});
      if (c.op === 'add') return () => run('Add', { a: x, b: y }, {});
      return () => {
        const step = tf.engine().runKernel('Step', { x } as never, { alpha: 0 } as never) as tf.Tensor;
        run('Multiply', { a: y, b: step }, {});
        step.dispose();
      };
    },
  };
}

/** One timed run of a slow engine (seconds to minutes), after a warm-up on a smaller version of the case. */
function timeSlow(fn: Runner, warm: Runner | null): number {
  (warm ?? fn)();
  const t = performance.now();
  fn();
  return performance.now() - t;
}

/**
 * Medians of the fast engines, timed in interleaved rounds (A B C, A B C, ...) after one warm-up each, so a burst of
 * load from other processes hits every engine alike and the ratios within a run hold.
 */
function timeInterleaved(fns: Runner[]): number[] {
  for (const fn of fns) fn();
  const rounds = QUICK ? 3 : 7;
  const budget = QUICK ? 3000 : 8000;
  const ts: number[][] = fns.map(() => []);
  const start = performance.now();
  for (let r = 0; r < rounds && (r < 3 || performance.now() - start < budget); r++) {
    fns.forEach((fn, i) => {
      const t = performance.now();
      fn();
      ts[i].push(performance.now() - t);
    });
  }
  return ts.map(median);
}

interface Row { case: string; shape: string; engine: string; gflops: number; ms: number }
const rows: Row[] = [];

function report(caseName: string, shape: string, engine: string, flops: number, ms: number) {
  const r: Row = { case: caseName, shape, engine, gflops: +(flops / ms / 1e6).toPrecision(4), ms: +ms.toFixed(2) };
  rows.push(r);
  if (JSON_OUT) process.stdout.write(JSON.stringify(r) + '\n');
}

function printCase(caseName: string) {
  const rs = rows.filter((r) => r.case === caseName);
  const peers = rs.filter((r) => r.engine.startsWith('tfjs-'));
  for (const r of rs) {
    // ratio of rates (= ratio of times on the same shape; slow peers may have run a reduced shape, see its row)
    const ratios = r.engine.startsWith('ptslab-') ? peers.map((p) => `${(r.gflops / p.gflops).toFixed(2)}x ${p.engine}`).join(', ') : '';
    const note = r.shape.includes('(') ? `  [${r.shape}]` : '';
    log(`  ${r.engine.padEnd(16)} ${r.ms.toFixed(1).padStart(10)} ms ${r.gflops.toFixed(2).padStart(8)} GFLOP/s  ${ratios}${note}`);
  }
}

async function main() {
  if (flag('--memory')) {
    const b = setBackend(opt('--backend') ?? 'cpu') && backend();
    log(`memory check on ptslab-${b.name}`);
    await runMemoryCheck(log, QUICK ? 200 : 1000);
    return;
  }
  const only = opt('--engines')?.split(',');
  const ours = listBackends().map((n) => withBackend(n, () => backend())).filter((b) => !b.unavailableReason?.());
  const engines: Engine[] = [...ours.map(ptslabEngine), tfjsEngine('cpu'), tfjsEngine('wasm')] // tfjs-wasm last
    .filter((e) => !only || only.includes(e.name));
  log(`ptslab bench: node ${process.version}, ${os.cpus()[0]?.model ?? '?'}, ${os.availableParallelism()} threads (cpu backend uses ${threadCount()}, ${kernelBuild()} kernels), load ${os.loadavg()[0].toFixed(2)}, ${QUICK ? 'quick' : 'full'}`);
  log(`engines: ${engines.map((e) => e.name).join(', ')}; unavailable: ${listBackends().filter((n) => !ours.some((b) => b.name === n)).join(', ') || 'none'}`);
  log(`whole-model engines: ptslab-cpu, ptslab-cpu-sparse, torch (${torchPython()} scripts/bench_torch.py, 2 threads, started on the first torch case${process.env.PTSLAB_BENCH_TORCH === '0' ? '; off: PTSLAB_BENCH_TORCH=0' : ''})`);
  /**
   * One case on every engine. A variant is a runner factory plus its shape and flops: `full` is the case itself,
   * `reduced` (slow engines on forward+backward: tfjs-cpu's Conv2DBackpropFilter runs at ~0.004 GFLOP/s, minutes on
   * the full shape) a channel-reduced version reported under its own shape, `warm` the slow engines' warm-up.
   */
  type Variant = { make: (e: Engine) => Runner | null; shape: string; flops: number };
  const run = async (caseName: string, headline: boolean, full: Variant, reduced: Variant | null, warm: Variant) => {
    if (!selected(caseName)) return;
    const amount = full.flops >= 1e7 ? `${(full.flops / 1e9).toFixed(2)} GFLOP` : `${(full.flops / 1e6).toFixed(2)} MFLOP`;
    log(`${caseName} ${full.shape} (${amount})`);
    // slow engines one by one, then the fast ones interleaved (tfjs-wasm last to prepare: tf's backend stays wasm)
    for (const e of engines.filter((e) => e.slow && headline)) {
      const v = reduced ?? full;
      await e.prepare?.();
      const fn = v.make(e);
      if (fn) report(caseName, v.shape, e.name, v.flops, timeSlow(fn, warm.make(e)));
      tf.disposeVariables();
    }
    const fast: { e: Engine; fn: Runner }[] = [];
    for (const e of engines.filter((e) => !e.slow)) {
      await e.prepare?.();
      const fn = full.make(e);
      if (fn) fast.push({ e, fn });
    }
    const ms = timeInterleaved(fast.map((f) => f.fn));
    fast.forEach((f, i) => report(caseName, full.shape, f.e.name, full.flops, ms[i]));
    tf.disposeVariables();
    printCase(caseName);
  };
  const convShape = (c: ConvCase) => {
    const OH = outSize(c);
    return `${c.N}x${c.C}x${c.H}x${c.H} -> ${c.O}x${OH}x${OH} k${c.k} s${c.s}${c.dw ? ' depthwise' : ''}`;
  };
  const shrink = (c: ConvCase, f: number): ConvCase => ({ ...c, C: Math.max(1, Math.ceil(c.C / f)), O: c.dw ? Math.max(1, Math.ceil(c.C / f)) : Math.max(1, Math.ceil(c.O / f)) });
  for (const c of convCases.filter((c) => !QUICK || c.quick)) {
    for (const fwdbwd of [false, true]) {
      const variant = (cc: ConvCase, tag = ''): Variant => ({ make: (e) => e.conv(cc, fwdbwd), shape: convShape(cc) + tag, flops: convFlops(cc, fwdbwd) });
      const reduced = fwdbwd ? variant(shrink(c, 8), ' (channels / 8: slow engine)') : null;
      await run(`${c.name}-${fwdbwd ? 'fwdbwd' : 'fwd'}`, !!c.headline, variant(c), reduced, variant(shrink(c, fwdbwd ? 16 : 4)));
    }
  }
  for (const g of gemmCases.filter((g) => !QUICK || g.quick)) {
    const variant = (M: number): Variant => ({ make: (e) => e.gemm(M, g.K, g.N), shape: `${M}x${g.K} * ${g.K}x${g.N}`, flops: 2 * M * g.K * g.N });
    await run(g.name, true, variant(g.M), null, variant(g.M >> 2));
  }
  for (const c of ewCases.filter((c) => !QUICK || c.quick)) {
    const n = c.shape.reduce((p, d) => p * d, 1);
    const variant: Variant = { make: (e) => e.elementwise(c), shape: c.shape.join('x'), flops: n * c.passes };
    await run(c.name, false, variant, null, variant);
  }
  if (!modelCases.some((c) => selected(c.name))) return;
  const cpu = ours.find((b) => b.name === 'cpu');
  if (!cpu) log(`whole-model cases: no ptslab rows (the cpu backend is unavailable: ${withBackend('cpu', () => backend()).unavailableReason?.()})`);
  const prev = cpu ? setBackend(cpu) : null;
  try {
    for (const c of modelCases) await runModelCase(c, !!cpu, only);
    // where the FCPTS step's time goes, by kernel (the issue asked for it in the bench output)
    if (cpu && selected('resnet20-fcpts-step-b64') && (!only || only.includes('ptslab-cpu'))) {
      const iters = QUICK ? 3 : 10;
      log(`resnet20-fcpts-step-b64 on ptslab-cpu by op, ${iters} iterations after ${FCPTS_WARMUP} (core/profile.ts; js/other: autograd, optimizer, bookkeeping, GC):`);
      log((await fcptsProfile(64, iters)).split('\n').map((l) => `  ${l}`).join('\n'));
    }
  } finally {
    if (prev) setBackend(prev);
    await torch.close();
  }
  log('whole-model cases: reference/gpujs skipped (minutes per step), tfjs peers have no models here');
  log("targets (issue 23), from this run's rows:");
  for (const r of evaluateTargets(rows)) log(`  ${formatTarget(r)}`);
}

// Whole models.

/** A prepared engine of a whole-model case: next() runs once and gives its ms; done settles after the last run. */
interface Prepared { next: () => Promise<number>; done?: Promise<void>; note?: string }
interface ModelCase {
  name: string;
  shape: string;
  batch: number;
  /** bench_torch.py's case name (it takes the batch separately). */
  torch: string;
  flops: () => number;
  /** What flops counts. */
  what: string;
  /** Timed rounds: full mode, and quick mode (absent: not in --quick). */
  reps: number;
  quick?: number;
  /** Our engines; each prepare builds and warms up (reps: the rounds that follow). */
  ptslab: { engine: string; prepare: (reps: number) => Promise<Prepared> }[];
}

const timed = (r: ModelRunner & { layers?: string }): Prepared => ({
  next: async () => {
    const t = performance.now();
    r.run();
    return performance.now() - t;
  },
  note: r.layers,
});
const cpuEngine = (prepare: () => ModelRunner, engine = 'ptslab-cpu') => ({ engine, prepare: async () => timed(prepare()) });
const NOMINAL = '2 x dense MACs x batch';

const modelCases: ModelCase[] = [
  ...[1, 8].map((b): ModelCase => ({
    name: `resnet18-train-step-b${b}`, shape: `${b}x3x224x224`, batch: b, torch: 'resnet18-train-step',
    flops: () => trainStepFlops('resnet18', b), what: `nominal 3x forward: 3 x ${NOMINAL}`, reps: b === 1 ? 5 : 3, quick: b === 8 ? 2 : undefined,
    ptslab: [cpuEngine(() => prepareTrainStep('resnet18', b))],
  })),
  {
    name: 'mobilenetv2-train-step-b8', shape: '8x3x224x224', batch: 8, torch: 'mobilenetv2-train-step',
    flops: () => trainStepFlops('mobilenetv2', 8), what: `nominal 3x forward: 3 x ${NOMINAL}`, reps: 3, quick: 2,
    ptslab: [cpuEngine(() => prepareTrainStep('mobilenetv2', 8))],
  },
  {
    name: 'resnet20-fcpts-step-b64', shape: '64x1x28x28', batch: 64, torch: 'resnet20-fcpts-step',
    flops: () => fcptsFlops(64), what: `nominal: student 3x + teacher 1x forward, 4 x ${NOMINAL}`, reps: 7, quick: 3,
    ptslab: [{
      engine: 'ptslab-cpu',
      prepare: async (reps) => {
        const s = fcptsStepper(64, FCPTS_WARMUP + reps);
        for (let i = 0; i < FCPTS_WARMUP; i++) await s.next();
        return { next: s.next, done: s.done };
      },
    }],
  },
  ...[1, 64].map((b): ModelCase => ({
    name: `resnet18-infer-b${b}`, shape: `${b}x3x224x224`, batch: b, torch: 'resnet18-infer',
    flops: () => inferFlops(b), what: NOMINAL, reps: b === 1 ? 9 : 2, quick: b === 1 ? 5 : undefined,
    ptslab: [cpuEngine(() => prepareResnetInfer(b))],
  })),
  ...[1, 64].map((b): ModelCase => ({
    name: `resnet18-s90-infer-b${b}`, shape: `${b}x3x224x224, 90% of weights zero`, batch: b, torch: 'resnet18-s90-infer',
    flops: () => inferFlops(b), what: `${NOMINAL} (the dense count)`, reps: b === 1 ? 9 : 2, quick: b === 1 ? 5 : undefined,
    ptslab: [cpuEngine(() => prepareS90Infer(b, 'dense')), cpuEngine(() => prepareS90Infer(b, 'sparse'), 'ptslab-cpu-sparse')],
  })),
];

const torch = lazyTorchPeer();
let torchSkipSaid = false;

/** A whole-model case on our engines and PyTorch: each prepared (warm-up), then `reps` interleaved rounds. */
async function runModelCase(c: ModelCase, haveCpu: boolean, only: string[] | undefined) {
  if (!selected(c.name)) return;
  const reps = QUICK ? c.quick : c.reps;
  if (reps === undefined) return;
  const want = (e: string) => !only || only.includes(e);
  const flops = c.flops();
  log(`${c.name} ${c.shape} (${(flops / 1e9).toFixed(2)} GFLOP, ${c.what}; ${reps} interleaved rounds)`);
  const engines: ({ engine: string } & Prepared)[] = [];
  for (const e of c.ptslab.filter((e) => haveCpu && want(e.engine))) engines.push({ engine: e.engine, ...(await e.prepare(reps)) });
  let torchWhy: string | null = null;
  if (want('torch')) {
    const peer = await torch.get();
    if (typeof peer === 'string') torchWhy = peer;
    else {
      try {
        await peer.time(c.torch, c.batch, 0); // build and warm up
        engines.push({ engine: 'torch', next: async () => (await peer.time(c.torch, c.batch, 1))! });
      } catch (e) {
        torchWhy = (e as Error).message;
      }
    }
  }
  const ts = engines.map((): number[] => []);
  for (let r = 0; r < reps; r++) {
    for (const [i, e] of engines.entries()) {
      if (e.engine === 'torch' && torchWhy) continue;
      try {
        ts[i].push(await e.next());
      } catch (err) {
        if (e.engine !== 'torch') throw err;
        torchWhy = (err as Error).message;
      }
    }
  }
  for (const e of engines) await e.done;
  engines.forEach((e, i) => {
    if (ts[i].length === reps) report(c.name, c.shape, e.engine, flops, median(ts[i]));
  });
  printModelCase(c.name, engines);
  if (torchWhy) {
    if (!torchSkipSaid) log(`torch rows skipped: ${torchWhy}`);
    torchSkipSaid = true;
    log(`  ${'torch'.padEnd(17)} skipped: ${torchWhy}`);
  }
}

/** A whole-model case's rows, each ptslab row with its time ratio to every row after it (x: times as long). */
function printModelCase(caseName: string, engines: readonly { engine: string; note?: string }[]) {
  const rs = rows.filter((r) => r.case === caseName);
  rs.forEach((r, i) => {
    const ratios = r.engine.startsWith('ptslab-') ? rs.slice(i + 1).map((p) => `time ${(r.ms / p.ms).toFixed(2)}x ${p.engine}`).join(', ') : '';
    const note = engines.find((e) => e.engine === r.engine)?.note;
    log(`  ${r.engine.padEnd(17)} ${r.ms.toFixed(1).padStart(9)} ms ${r.gflops.toFixed(2).padStart(8)} GFLOP/s  ${ratios}${note ? `  [${note}]` : ''}`);
  });
}

await main();
shutdownThreads();
