// Whole-model cases of `npm run bench` (scripts/bench.ts), written over the public API only: one ResNet-18 training
// step at 224x224 (forward, cross-entropy, backward, SGD step), and the memory check: RSS over many forward+backward
// steps of a small conv net (conv, depthwise conv, batch norm, ReLU, pooling, linear), which must not grow by more
// than 10% once warm.

import v8 from 'node:v8';
import vm from 'node:vm';
import { F, manualSeed, randn } from '../core/index.js';
import { models, SGD, Sequential, Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear } from '../nn/index.js';

/** torchvision's ResNet-18 at 224x224: 1.814 G multiply-adds per image forward. */
const RESNET18_MACS = 1.814e9;

/** Median ms of a ResNet-18 training step at the given batch (one warm-up step excluded); flops nominal 3x forward. */
export function runResnetStep(batch: number, reps: number): { ms: number; flops: number } {
  manualSeed(0);
  const model = models.resnet18();
  model.train();
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const x = randn([batch, 3, 224, 224]);
  const y = Array.from({ length: batch }, (_, i) => (i * 37) % 1000);
  const step = () => {
    const loss = F.crossEntropy(model.call(x), y);
    loss.backward();
    opt.step();
    opt.zeroGrad();
  };
  step();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    step();
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return { ms: ts[(ts.length - 1) >> 1], flops: 3 * 2 * RESNET18_MACS * batch };
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
