// Optimizers against PyTorch (tests/fixtures/torch/optim.json): three steps of SGD (momentum + nesterov + weight
// decay, two parameter groups), SGD with dampening, Adam (L2 weight decay), Adam with amsgrad and AdamW on a tiny MLP
// reach PyTorch's weights and losses. Also: schedules in closed form, clipGradNorm, post-step hooks keeping masked
// weights at zero.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import {
  F, Tensor, tensor, zeros, Sequential, Linear, ReLU, Parameter, SGD, Adam, AdamW, type Optimizer,
  CosineWarmupLR, StepLR, ConstantLR, LambdaLR, clipGradNorm, zeroMasked, init,
} from '../index.js';

const FIX = fileURLToPath(new URL('../../tests/fixtures/torch/', import.meta.url));
interface OptimFixture {
  x: number[];
  y: number[];
  init: Record<string, number[]>;
  steps: number;
  results: Record<string, { losses: number[]; weights: Record<string, number[]> }>;
}
const fx = JSON.parse(readFileSync(FIX + 'optim.json', 'utf8')) as OptimFixture;

function tinyNet(): Sequential {
  const net = init.skipInit(() => new Sequential(new Linear(4, 5), new ReLU(), new Linear(5, 3)));
  const record: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(net.stateDict())) record[k] = tensor(fx.init[k], t.shape);
  net.loadStateDict(record);
  return net;
}

const configs: Record<string, (net: Sequential) => Optimizer<any>> = {
  sgd: (net) => new SGD([
    { params: net.at(0).parameters() },
    { params: net.at(2).parameters(), lr: 0.05, weightDecay: 0 },
  ], { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
  sgd_dampening: (net) => new SGD(net.parameters(), { lr: 0.1, momentum: 0.8, dampening: 0.3, weightDecay: 0.02 }),
  adam: (net) => new Adam(net.parameters(), { lr: 0.01, betas: [0.8, 0.95], weightDecay: 0.05 }),
  adam_amsgrad: (net) => new Adam(net.parameters(), { lr: 0.01, amsgrad: true }),
  adamw: (net) => new AdamW(net.parameters(), { lr: 0.01, weightDecay: 0.1 }),
};

for (const [name, make] of Object.entries(configs)) {
  test(`${name}: ${fx.steps} steps reach PyTorch's weights`, () => {
    const net = tinyNet();
    const opt = make(net);
    const x = tensor(fx.x, [6, 4]);
    const losses: number[] = [];
    for (let s = 0; s < fx.steps; s++) {
      opt.zeroGrad();
      const loss = F.crossEntropy(net.call(x), fx.y);
      loss.backward();
      opt.step();
      losses.push(loss.item());
    }
    const want = fx.results[name];
    losses.forEach((l, i) => assert.ok(Math.abs(l - want.losses[i]) < 1e-6, `loss ${i}: ${l} vs ${want.losses[i]}`));
    let worst = 0;
    for (const [k, t] of Object.entries(net.stateDict())) {
      t.toArray().forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want.weights[k][i]))));
    }
    assert.ok(worst < 2e-6, `${name}: max weight difference ${worst}`);
  });
}

test('SGD and Adam validate their options; parameters must be contiguous leaves in one group', () => {
  const p = new Parameter(zeros([2]));
  assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /nesterov needs momentum > 0/);
  assert.throws(() => new SGD([p], { lr: -1 }), /lr must be >= 0/);
  assert.throws(() => new Adam([p], { betas: [1, 0.9] }), /betas/);
  assert.throws(() => new SGD([{ params: [p] }, { params: [p] }], { lr: 0.1 }), /more than one group/);
  assert.throws(() => new SGD([zeros([2, 2]).transpose(0, 1)], { lr: 0.1 }), /contiguous leaf/);
  const opt = new SGD([p], { lr: 0.1 });
  opt.step(); // no gradient: nothing happens
  assert.equal(Array.from(p.toArray()), [0, 0]);
});

test('post-step hooks: zeroMasked keeps pruned weights at zero through momentum and weight decay; remove() stops it', () => {
  const w = new Parameter(tensor([1, 2, 3, 4]));
  const mask = tensor([1, 0, 1, 0]);
  const opt = new SGD([w], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
  const handle = opt.addPostStepHook(zeroMasked(new Map([[w as Tensor, mask]])));
  for (let i = 0; i < 3; i++) {
    w.grad = tensor([1, 1, 1, 1]);
    opt.step();
    const v = w.toArray();
    assert.ok(v[1] === 0 && v[3] === 0 && v[0] !== 0 && v[2] !== 0, `step ${i}: ${v}`);
  }
  handle.remove();
  w.grad = tensor([1, 1, 1, 1]);
  opt.step();
  assert.ok(w.toArray()[1] !== 0, 'hook removed: momentum moves the pruned weight again');
  assert.throws(() => zeroMasked(new Map([[w as Tensor, zeros([3])]])), /does not match/);
});

const opt1 = (lr: number) => new SGD([{ params: [new Parameter(zeros([1]))] }, { params: [new Parameter(zeros([1]))], lr: lr * 10 }], { lr });
const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

test('CosineWarmupLR: linear warm-up from startFactor, cosine to minLr, per group, per iteration', () => {
  const opt = opt1(0.1);
  const s = new CosineWarmupLR(opt, { totalSteps: 10, warmupSteps: 2, warmupStartFactor: 0.5, minLr: 0.001 });
  const seen: number[][] = [s.getLastLr()];
  for (let i = 0; i < 11; i++) {
    s.step();
    seen.push(s.getLastLr());
  }
  assert.ok(close(seen[0][0], 0.05) && close(seen[1][0], 0.075) && close(seen[2][0], 0.1));
  assert.ok(close(seen[6][0], 0.001 + (0.099 * (1 + Math.cos(Math.PI * 0.5))) / 2));
  assert.ok(close(seen[10][0], 0.001) && close(seen[11][0], 0.001), 'stays at minLr after totalSteps');
  assert.ok(close(seen[2][1], 1), 'second group scales its own base lr');
  assert.equal(opt.paramGroups.map((g) => g.initialLr), [0.1, 1]);
});

test('StepLR, ConstantLR and LambdaLR follow PyTorch closed forms', () => {
  const a = opt1(1);
  const st = new StepLR(a, { stepSize: 3, gamma: 0.5 });
  const lrs = [a.paramGroups[0].lr];
  for (let i = 0; i < 7; i++) (st.step(), lrs.push(a.paramGroups[0].lr));
  assert.equal(lrs, [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]);
  const b = opt1(1);
  const c = new ConstantLR(b, { factor: 0.25, totalIters: 2 });
  const lb = [b.paramGroups[0].lr];
  for (let i = 0; i < 3; i++) (c.step(), lb.push(b.paramGroups[0].lr));
  assert.equal(lb, [0.25, 0.25, 1, 1]);
  const d = opt1(2);
  const l = new LambdaLR(d, (t) => 1 / (t + 1));
  l.step();
  assert.is(d.paramGroups[0].lr, 1);
  assert.throws(() => new CosineWarmupLR(opt1(1), { totalSteps: 5, warmupSteps: 6 }), /warmupSteps/);
});

test('clipGradNorm: returns the global norm and scales all gradients to maxNorm', () => {
  const a = new Parameter(zeros([2]));
  const b = new Parameter(zeros([1]));
  a.grad = tensor([3, 0]);
  b.grad = tensor([4]);
  const n = clipGradNorm([a, b], 1);
  assert.ok(close(n, 5));
  const scale = 1 / (5 + 1e-6);
  assert.ok(Math.abs(a.grad.toArray()[0] - 3 * scale) < 1e-7 && Math.abs(b.grad!.toArray()[0] - 4 * scale) < 1e-7);
  assert.ok(Math.abs(clipGradNorm([a, b], 10) - 5 * scale) < 1e-6, 'below maxNorm: unchanged');
  assert.ok(Math.abs(a.grad.toArray()[0] - 3 * scale) < 1e-7);
  a.grad = tensor([-7, 2]);
  assert.is(clipGradNorm([a], 100, Infinity), 7);
});

test.run();
