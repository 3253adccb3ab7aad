// Gradient check of every op and every F function: central differences in float64 against backward(), on random
// shapes, broadcasting patterns, strides, paddings and groups drawn by fast-check. The case tables are typed over the
// op names (OpName, keyof typeof F), so adding an op without a case here fails to compile. Checks go through the
// public gradcheck at the suites' tolerances; shapes, broadcast pairs and plain leaves come from ptslab/testing.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { F, Generator, gradcheck, ops, tensor, type GradcheckOptions, type OpName, type Tensor } from '../core/index.js';
import { arbBroadcastPair, arbShape, arbTensor } from '../testing.js';
import { caseCount, leaf, suiteTolerance } from './helpers/gradcheck.js';

interface Trial {
  inputs: Tensor[];
  fn: (...xs: Tensor[]) => Tensor;
  opts?: GradcheckOptions;
}

/** A differentiable case: an arbitrary of trials. A non-differentiable op instead states why and checks its values. */
type Case = { trials: fc.Arbitrary<Trial>; runs?: number } | { noGradient: string; check: () => void };

const seed = fc.integer({ min: 0, max: 1e6 });
const shapeArb = (minDims = 0, maxDims = 3, maxDim = 4) => arbShape({ minDims, maxDims, maxDim });

/** Two shapes that broadcast together: one keeps or collapses each of the other's dims and may drop leading ones. */
const broadcastPair = arbBroadcastPair({ maxDims: 3 });

const unary = (fn: (x: Tensor) => Tensor, range?: [number, number]): Case => ({
  trials: arbTensor(shapeArb(), { range }).map((x) => ({ inputs: [x], fn })),
});

const binary = (fn: (a: Tensor, b: Tensor) => Tensor, ra?: [number, number], rb?: [number, number]): Case => ({
  trials: broadcastPair
    .chain(([sa, sb]) => fc.tuple(arbTensor(sa, { range: ra }), arbTensor(sb, { range: rb })))
    .map(([a, b]) => ({ inputs: [a, b], fn })),
});

/** A shape and a random subset of its axes (or undefined = all), with keepDim. */
const reduction = (fn: (x: Tensor, axes: number[] | undefined, keep: boolean) => Tensor, minCount = 1): Case => ({
  trials: fc
    .tuple(shapeArb(1, 3), seed, fc.boolean(), fc.boolean())
    .chain(([s, k, all, keep]) =>
      fc.subarray(s.map((_, i) => i), { minLength: 1 }).map((axes) => {
        const neg = axes.map((a) => (a % 2 === 0 ? a - s.length : a)); // mix negative axes in
        const count = all ? s.reduce((a, b) => a * b, 1) : axes.reduce((a, i) => a * s[i], 1);
        return { count, inputs: [leaf(s, k)], fn: (x: Tensor) => fn(x, all ? undefined : neg, keep) };
      }),
    )
    .filter((t) => t.count >= minCount),
});

const nonDiff = (fn: (a: Tensor, b: Tensor) => Tensor, expected: number[]): Case => ({
  noGradient: 'comparison: piecewise constant, gradient 0 almost everywhere; not recorded',
  check: () => {
    const a = tensor([1, 2, 3], undefined, { requiresGrad: true });
    const y = fn(a, tensor([2, 2, 2]));
    assert.equal(Array.from(y.toArray()), expected);
    assert.is(y.requiresGrad, false);
  },
});

const convTrial = (depthwise: boolean) =>
  fc
    .record({
      n: fc.integer({ min: 1, max: 2 }),
      groups: depthwise ? fc.integer({ min: 1, max: 4 }) : fc.integer({ min: 1, max: 3 }),
      cg: depthwise ? fc.constant(1) : fc.integer({ min: 1, max: 2 }),
      og: fc.integer({ min: 1, max: 2 }),
      kh: fc.integer({ min: 1, max: 3 }),
      kw: fc.integer({ min: 1, max: 3 }),
      stride: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
      padding: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
      dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
      h: fc.integer({ min: 1, max: 6 }),
      w: fc.integer({ min: 1, max: 6 }),
      bias: fc.boolean(),
      k: seed,
    })
    .filter((p) => p.h + 2 * p.padding[0] >= p.dilation[0] * (p.kh - 1) + 1 && p.w + 2 * p.padding[1] >= p.dilation[1] * (p.kw - 1) + 1)
    .map((p): Trial => {
      const x = leaf([p.n, p.groups * p.cg, p.h, p.w], p.k);
      const w = leaf([p.groups * p.og, p.cg, p.kh, p.kw], p.k + 1);
      const b = leaf([p.groups * p.og], p.k + 2);
      const o = { stride: p.stride, padding: p.padding, dilation: p.dilation, groups: p.groups };
      return p.bias
        ? { inputs: [x, w, b], fn: (x, w, b) => F.conv2d(x, w, b, o) }
        : { inputs: [x, w], fn: (x, w) => F.conv2d(x, w, null, o) };
    });

const poolTrial = (kind: 'max' | 'avg') =>
  fc
    .record({
      nc: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
      h: fc.integer({ min: 1, max: 7 }),
      w: fc.integer({ min: 1, max: 7 }),
      k: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
      s: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
      padFrac: fc.tuple(fc.boolean(), fc.boolean()),
      dilation: kind === 'max' ? fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })) : fc.constant([1, 1] as [number, number]),
      ceilMode: fc.boolean(),
      countIncludePad: fc.boolean(),
      seed,
    })
    .map((p) => ({ ...p, padding: [p.padFrac[0] ? Math.floor(p.k[0] / 2) : 0, p.padFrac[1] ? Math.floor(p.k[1] / 2) : 0] }))
    .filter((p) => p.h + 2 * p.padding[0] >= p.dilation[0] * (p.k[0] - 1) + 1 && p.w + 2 * p.padding[1] >= p.dilation[1] * (p.k[1] - 1) + 1)
    .map((p): Trial => {
      const x = leaf([p.nc[0], p.nc[1], p.h, p.w], p.seed);
      const base = { kernelSize: p.k, stride: p.s, padding: p.padding, ceilMode: p.ceilMode };
      return kind === 'max'
        ? { inputs: [x], fn: (x) => F.maxPool2d(x, { ...base, dilation: p.dilation }) }
        : { inputs: [x], fn: (x) => F.avgPool2d(x, { ...base, countIncludePad: p.countIncludePad }) };
    })
    // A dilated window can cover only padding (output -inf, no gradient); that edge has its own test.
    .filter((t) => t.fn(t.inputs[0]).toArray().every(Number.isFinite));

const adaptiveTrial = fc
  .record({ h: fc.integer({ min: 1, max: 7 }), w: fc.integer({ min: 1, max: 7 }), k: seed })
  .chain((p) => fc.tuple(fc.constant(p), fc.integer({ min: 1, max: p.h }), fc.integer({ min: 1, max: p.w })))
  .map(([p, oh, ow]): Trial => ({ inputs: [leaf([2, 2, p.h, p.w], p.k)], fn: (x) => F.adaptiveAvgPool2d(x, [oh, ow]) }));

const bnTrial = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    c: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 1, max: 3 }),
    w: fc.integer({ min: 1, max: 3 }),
    training: fc.boolean(),
    affine: fc.boolean(),
    k: seed,
  })
  .filter((p) => !p.training || p.n * p.h * p.w > 1)
  .map((p): Trial => {
    const x = leaf([p.n, p.c, p.h, p.w], p.k);
    const rm = leaf([p.c], p.k + 1).detach();
    const rv = leaf([p.c], p.k + 2, [0.5, 2]).detach();
    const o = { training: p.training, momentum: 0.1, eps: 1e-5 };
    return p.affine
      ? { inputs: [x, leaf([p.c], p.k + 3), leaf([p.c], p.k + 4)], fn: (x, w, b) => F.batchNorm2d(x, rm, rv, w, b, o) }
      : { inputs: [x], fn: (x) => F.batchNorm2d(x, rm, rv, null, null, o) };
  });

const logitsTrial = (fn: (z: Tensor, t: number[]) => Tensor) =>
  fc
    .record({ n: fc.integer({ min: 1, max: 4 }), c: fc.integer({ min: 2, max: 5 }), k: seed })
    .map((p): Trial => {
      const g = new Generator(p.k);
      const t = Array.from({ length: p.n }, () => g.int(p.c));
      return { inputs: [leaf([p.n, p.c], p.k)], fn: (z) => fn(z, t) };
    });

const opCases: { [K in OpName]: Case } = {
  add: binary((a, b) => a.add(b)),
  sub: binary((a, b) => a.sub(b)),
  mul: binary((a, b) => a.mul(b)),
  div: binary((a, b) => a.div(b), undefined, [0.5, 2]),
  pow: binary((a, b) => a.pow(b), [0.5, 2], [-2, 2]),
  maximum: binary((a, b) => a.maximum(b)),
  minimum: binary((a, b) => a.minimum(b)),
  gt: nonDiff((a, b) => a.gt(b), [0, 0, 1]),
  ge: nonDiff((a, b) => a.ge(b), [0, 1, 1]),
  lt: nonDiff((a, b) => a.lt(b), [1, 0, 0]),
  le: nonDiff((a, b) => a.le(b), [1, 1, 0]),
  eq: nonDiff((a, b) => a.eq(b), [0, 1, 0]),
  neg: unary((x) => x.neg()),
  exp: unary((x) => x.exp()),
  log: unary((x) => x.log(), [0.2, 3]),
  sqrt: unary((x) => x.sqrt(), [0.2, 3]),
  abs: unary((x) => x.abs()),
  sign: {
    noGradient: 'sign is piecewise constant; gradient 0, not recorded (STE masks build their own rule)',
    check: () => {
      const y = tensor([-2, 0, 3], undefined, { requiresGrad: true }).sign();
      assert.equal(Array.from(y.toArray()), [-1, 0, 1]);
      assert.is(y.requiresGrad, false);
    },
  },
  sigmoid: unary((x) => x.sigmoid()),
  tanh: unary((x) => x.tanh()),
  relu: unary((x) => x.relu()),
  relu6: unary((x) => x.mul(4).relu6()),
  clamp: {
    trials: fc
      .tuple(shapeArb(), seed, fc.option(fc.double({ min: -1, max: 0, noNaN: true })), fc.option(fc.double({ min: 0, max: 1, noNaN: true })))
      .map(([s, k, lo, hi]) => ({ inputs: [leaf(s, k)], fn: (x: Tensor) => x.clamp(lo ?? undefined, hi ?? undefined) })),
  },
  where: {
    trials: fc.tuple(broadcastPair, seed, fc.boolean()).map(([[sa, sb], k, condOnA]) => {
      const g = new Generator(k + 7);
      const cs = condOnA ? sa : sb;
      const cond = tensor(Array.from({ length: cs.reduce((a, b) => a * b, 1) }, () => +(g.uniform() < 0.5)), cs, { dtype: 'float64' });
      return { inputs: [leaf(sa, k), leaf(sb, k + 1)], fn: (a: Tensor, b: Tensor) => a.where(cond, b) };
    }),
  },
  sum: reduction((x, a, keep) => x.sum(a, keep)),
  mean: reduction((x, a, keep) => x.mean(a, keep)),
  max: reduction((x, a, keep) => x.max(a, keep)),
  min: reduction((x, a, keep) => x.min(a, keep)),
  var: reduction((x, a, keep) => x.var(a, keep), 2),
  reshape: {
    trials: fc.tuple(shapeArb(1, 3), seed, fc.boolean()).map(([s, k, flat]) => ({
      inputs: [leaf(s, k)],
      fn: (x: Tensor) => (flat ? x.T.reshape(-1) : x.T.reshape([...s].reverse().reduce((a, b) => a * b, 1), 1)),
    })),
  },
  permute: {
    trials: fc.tuple(shapeArb(1, 4), seed).chain(([s, k]) =>
      fc.shuffledSubarray(s.map((_, i) => i), { minLength: s.length, maxLength: s.length }).map((perm) => ({
        inputs: [leaf(s, k)],
        fn: (x: Tensor) => x.permute(perm).mul(x.permute(perm)),
      })),
    ),
  },
  transpose: {
    trials: fc.tuple(shapeArb(2, 3), seed).map(([s, k]) => ({ inputs: [leaf(s, k)], fn: (x: Tensor) => x.transpose(0, -1).exp() })),
  },
  expand: {
    trials: fc.tuple(broadcastPair, seed).map(([[a, b], k]) => {
      const small = a.length <= b.length ? a : b;
      const big = a.length <= b.length ? b : a;
      return { inputs: [leaf(small, k)], fn: (x: Tensor) => x.expand(big.map((d, i) => Math.max(d, big[i]))) };
    }).filter((t) => { try { t.fn(t.inputs[0]); return true; } catch { return false; } }),
  },
  slice: {
    trials: fc
      .tuple(shapeArb(1, 3, 6), seed, fc.nat(), fc.integer({ min: -7, max: 7 }), fc.integer({ min: -7, max: 8 }), fc.integer({ min: 1, max: 3 }))
      .map(([s, k, d, a, b, step]) => ({ inputs: [leaf(s, k)], fn: (x: Tensor) => x.slice(d % s.length, a, b, step).mul(2) }))
      .filter((t) => t.fn(t.inputs[0]).size > 0),
  },
  concat: {
    trials: fc
      .tuple(shapeArb(1, 3), seed, fc.nat(), fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }))
      .map(([s, k, d, sizes]) => {
        const dim = d % s.length;
        const xs = sizes.map((n, i) => leaf(s.map((v, j) => (j === dim ? n : v)), k + i));
        return { inputs: xs, fn: (...t: Tensor[]) => ops.concat(t, dim).mul(ops.concat(t, dim)) };
      }),
  },
  pad: {
    trials: fc
      .tuple(shapeArb(1, 3), seed, fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 2, maxLength: 6 }), fc.double({ min: -1, max: 1, noNaN: true }))
      .map(([s, k, p, v]) => {
        const pads = p.slice(0, 2 * Math.min(s.length, Math.floor(p.length / 2)));
        return { inputs: [leaf(s, k)], fn: (x: Tensor) => x.pad(pads, v).mul(x.pad(pads, v)) };
      }),
  },
  flatten: {
    trials: fc.tuple(shapeArb(1, 4), seed, fc.nat(), fc.nat()).map(([s, k, a, b]) => {
      const [lo, hi] = [a % s.length, b % s.length].sort((x, y) => x - y);
      return { inputs: [leaf(s, k)], fn: (x: Tensor) => x.permute(s.map((_, i) => s.length - 1 - i)).flatten(lo, hi) };
    }),
  },
  squeeze: {
    trials: fc.tuple(shapeArb(1, 3), seed).map(([s, k]) => ({ inputs: [leaf([1, ...s, 1], k)], fn: (x: Tensor) => x.squeeze().exp() })),
  },
  unsqueeze: {
    trials: fc.tuple(shapeArb(0, 3), seed, fc.nat()).map(([s, k, d]) => ({
      inputs: [leaf(s, k)],
      fn: (x: Tensor) => x.unsqueeze(d % (s.length + 1)).exp(),
    })),
  },
  contiguous: {
    trials: fc.tuple(shapeArb(2, 3), seed).map(([s, k]) => ({ inputs: [leaf(s, k)], fn: (x: Tensor) => x.transpose(0, 1).contiguous().exp() })),
  },
  clone: unary((x) => x.clone().mul(x)),
  cast: {
    // float64 -> float32 -> float64 is the identity up to float32 rounding: coarse differences, loose tolerance.
    trials: fc.tuple(shapeArb(), seed).map(([s, k]) => ({
      inputs: [leaf(s, k)],
      fn: (x: Tensor) => x.to('float32').mul(3).to('float64'),
      opts: { eps: 1e-2, atol: 1e-4, rtol: 1e-4 },
    })),
  },
  matmul: {
    trials: fc
      .record({
        m: fc.integer({ min: 1, max: 3 }),
        k: fc.integer({ min: 1, max: 3 }),
        n: fc.integer({ min: 1, max: 3 }),
        ba: shapeArb(0, 2, 2),
        bKeep: fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
        vecA: fc.boolean(),
        vecB: fc.boolean(),
        seed,
      })
      .map((p) => {
        const bb = p.ba.map((d, i) => (p.bKeep[i] ? d : 1));
        const sa = p.vecA ? [p.k] : [...p.ba, p.m, p.k];
        const sb = p.vecB ? [p.k] : [...bb, p.k, p.n];
        return { inputs: [leaf(sa, p.seed), leaf(sb, p.seed + 1)], fn: (a: Tensor, b: Tensor) => a.matmul(b) };
      }),
  },
  conv2d: { trials: convTrial(false), runs: 40 },
  maxPool2d: { trials: poolTrial('max') },
  avgPool2d: { trials: poolTrial('avg') },
  adaptiveAvgPool2d: { trials: adaptiveTrial },
  batchNorm2d: { trials: bnTrial, runs: 40 },
};

const fCases: { [K in keyof typeof F]: Case } = {
  linear: {
    trials: fc
      .record({ n: fc.integer({ min: 1, max: 3 }), i: fc.integer({ min: 1, max: 4 }), o: fc.integer({ min: 1, max: 4 }), bias: fc.boolean(), k: seed })
      .map((p) => ({
        inputs: [leaf([p.n, p.i], p.k), leaf([p.o, p.i], p.k + 1), leaf([p.o], p.k + 2)],
        fn: (x: Tensor, w: Tensor, b: Tensor) => (p.bias ? F.linear(x, w, b) : F.linear(x, w).add(b.mul(0))),
      })),
  },
  conv2d: { trials: convTrial(true), runs: 30 },
  maxPool2d: opCases.maxPool2d,
  avgPool2d: opCases.avgPool2d,
  adaptiveAvgPool2d: opCases.adaptiveAvgPool2d,
  batchNorm2d: opCases.batchNorm2d,
  dropout: {
    trials: fc.tuple(shapeArb(1, 3), seed, fc.double({ min: 0, max: 0.9, noNaN: true })).map(([s, k, p]) => ({
      inputs: [leaf(s, k)],
      // A fresh generator per call makes the mask the same in every evaluation of the check.
      fn: (x: Tensor) => F.dropout(x, { p, generator: new Generator(k) }),
    })),
  },
  softmax: { trials: fc.tuple(shapeArb(1, 3), seed, fc.nat()).map(([s, k, d]) => ({ inputs: [leaf(s, k)], fn: (x: Tensor) => F.softmax(x, d % s.length) })) },
  logSoftmax: { trials: fc.tuple(shapeArb(1, 3), seed, fc.nat()).map(([s, k, d]) => ({ inputs: [leaf(s, k)], fn: (x: Tensor) => F.logSoftmax(x, -1 - (d % s.length)) })) },
  crossEntropy: { trials: fc.double({ min: 0, max: 0.5, noNaN: true }).chain((eps) => logitsTrial((z, t) => F.crossEntropy(z, t, { labelSmoothing: eps }))) },
  nllLoss: { trials: logitsTrial((z, t) => F.nllLoss(F.logSoftmax(z), t, { reduction: 'sum' })) },
  mseLoss: { trials: fc.tuple(shapeArb(), seed).map(([s, k]) => ({ inputs: [leaf(s, k), leaf(s, k + 1)], fn: (a: Tensor, b: Tensor) => F.mseLoss(a, b) })) },
  klDiv: {
    trials: fc
      .record({ n: fc.integer({ min: 1, max: 3 }), c: fc.integer({ min: 2, max: 5 }), t: fc.double({ min: 0.5, max: 5, noNaN: true }), k: seed })
      .map((p) => ({ inputs: [leaf([p.n, p.c], p.k), leaf([p.n, p.c], p.k + 1)], fn: (s: Tensor, t: Tensor) => F.klDiv(s, t, { temperature: p.t }) })),
  },
  oneHot: {
    noGradient: 'oneHot builds a constant from integer class indices',
    check: () => assert.equal(F.oneHot([2, 0], 3, tensor([0])).toList(), [[0, 0, 1], [1, 0, 0]]),
  },
  pad: opCases.pad,
  relu: opCases.relu,
  relu6: opCases.relu6,
  sigmoid: opCases.sigmoid,
  tanh: opCases.tanh,
};

const DEFAULT_RUNS = 25;

function register(name: string, table: Record<string, Case>) {
  const s = suite(name);
  for (const [op, c] of Object.entries(table)) {
    s(op, () => {
      if ('noGradient' in c) {
        c.check();
        return;
      }
      const runs = c.runs ?? DEFAULT_RUNS;
      fc.assert(
        fc.property(c.trials, (t) => gradcheck(t.fn, t.inputs, { ...suiteTolerance, ...t.opts })),
        { numRuns: runs, seed: 42, includeErrorInReport: true },
      );
      caseCount.value += runs;
    });
  }
  s.after(() => console.log(`  ${name}: ${caseCount.value} gradient-check property cases so far`));
  s.run();
}

register('grad: ops', opCases);
register('grad: F', fCases);
