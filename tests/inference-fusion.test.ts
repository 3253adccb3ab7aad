// Inference fusion (nn/sparse-inference.ts, opts.fuse) and the kernels it runs on:
// - the cpu backend's conv2dAct equals conv2d followed by unary relu / clamp(0, 6) bit for bit (fast-check over
//   groups, depthwise, strides, paddings, dilations, bias; and layers big enough for the direct, GEMM and pool paths);
// - sparseConv2d with an activation equals sparseConv2d followed by it, bit for bit;
// - the cpu backend's maxPool2dInference equals maxPool2d's output (NaN, infinities and zeros included; +0 and -0 count
//   as equal, the one documented difference), and F.maxPool2d takes it exactly when no gradient is recorded;
// - fusing ResNet-18, a CIFAR ResNet-20 and MobileNetV2 with random BatchNorm statistics: the chains found (conv ->
//   BatchNorm -> ReLU / ReLU6 module), outputs within float32 rounding of the unfused model with and without sparse
//   kernels, on the cpu backend and on the reference (which has no conv2dAct: conv2d then the activation); remove()
//   restores the unfused outputs bit for bit; a folded BatchNorm called on any other tensor still normalises;
// - a conv whose output is read by more than its BatchNorm fails the probe check, and the model is left unfused;
//   fusion without a probe, and a forward that would record gradients, are errors;
// - evaluate() runs fused (same counts as unfused on a model with random BatchNorm statistics, model restored after,
//   the fused forward seen during it), leaves a model already under enableSparseInference as it is, evaluates a model
//   that fails the probe check unfused; a second enableSparseInference on one model is refused.
// The cpu backend being unavailable (no wasm build) is a reported skip of the cpu cases.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { cpuBackend } from '../core/backend/cpu/index.js';
import { referenceBackend } from '../core/backend/reference.js';
import { sparseWeightOf } from '../core/backend/sparse-weight.js';
import type { Backend, ConvAct, HostView } from '../core/backend/types.js';
import { F, Generator, fromStorage, manualSeed, noGrad, randn, withBackend, type Tensor } from '../core/index.js';
import { BatchNorm2d, Conv2d, Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { models } from '../nn/index.js';
import { enableSparseInference, inferenceActive } from '../nn/sparse-inference.js';
import { ArrayDataset } from '../nn/data/index.js';
import { evaluate } from '../nn/train/index.js';
import { oneShot } from '../sparsity/index.js';
import { convCases, convParams } from './helpers/gpujs-cases.js';

const unavailable = cpuBackend.unavailableReason?.() ?? null;
if (unavailable) console.log(`SKIPPED inference-fusion cpu tests: the cpu backend is unavailable (${unavailable})`);
const maybe = unavailable ? test.skip : test;

const view = (data: Float32Array, shape: number[]): HostView => {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return { data, shape, strides, offset: 0 };
};
const uniform = (g: Generator, n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * g.uniform());
const flat = (a: Float32Array): HostView => view(a, [a.length]);

/** Which of a and b differ (Object.is: -0 and NaN count), as "count of n". */
function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  assert.is(a.length, b.length, `${what}: length`);
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) bad++;
  assert.is(bad, 0, `${what}: ${bad} of ${a.length} elements differ`);
}

const activate = (k: Backend, y: Float32Array, act: ConvAct) => (act === 'relu' ? k.unary('relu', flat(y)) : k.clamp(flat(y), 0, 6)) as Float32Array;

maybe('cpu conv2dAct = conv2d then relu / relu6, bit for bit (random convs and layers of every path)', () => {
  const k = cpuBackend;
  const check = (x: HostView, w: HostView, b: HostView | null, p: ReturnType<typeof convParams>, what: string) => {
    const y = k.conv2d(x, w, b, p) as Float32Array;
    for (const act of ['relu', 'relu6'] as const) sameBits(k.conv2dAct!(x, w, b, p, act) as Float32Array, activate(k, y, act), `${what} ${act}`);
  };
  fc.assert(fc.property(convCases(3), (c) => {
    const g = new Generator(c.seed);
    const C = c.groups * c.cg, O = c.groups * c.og;
    // values in [-8, 8): relu6 clips at both ends
    const x = view(uniform(g, c.n * C * c.h * c.w, -8, 8), [c.n, C, c.h, c.w]);
    const w = view(uniform(g, O * c.cg * c.kh * c.kw), [O, c.cg, c.kh, c.kw]);
    const b = c.bias ? view(uniform(g, O), [O]) : null;
    check(x, w, b, convParams(c), JSON.stringify(c));
  }), { numRuns: 60, seed: 23 });
  const g = new Generator(3);
  // direct 3x3 (pool), 1x1 stride 2 (GEMM), the 7x7 stem, depthwise: batch 8, 64 channels
  for (const [C, O, H, k0, s, groups] of [[64, 64, 14, 3, 1, 1], [64, 128, 14, 1, 2, 1], [3, 64, 56, 7, 2, 1], [64, 64, 14, 3, 1, 64]]) {
    const x = view(uniform(g, 8 * C * H * H, -4, 4), [8, C, H, H]);
    const w = view(uniform(g, O * (C / groups) * k0 * k0, -0.2, 0.2), [O, C / groups, k0, k0]);
    const b = view(uniform(g, O), [O]);
    const pad = (k0 - 1) / 2;
    check(x, w, b, { stride: [s, s], padding: [pad, pad], dilation: [1, 1], groups }, `${C}->${O} ${k0}x${k0} s${s} g${groups}`);
  }
});

maybe('cpu sparseConv2d with an activation = sparseConv2d then the activation, bit for bit', () => {
  const k = cpuBackend;
  const g = new Generator(9);
  for (const [N, C, O, H, k0, s] of [[1, 16, 32, 15, 3, 1], [3, 8, 8, 9, 1, 2], [2, 32, 16, 28, 3, 2]]) {
    const wd = uniform(g, O * C * k0 * k0);
    for (let i = 0; i < wd.length; i++) if (g.uniform() < 0.8) wd[i] = 0;
    const w = sparseWeightOf(wd, [O, C, k0, k0], 'w');
    const x = view(uniform(g, N * C * H * H, -4, 4), [N, C, H, H]);
    const b = view(uniform(g, O), [O]);
    const pad = (k0 - 1) / 2;
    const p = { stride: [s, s] as [number, number], padding: [pad, pad] as [number, number], dilation: [1, 1] as [number, number], groups: 1 };
    const y = k.sparseConv2d!(x, w, b, p) as Float32Array;
    for (const act of ['relu', 'relu6'] as const) sameBits(k.sparseConv2d!(x, w, b, p, act) as Float32Array, activate(k, y, act), `${N}x${C}x${H} ${O} ${k0}x${k0} s${s} ${act}`);
  }
});

maybe('cpu maxPool2dInference = maxPool2d output (random pools, special values); F.maxPool2d uses it only without grad', () => {
  const k = cpuBackend;
  const special = [NaN, Infinity, -Infinity, 0, -0];
  fc.assert(fc.property(fc.record({
    n: fc.integer({ min: 1, max: 3 }), c: fc.integer({ min: 1, max: 70 }), h: fc.integer({ min: 1, max: 40 }), w: fc.integer({ min: 1, max: 40 }),
    k: fc.integer({ min: 1, max: 4 }), s: fc.integer({ min: 1, max: 3 }), d: fc.integer({ min: 1, max: 2 }), pad: fc.integer({ min: 0, max: 2 }), seed: fc.integer(),
  }).filter((c) => 2 * c.pad <= c.k && (c.h + 2 * c.pad - c.d * (c.k - 1) - 1) >= 0 && (c.w + 2 * c.pad - c.d * (c.k - 1) - 1) >= 0), (c) => {
    const g = new Generator(c.seed);
    const x = uniform(g, c.n * c.c * c.h * c.w, -2, 2);
    for (let i = 0; i < x.length; i++) if (g.uniform() < 0.01) x[i] = special[Math.floor(g.uniform() * special.length)];
    const p = { kernelSize: [c.k, c.k] as [number, number], stride: [c.s, c.s] as [number, number], padding: [c.pad, c.pad] as [number, number], dilation: [c.d, c.d] as [number, number], ceilMode: false, countIncludePad: true };
    const xv = view(x, [c.n, c.c, c.h, c.w]);
    const want = k.maxPool2d(xv, p).out as Float32Array, got = k.maxPool2dInference!(xv, p) as Float32Array;
    assert.is(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      const same = got[i] === want[i] || (Number.isNaN(got[i]) && Number.isNaN(want[i]));
      if (!same) assert.unreachable(`${JSON.stringify(c)}: element ${i}: ${got[i]} against ${want[i]}`);
    }
  }), { numRuns: 80, seed: 7 });
  withBackend(cpuBackend, () => {
    let inference = 0;
    const counting = { ...cpuBackend, maxPool2dInference: (x: HostView, p: Parameters<NonNullable<Backend['maxPool2dInference']>>[1]) => { inference++; return cpuBackend.maxPool2dInference!(x, p); } } as Backend;
    withBackend(counting, () => {
      const x = randn([2, 3, 8, 8]);
      const a = noGrad(() => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }));
      assert.is(inference, 1, 'no grad: the inference kernel');
      x.requiresGrad = true;
      const b = F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 });
      assert.is(inference, 1, 'recording: the argmax kernel');
      sameBits(b.toArray() as Float32Array, a.toArray() as Float32Array, 'same values');
      b.sum().backward();
      assert.ok(x.grad, 'gradient routed');
    });
  });
});

/** Random BatchNorm statistics and affine parameters (else folding is the identity and tests nothing). */
function randomizeBatchNorms(m: Module, seed: number): void {
  const g = new Generator(seed);
  for (const bn of m.modules()) {
    if (!(bn instanceof BatchNorm2d)) continue;
    const n = bn.numFeatures;
    noGrad(() => {
      bn.runningMean!.copy_(fromStorage(uniform(g, n, -0.5, 0.5), [n]));
      bn.runningVar!.copy_(fromStorage(uniform(g, n, 0.5, 2), [n]));
      bn.weight!.copy_(fromStorage(uniform(g, n, 0.5, 1.5), [n]));
      bn.bias!.copy_(fromStorage(uniform(g, n, -0.2, 0.2), [n]));
    });
  }
}

/** max |a - b| <= tol * max |b|. */
function close(a: Tensor, b: Tensor, tol: number, what: string) {
  const x = a.toArray() as ArrayLike<number>, y = b.toArray() as ArrayLike<number>;
  let err = 0, scale = 0;
  for (let i = 0; i < y.length; i++) { err = Math.max(err, Math.abs(x[i] - y[i])); scale = Math.max(scale, Math.abs(y[i])); }
  assert.ok(scale > 0 && err <= tol * scale, `${what}: max error ${err} > ${tol} * ${scale}`);
}

const CASES = [
  // name, model, input, chains, chains with an activation module
  { name: 'resnet18', make: () => models.resnet18({ numClasses: 10 }), input: [2, 3, 64, 64], chains: 20, acts: 9, prune: true },
  { name: 'resnet20', make: () => models.resnet20({ numClasses: 10, inChannels: 1 }), input: [2, 1, 28, 28], chains: 21, acts: 10, prune: true },
  { name: 'mobilenetV2', make: () => models.mobilenetV2({ numClasses: 10, stemStride: 1, widthMult: 0.5 }), input: [2, 3, 32, 32], chains: 52, acts: 35, prune: false },
];

function fusionCases(b: Backend, label: string) {
  withBackend(b, () => {
    for (const c of CASES) {
      manualSeed(1);
      const m = c.make();
      if (c.prune && b === cpuBackend) oneShot(m, { method: 'global', sparsity: 0.8 });
      randomizeBatchNorms(m, 2);
      m.eval();
      const x = randn(c.input);
      const y0 = noGrad(() => m.call(x));
      for (const mode of b === cpuBackend && c.prune ? (['off', 'on'] as const) : (['off'] as const)) {
        const f = enableSparseInference(m, mode, { fuse: true, probe: x });
        assert.is(f.fused.length, c.chains, `${label} ${c.name}: chains`);
        assert.is(f.fused.filter((h) => h.act).length, c.acts, `${label} ${c.name}: chains with an activation`);
        const y = noGrad(() => m.call(x));
        close(y, y0, 1e-5, `${label} ${c.name} ${mode}`);
        // a folded BatchNorm on any other tensor still normalises
        const [, bn] = [...m.namedModules()].find(([n]) => n === f.fused[0].bn)!;
        const z = randn([1, (bn as BatchNorm2d).numFeatures, 3, 3]);
        f.remove();
        const want = noGrad(() => bn.call(z));
        const again = enableSparseInference(m, mode, { fuse: true, probe: x });
        sameBits(noGrad(() => bn.call(z)).toArray() as Float32Array, want.toArray() as Float32Array, `${label} ${c.name}: BatchNorm off its chain`);
        again.remove();
        sameBits(noGrad(() => m.call(x)).toArray() as Float32Array, y0.toArray() as Float32Array, `${label} ${c.name}: remove() restores`);
      }
    }
  });
}

maybe('fusion on the cpu backend: ResNet-18, ResNet-20, MobileNetV2 (dense and sparse kernels)', () => fusionCases(cpuBackend, 'cpu'));
test('fusion on the reference backend (no conv2dAct: conv2d then the activation)', () => fusionCases(referenceBackend, 'reference'));

/** conv -> bn, plus the conv's output added again: folding the BatchNorm would change what the add reads. */
class ReadTwice extends Module {
  readonly conv = this.registerModule('conv', new Conv2d(2, 3, 3, { padding: 1 }));
  readonly bn = this.registerModule('bn', new BatchNorm2d(3));
  protected override forward(x: Tensor): Tensor {
    const y = this.conv.call(x);
    return this.bn.call(y).add(y);
  }
}

test('fusion refuses a conv whose output is read elsewhere, needs a probe, and refuses gradients', () => {
  manualSeed(4);
  const m = new ReadTwice();
  randomizeBatchNorms(m, 5);
  m.eval();
  const x = randn([2, 2, 5, 5]);
  const y0 = noGrad(() => m.call(x));
  assert.throws(() => enableSparseInference(m, 'off', { fuse: true, probe: x }), /differs from the unfused one/);
  sameBits(noGrad(() => m.call(x)).toArray() as Float32Array, y0.toArray() as Float32Array, 'left unfused');
  assert.throws(() => enableSparseInference(m, 'off', { fuse: true }), /opts\.probe/);
  // a BatchNorm in training mode is not folded
  m.train();
  assert.is(enableSparseInference(m, 'off', { fuse: true, probe: x }).fused.length, 0, 'train-mode BatchNorm');
  m.eval();
  const r = models.resnet20({ numClasses: 10, inChannels: 1 });
  r.eval();
  const f = enableSparseInference(r, 'off', { fuse: true, probe: randn([1, 1, 28, 28]) });
  assert.throws(() => r.call(randn([1, 1, 28, 28])), /record no gradient/);
  f.remove();
});

/** 40 random 1x28x28 images with labels 0-9 (enough for two batches of 32). */
function digits(seed: number): ArrayDataset {
  const g = new Generator(seed);
  const px = Uint8Array.from({ length: 40 * 784 }, () => Math.floor(256 * g.uniform()));
  const labels = Uint8Array.from({ length: 40 }, (_, i) => i % 10);
  return new ArrayDataset('digits', px, labels, { height: 28, width: 28, channels: 1 }, [...'0123456789'], { steps: [], normalize: { mean: [0.5], std: [0.25] } });
}

test('evaluate() runs fused, restores the model, and leaves a model under enableSparseInference as it is', async () => {
  manualSeed(6);
  const m = models.resnet20({ numClasses: 10, inChannels: 1 });
  randomizeBatchNorms(m, 7);
  const data = digits(8);
  // the folded BatchNorms run no batch-norm kernel: count the BatchNorm forwards that compute
  const bn = [...m.modules()].find((x) => x instanceof BatchNorm2d) as BatchNorm2d;
  let bnCalls = 0;
  const own = Object.getPrototypeOf(bn).forward as (x: Tensor) => Tensor;
  const spy = (fused: boolean) => async () => {
    bnCalls = 0;
    Object.defineProperty(Object.getPrototypeOf(bn), 'forward', { value: function (this: BatchNorm2d, x: Tensor) { if (this === bn) bnCalls++; return own.call(this, x); }, configurable: true, writable: true });
    try {
      return await evaluate(m, data, { batchSize: 32, fuse: fused });
    } finally {
      Object.defineProperty(Object.getPrototypeOf(bn), 'forward', { value: own, configurable: true, writable: true });
    }
  };
  const plain = await spy(false)();
  assert.is(bnCalls, 2, 'unfused: the BatchNorm computes once per batch');
  const fused = await spy(true)();
  // the probe's trace (1) computes; the check and both batches pass the folded BatchNorm through
  assert.is(bnCalls, 1, 'fused: only the probe trace computes the BatchNorm');
  assert.equal([fused.correct1, fused.correct5, fused.count], [plain.correct1, plain.correct5, plain.count]);
  assert.not.ok(inferenceActive(m), 'fusion removed after evaluate');
  assert.not.ok(Object.prototype.hasOwnProperty.call(bn, 'forward'), 'no instance forward left on the BatchNorm');
  // under an enabled inference, evaluate runs the model as it is (no second fusion); a second enable is refused
  const x = data.get(0).image.reshape([1, 1, 28, 28]);
  const f = enableSparseInference(m.eval(), 'off', {});
  assert.throws(() => enableSparseInference(m, 'off', { fuse: true, probe: x }), /already enabled/);
  await spy(true)();
  assert.is(bnCalls, 2, 'evaluate under an enabled (unfused) inference: not fused');
  assert.ok(inferenceActive(m), 'the caller\'s inference is left in effect');
  f.remove();
  assert.not.ok(inferenceActive(m));
});

test('evaluate() evaluates a model that fails the probe check unfused', async () => {
  manualSeed(9);
  const conv = new ReadTwice();
  randomizeBatchNorms(conv, 3);
  class Head extends Module {
    readonly body = this.registerModule('body', conv);
    readonly fc = this.registerModule('fc', new Linear(3 * 28 * 28, 10));
    protected override forward(x: Tensor): Tensor {
      return this.fc.call(this.body.call(x.expand([x.shape[0], 2, 28, 28])).flatten(1));
    }
  }
  const m = new Head();
  const data = digits(10);
  const plain = await evaluate(m, data, { fuse: false });
  const fused = await evaluate(m, data);
  assert.equal([fused.correct1, fused.correct5], [plain.correct1, plain.correct5]);
  assert.not.ok(inferenceActive(m));
});

test.run();
