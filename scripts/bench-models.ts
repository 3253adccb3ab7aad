// Whole-model cases of `npm run bench` (scripts/bench.ts), written over the public API only: a training step at
// 224x224 of ResNet-18 or MobileNetV2 (forward, cross-entropy, backward, SGD step, zeroGrad), a dense ResNet-18
// inference forward, and the memory check: RSS over many forward+backward steps of a small conv net (conv, depthwise
// conv, batch norm, ReLU, pooling, linear), which must not grow by more than 10% once warm. Each timed case comes
// as a prepared, warmed-up runner (`prepare*`), so bench.ts can interleave its runs with PyTorch's; `timeReps` and
// `median` are how the standalone helpers take medians (scripts/bench-sparse.ts and bench-fcpts.ts use them too).

import v8 from 'node:v8';
import vm from 'node:vm';
import { F, manualSeed, noGrad, randn } from '../core/index.js';
import { models, SGD, Sequential, Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear, type Module } from '../nn/index.js';
import { modelMacs } from '../sparsity/macs.js';

/** A prepared case: its warm-up already done, `run` times nothing itself; `flops` is one run's nominal count. */
export interface Runner {
  run: () => void;
  flops: number;
}

/** Median (the lower middle one) of `reps` timed runs of fn, in ms. */
export function timeReps(fn: () => void, reps: number): number {
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];

export type TrainArch = 'resnet18' | 'mobilenetv2';
const build: Record<TrainArch, () => Module> = { resnet18: () => models.resnet18(), mobilenetv2: () => models.mobilenetV2() };

const macsMemo = new Map<TrainArch, number>();
/** Dense multiply-adds of one 224x224 image (sparsity/macs.ts: conv and linear layers; ResNet-18 1.814 G). */
export function macs224(arch: TrainArch): number {
  let m = macsMemo.get(arch);
  if (m === undefined) macsMemo.set(arch, (m = modelMacs(build[arch](), [3, 224, 224]).dense));
  return m;
}

/** Nominal flops of a training step: 3x forward (2 x MACs x batch x 3). */
export const trainStepFlops = (arch: TrainArch, batch: number): number => 3 * 2 * macs224(arch) * batch;
/** Nominal flops of a ResNet-18 forward (dense MACs, whatever the weights' sparsity): 2 x MACs x batch. */
export const inferFlops = (batch: number): number => 2 * macs224('resnet18') * batch;

/**
 * A training step of a seeded ResNet-18 / MobileNetV2 at 224x224 and the given batch: forward in train mode,
 * cross-entropy, backward, SGD (lr 0.01, momentum 0.9) step, zeroGrad; one warm-up step done. flops: nominal
 * 3x forward (2 x MACs x batch x 3).
 */
export function prepareTrainStep(arch: TrainArch, batch: number): Runner {
  const flops = trainStepFlops(arch, batch);
  manualSeed(0);
  const model = build[arch]();
  model.train();
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const x = randn([batch, 3, 224, 224]);
  const y = Array.from({ length: batch }, (_, i) => (i * 37) % 1000);
  const run = () => {
    const loss = F.crossEntropy(model.call(x), y);
    loss.backward();
    opt.step();
    opt.zeroGrad();
  };
  run();
  return { run, flops };
}

/** Median ms of a ResNet-18 training step at the given batch (one warm-up step excluded); flops nominal 3x forward. */
export function runResnetStep(batch: number, reps: number): { ms: number; flops: number } {
  const r = prepareTrainStep('resnet18', batch);
  return { ms: timeReps(r.run, reps), flops: r.flops };
}

/** A dense seeded ResNet-18's eval-mode forward under noGrad at 224x224; one warm-up done. flops: 2 x MACs x batch. */
export function prepareResnetInfer(batch: number): Runner {
  const flops = inferFlops(batch);
  manualSeed(0);
  const model = models.resnet18();
  model.eval();
  const x = randn([batch, 3, 224, 224]);
  const run = () => void noGrad(() => model.call(x));
  run();
  return { run, flops };
}

/** RSS at start (after warm-up) and end of `steps` training steps of a small conv net on the current backend. */
export async function runMemoryCheck(log: (s: string) => void, steps: number): Promise<void> {
  manualSeed(0);
  const net = new Sequential(
    new Conv2d(3, 16, 3, { padding: 1, bias: false }), new BatchNorm2d(16), new ReLU(),
    new Conv2d(16, 16, 3, { padding: 1, groups: 16, bias: false }), new BatchNorm2d(16), new ReLU(),
    new Conv2d(16, 32, 1), new ReLU(), new MaxPool2d(2),
    new Conv2d(32, 32, 3, { padding: 1, stride: 2 }), new ReLU(),
    new AdaptiveAvgPool2d(1), new Flatten(), new Linear(32, 10),
  );
  net.train();
  const opt = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
  const x = randn([8, 3, 32, 32]);
  const y = [0, 1, 2, 3, 4, 5, 6, 7];
  const step = () => {
    const loss = F.crossEntropy(net.call(x), y);
    loss.backward();
    opt.step();
    opt.zeroGrad();
    return loss.item();
  };
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  // warm-up: JIT, the wasm arena, V8's heap limits and malloc's free lists settle within a few hundred steps
  const warm = Math.min(200, steps);
  for (let i = 0; i < warm; i++) step();
  gc();
  const start = process.memoryUsage();
  const t0 = performance.now();
  let loss = 0;
  let peak = start.rss;
  const trace: string[] = [];
  for (let i = 1; i <= steps; i++) {
    loss = step();
    if (i % 250 === 0 || i === steps) {
      gc();
      const m = process.memoryUsage();
      peak = Math.max(peak, m.rss);
      trace.push(`${i}: ${mb(m.rss)}`);
      await new Promise((r) => setImmediate(r)); // let finalizers run, as a real training loop would
    }
  }
  const end = process.memoryUsage();
  const growth = (end.rss - start.rss) / start.rss;
  log(`memory: ${steps} forward+backward steps of a small conv net (batch 8, 32x32) after ${warm} warm-up steps, in ${((performance.now() - t0) / 1000).toFixed(1)} s, final loss ${loss.toFixed(4)}`);
  log(`memory: RSS (MiB, after a full GC) at step ${trace.join(', ')}`);
  log(`memory: RSS start ${mb(start.rss)} MiB, end ${mb(end.rss)} MiB, peak ${mb(peak)} MiB, growth ${(growth * 100).toFixed(1)}% (target < 10%); JS heap ${mb(start.heapUsed)} -> ${mb(end.heapUsed)} MiB`);
}

/** A full garbage collection (V8's gc exposed at run time, so `node dist/scripts/bench.js` needs no flag). */
function gc(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}
