// Baselines: one-shot pruning is exact, BN re-calibration computes the cumulative statistics, BN folding keeps the
// function, POT's channel correction matches the dense moments, and POT beats plain global-L2 pruning at matching
// the dense network's outputs.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { F, Generator, noGrad, randn, type Tensor } from '../core/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential, type Module } from '../nn/index.js';
import { bnRecalibrate, oneShot } from '../sparsity/baselines.js';
import { correctChannelStats, foldBatchNorms, pot } from '../sparsity/pot.js';
import { maskFromCount } from '../sparsity/masks.js';
import { ALLOCATION_METHODS } from '../sparsity/allocate.js';

function tinyNet(seed: number): Module {
  const g = new Generator(seed);
  const net = new Sequential(
    new Conv2d(2, 8, 3, { padding: 1, generator: g, bias: false }), new BatchNorm2d(8), new ReLU(),
    new Conv2d(8, 16, 3, { padding: 1, stride: 2, generator: g, bias: false }), new BatchNorm2d(16), new ReLU(),
    new AdaptiveAvgPool2d(1), new Flatten(), new Linear(16, 5, { generator: g }),
  );
  // Non-trivial BN statistics and affine parameters.
  noGrad(() => {
    for (const m of net.modules()) {
      if (m instanceof BatchNorm2d) {
        m.runningMean!.copy_(randn([m.numFeatures], { generator: g, std: 0.2 }));
        m.runningVar!.copy_(randn([m.numFeatures], { generator: g }).abs().add(0.5));
        m.weight!.copy_(randn([m.numFeatures], { generator: g, std: 0.3 }).add(1));
        m.bias!.copy_(randn([m.numFeatures], { generator: g, std: 0.1 }));
      }
    }
  });
  return net.eval();
}

function copyOf(m: Module, seed: number): Module {
  const c = tinyNet(seed);
  c.loadStateDict(m.stateDict());
  return c.eval();
}

const data = randn([48, 2, 8, 8], { generator: new Generator(1) });
const batches = [0, 1, 2].map((i) => data.slice(0, i * 16, i * 16 + 16));
const mse = (a: Module, b: Module) => noGrad(() => F.mseLoss(a.call(data), b.call(data)).item());

const test = suite('baselines');

test('one-shot methods prune exactly round(S* N) and zero the pruned weights', () => {
  for (const method of ALLOCATION_METHODS) {
    const m = tinyNet(2);
    // `given`: 72 + 851.3 + 40 = 963.3 of 1,376 weights, i.e. 0.7 to rounding
    const allocation = method === 'given' ? { '0.weight': 0.5, '3.weight': 0.739, '8.weight': 0.5 } : undefined;
    const r = oneShot(m, { method, sparsity: 0.7, allocation });
    if (allocation) assert.equal([r.layers[0].sparsity, r.layers[2].sparsity], [0.5, 0.5], 'given keeps the named sparsities');
    const N = r.layers.reduce((a, l) => a + l.params, 0);
    const zeros = m.parameters().filter((p) => p.ndim >= 2).reduce((a, p) => a + Array.from(p.toArray()).filter((v) => v === 0).length, 0);
    assert.is(zeros, Math.round(0.7 * N), method);
  }
});

test('BN re-calibration gives the cumulative average of batch statistics', () => {
  const bn = new BatchNorm2d(2);
  const m = new Sequential(bn);
  bnRecalibrate(m, batches);
  const means = batches.map((b) => b.mean([0, 2, 3]));
  const vars = batches.map((b) => b.var([0, 2, 3]));
  const expMean = means.reduce((a, b) => a.add(b)).div(3).toArray();
  const expVar = vars.reduce((a, b) => a.add(b)).div(3).toArray();
  Array.from(bn.runningMean!.toArray()).forEach((v, i) => assert.ok(Math.abs(v - expMean[i]) < 1e-5));
  Array.from(bn.runningVar!.toArray()).forEach((v, i) => assert.ok(Math.abs(v - expVar[i]) < 1e-4));
  assert.is(bn.momentum, 0.1, 'momentum restored');
});

test('folding BN into convs keeps the eval-mode function', () => {
  const a = tinyNet(3);
  const b = copyOf(a, 3);
  foldBatchNorms(b);
  assert.ok(mse(a, b) < 1e-10, `mse ${mse(a, b)}`);
});

test('channel correction: the sparse channel (pruned entries as zeros) is mapped to the dense mean and std; pruned stay zero', () => {
  const w = randn([3, 20], { generator: new Generator(4), dtype: 'float64' });
  const dense = w.toArray();
  const mask = maskFromCount(Array.from(dense, Math.abs), 30);
  correctChannelStats(w, dense, mask);
  const out = w.toArray();
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const std = (v: number[]) => Math.sqrt(mean(v.map((x) => (x - mean(v)) ** 2)));
  for (let o = 0; o < 3; o++) {
    const idx = Array.from({ length: 20 }, (_, j) => o * 20 + j);
    const d = idx.map((j) => dense[j]);
    const sparse = idx.map((j) => (mask[j] ? dense[j] : 0));
    for (const j of idx) {
      const want = mask[j] ? ((dense[j] - mean(sparse)) / std(sparse)) * std(d) + mean(d) : 0;
      assert.ok(Math.abs(out[j] - want) < 1e-12, `w[${j}] = ${out[j]}, expected ${want}`);
    }
    // pruning removed small weights: here the correction spreads the kept ones out (it no longer shrinks them)
    const kept = idx.filter((j) => mask[j]);
    assert.ok(std(kept.map((j) => out[j])) >= std(kept.map((j) => dense[j])) - 1e-12);
  }
  // nothing pruned: the correction is the identity
  const w2 = randn([2, 9], { generator: new Generator(5), dtype: 'float64' });
  const before = w2.toArray();
  correctChannelStats(w2, before, new Uint8Array(18).fill(1));
  w2.toArray().forEach((x, j) => assert.ok(Math.abs(x - before[j]) < 1e-12));
});

test('POT is exact and matches the dense outputs better than plain global-L2 pruning', () => {
  const dense = tinyNet(5);
  const plain = copyOf(dense, 5);
  oneShot(plain, { method: 'global-l2', sparsity: 0.6 });
  const model = copyOf(dense, 5);
  const losses: number[] = [];
  const r = pot(model, copyOf(dense, 5), batches, { sparsity: 0.6, reconIters: 300, weightLr: 1e-3, biasLr: 1e-3, onLayer: (_, l) => losses.push(l) });
  const N = r.layers.reduce((a, l) => a + l.params, 0);
  assert.is(r.masks.reduce((a, m) => a + m.length - m.reduce((s, v) => s + v, 0), 0), Math.round(0.6 * N));
  assert.is(losses.length, 3);
  const ePot = mse(dense, model);
  const ePlain = mse(dense, plain);
  assert.ok(ePot < ePlain, `POT ${ePot} vs plain ${ePlain}`);
});

test.run();
