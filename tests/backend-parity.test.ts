// One parity suite for every fast backend registered by core/backend/all.ts: each kernel of the Backend interface
// against the reference backend run in float64 on the same values, on random shapes and views drawn by fast-check
// (contiguous, permuted, sliced with gaps and offsets, broadcast with stride 0), odd sizes off the block sizes,
// conv groups/depthwise/stride/dilation/padding, pooling ceilMode/countIncludePad, batch norm in training and eval.
// float32 results must match within 1e-4 relative, scaled by the reduction length; float64 inputs within 1e-9.
// Tensors above the cpu backend's wasm threshold get cases of their own (its elementwise ops bit for bit).
// A backend that is not available here is printed as SKIPPED and counted as skipped by uvu, never passed.

import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import '../core/backend/all.js';
import { listBackends, withBackend, backend } from '../core/backend/index.js';
import { referenceKernels as ref, convOut, poolOut } from '../core/backend/reference.js';
import { hostResults } from './helpers/host-results.js';
import type { Backend, BinaryOp, Conv2dParams, Pool2dParams, UnaryOp, HostView } from '../core/backend/types.js';
import type { Storage } from '../core/dtype.js';

let cases = 0;
const RUNS = Number(process.env.PTSLAB_PARITY_RUNS ?? 100);

/** Small deterministic generator for tensor values (fast-check draws its seed). */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

type Layout = { perm: number[]; step: number[]; bcast: boolean[]; offset: number };
type DT = 'float32' | 'float64';

/** A random memory layout for a shape: dim order, gaps (step 2), broadcast dims (stride 0), leading offset. */
function arbLayout(rank: number, allowBcast: boolean): fc.Arbitrary<Layout> {
  return fc.record({
    perm: fc.shuffledSubarray([...Array(rank).keys()], { minLength: rank, maxLength: rank }),
    step: fc.array(fc.constantFrom(1, 1, 2), { minLength: rank, maxLength: rank }),
    bcast: fc.array(allowBcast ? fc.boolean() : fc.constant(false), { minLength: rank, maxLength: rank }),
    offset: fc.nat(3),
  });
}

/** Build a view of the given shape and layout with values from gen; returns the float32/64 view and its f64 twin. */
function makeView(shape: readonly number[], lay: Layout | null, dt: DT, gen: () => number): { v: HostView; r: HostView } {
  const rank = shape.length;
  const L = lay ?? { perm: [...Array(rank).keys()], step: Array(rank).fill(1), bcast: Array(rank).fill(false), offset: 0 };
  const strides = new Array<number>(rank).fill(0);
  let run = 1;
  for (let i = rank - 1; i >= 0; i--) {
    const d = L.perm[i];
    if (L.bcast[d]) continue;
    strides[d] = run * L.step[d];
    run *= shape[d] * L.step[d];
  }
  const n = L.offset + run;
  const data = dt === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = gen();
  return { v: { data, shape, strides, offset: L.offset }, r: { data: Float64Array.from(data), shape, strides, offset: L.offset } };
}

function contig(shape: readonly number[], dt: DT, gen: () => number) {
  return makeView(shape, null, dt, gen);
}

/** |a - e| <= tol * max(1, max|e|) elementwise, tol = base * max(1, sqrt(L) / 4). */
function close(op: string, a: Storage, e: Storage, dt: DT, L = 1, exact = false) {
  cases++;
  assert.is(a.length, e.length, `${op}: length ${a.length} vs ${e.length}`);
  if (dt === 'float32') assert.ok(a instanceof Float32Array, `${op}: float32 input must give a Float32Array`);
  else assert.ok(a instanceof Float64Array, `${op}: float64 input must give a Float64Array`);
  let scale = 1;
  for (let i = 0; i < e.length; i++) if (Number.isFinite(e[i])) scale = Math.max(scale, Math.abs(e[i]));
  const tol = exact ? 0 : (dt === 'float32' ? 1e-4 : 1e-9) * Math.max(1, Math.sqrt(L) / 4) * scale;
  for (let i = 0; i < e.length; i++) {
    const x = a[i], y = e[i];
    if (Number.isNaN(y) && Number.isNaN(x)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= tol)) assert.unreachable(`${op}: element ${i} is ${x}, reference ${y} (tol ${tol.toExponential(2)})`);
  }
}

const arbShape = (rank: fc.Arbitrary<number>, max = 6) =>
  rank.chain((r) => fc.array(fc.integer({ min: 1, max }), { minLength: r, maxLength: r }));
const arbDt: fc.Arbitrary<DT> = fc.constantFrom<DT>('float32', 'float32', 'float32', 'float64');
function prop<T>(arb: fc.Arbitrary<T>, fn: (t: T) => void, runs = RUNS) {
  try {
    fc.assert(fc.property(arb, fn), { numRuns: runs });
  } catch (e) {
    // fast-check keeps the failing assertion as the cause: put its message in front
    const cause = (e as { cause?: Error }).cause;
    throw new Error(`${cause?.message ?? ''}\n${(e as Error).message}`);
  }
}

type ArbValue<A> = A extends fc.Arbitrary<infer T> ? T : never;
interface PoolCase {
  N: number; C: number; H: number; W: number; KH: number; KW: number; sh: number; sw: number; ph: number; pw: number;
  dh: number; dw: number; ceilMode: boolean; countIncludePad: boolean; oh: number; ow: number; seed: number; dt: DT;
  lx: Layout;
}

const unaryOps: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'abs', 'sign', 'sigmoid', 'tanh', 'relu'];
const binaryOps: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'gt', 'ge', 'lt', 'le', 'eq'];

function defineSuite(backendUnderTest: Backend) {
  const b = hostResults(backendUnderTest);
  const S = suite(`backend-parity: ${backendUnderTest.name}`);
  const run = <T>(fn: () => T): T => withBackend(backendUnderTest, fn);

  S('contiguous and assign on strided views', () => {
    prop(fc.record({ shape: arbShape(fc.integer({ min: 0, max: 4 })), seed: fc.nat(), dt: arbDt }).chain((c) =>
      fc.record({ c: fc.constant(c), la: arbLayout(c.shape.length, true), lb: arbLayout(c.shape.length, false) })), ({ c, la, lb }) => {
      const g = rng(c.seed);
      const x = makeView(c.shape, la, c.dt, () => g() * 4 - 2);
      close('contiguous', run(() => b.contiguous(x.v)), ref.contiguous(x.r), c.dt, 1, true);
      const d = makeView(c.shape, lb, c.dt, () => 0);
      run(() => b.assign(d.v, x.v));
      ref.assign(d.r, x.r);
      close('assign', d.v.data, d.r.data, c.dt, 1, true);
    });
  });

  S('relu and comparisons on -Inf, -0, +0, Inf and NaN, bit for bit', () => {
    const special = [-Infinity, -3, -0, 0, 2, Infinity, NaN];
    for (const dt of ['float32', 'float64'] as const) {
      const x = contig([special.length], dt, (() => { let i = 0; return () => special[i++]; })());
      const relu = run(() => b.unary('relu', x.v));
      // relu(-0) is +0 and relu(-Inf) is 0, not NaN; NaN stays NaN
      assert.equal([...relu].map((v) => Object.is(v, -0) ? '-0' : String(v)), ['0', '0', '0', '0', '2', 'Infinity', 'NaN']);
      const zero: HostView = { data: dt === 'float32' ? new Float32Array([0]) : new Float64Array([0]), shape: [special.length], strides: [0], offset: 0 };
      assert.equal([...run(() => b.binary('gt', x.v, zero))], [0, 0, 0, 0, 1, 1, 0]);
      assert.equal([...run(() => b.binary('le', x.v, zero))], [1, 1, 1, 1, 0, 0, 0]);
      assert.equal([...run(() => b.binary('eq', x.v, zero))], [0, 0, 1, 1, 0, 0, 0]);
      cases += 4;
    }
  });

  S('unary, clamp, where, binary with broadcast views', () => {
    prop(fc.record({
      shape: arbShape(fc.integer({ min: 0, max: 4 })), seed: fc.nat(), dt: arbDt,
      u: fc.constantFrom(...unaryOps), op: fc.constantFrom(...binaryOps),
    }).chain((c) => fc.record({
      c: fc.constant(c), la: arbLayout(c.shape.length, true), lb: arbLayout(c.shape.length, true), lc: arbLayout(c.shape.length, true),
    })), ({ c, la, lb, lc }) => {
      const g = rng(c.seed);
      const positive = c.u === 'log' || c.u === 'sqrt' || c.op === 'pow';
      // round values so comparisons and eq see ties; 3% NaN so every kernel's NaN rule is compared too
      const val = () => (g() < 0.03 ? NaN : positive ? 0.1 + g() * 2 : Math.round((g() * 4 - 2) * 4) / 4);
      const a = makeView(c.shape, la, c.dt, val);
      const bb = makeView(c.shape, lb, c.dt, c.op === 'div' ? () => (g() < 0.5 ? -1 : 1) * (0.5 + g()) : val);
      const cond = makeView(c.shape, lc, c.dt, () => (g() < 0.5 ? 0 : 1));
      close(`unary ${c.u}`, run(() => b.unary(c.u, a.v)), ref.unary(c.u, a.r), c.dt);
      close(`binary ${c.op}`, run(() => b.binary(c.op, a.v, bb.v)), ref.binary(c.op, a.r, bb.r), c.dt);
      close('clamp', run(() => b.clamp(a.v, -0.5, 0.75)), ref.clamp(a.r, -0.5, 0.75), c.dt, 1, true);
      close('where', run(() => b.where(cond.v, a.v, bb.v)), ref.where(cond.r, a.r, bb.r), c.dt, 1, true);
    });
  });

  S('reduce sum/max/min over random axes', () => {
    prop(fc.record({ shape: arbShape(fc.integer({ min: 0, max: 4 }), 9), seed: fc.nat(), dt: arbDt, op: fc.constantFrom('sum', 'max', 'min' as const) })
      .chain((c) => fc.record({ c: fc.constant(c), la: arbLayout(c.shape.length, true), axes: fc.subarray([...c.shape.keys()]) })), ({ c, la, axes }) => {
      const g = rng(c.seed);
      const x = makeView(c.shape, la, c.dt, () => (g() < 0.02 ? NaN : g() * 4 - 2));
      const L = axes.reduce((p, a) => p * c.shape[a], 1);
      close(`reduce ${c.op} ${JSON.stringify(axes)}`, run(() => b.reduce(c.op, x.v, axes)), ref.reduce(c.op, x.r, axes), c.dt, L);
    });
  });

  S('matmul: odd sizes, transposed and batch-broadcast operands', () => {
    prop(fc.record({
      B: fc.integer({ min: 1, max: 3 }), M: fc.integer({ min: 1, max: 70 }), K: fc.integer({ min: 1, max: 300 }),
      N: fc.integer({ min: 1, max: 70 }), seed: fc.nat(), dt: arbDt,
      la: arbLayout(3, false), lb: arbLayout(3, false), ba: fc.boolean(), bb: fc.boolean(),
    }), (c) => {
      const g = rng(c.seed);
      const la = { ...c.la, bcast: [c.ba && c.B > 1, false, false] }, lb = { ...c.lb, bcast: [c.bb && c.B > 1, false, false] };
      const a = makeView([c.B, c.M, c.K], la, c.dt, () => g() * 2 - 1);
      const bv = makeView([c.B, c.K, c.N], lb, c.dt, () => g() * 2 - 1);
      close(`matmul ${c.B}x${c.M}x${c.K}x${c.N}`, run(() => b.matmul(a.v, bv.v)), ref.matmul(a.r, bv.r), c.dt, c.K);
    });
  });

  const arbConv = fc.record({
    N: fc.integer({ min: 1, max: 2 }), G: fc.integer({ min: 1, max: 3 }), Cg: fc.integer({ min: 1, max: 5 }),
    Og: fc.integer({ min: 1, max: 9 }), H: fc.integer({ min: 1, max: 13 }), W: fc.integer({ min: 1, max: 13 }),
    KH: fc.integer({ min: 1, max: 4 }), KW: fc.integer({ min: 1, max: 4 }), sh: fc.integer({ min: 1, max: 3 }),
    sw: fc.integer({ min: 1, max: 3 }), ph: fc.nat(3), pw: fc.nat(3), dh: fc.integer({ min: 1, max: 2 }),
    dw: fc.integer({ min: 1, max: 2 }), depthwise: fc.boolean(), bias: fc.boolean(), seed: fc.nat(), dt: arbDt,
    lx: arbLayout(4, false),
  }).filter((c) => {
    const p = { stride: [c.sh, c.sw], padding: [c.ph, c.pw], dilation: [c.dh, c.dw], groups: 1 } as Conv2dParams;
    const { OH, OW } = convOut(c.H, c.W, c.KH, c.KW, p);
    return OH >= 1 && OW >= 1;
  });

  type ConvCase = ArbValue<typeof arbConv>;
  const convCase = (c: ConvCase, scale = 1) => {
    const g = rng(c.seed);
    const G = c.depthwise ? c.G * c.Cg : c.G;
    const Cg = c.depthwise ? 1 : c.Cg, Og = c.depthwise ? 1 : c.Og;
    const C = G * Cg * scale, O = G * Og * scale;
    const p: Conv2dParams = { stride: [c.sh, c.sw], padding: [c.ph, c.pw], dilation: [c.dh, c.dw], groups: c.depthwise ? C : G };
    const cg = C / p.groups;
    const x = makeView([c.N, C, c.H, c.W], c.lx, c.dt, () => g() * 2 - 1);
    const w = contig([O, cg, c.KH, c.KW], c.dt, () => g() * 2 - 1);
    const bias = c.bias ? contig([O], c.dt, () => g() * 2 - 1) : null;
    const { OH, OW } = convOut(c.H, c.W, c.KH, c.KW, p);
    const gy = makeView([c.N, O, OH, OW], c.lx, c.dt, () => g() * 2 - 1);
    const tag = `conv2d x[${x.v.shape}] w[${w.v.shape}] ${JSON.stringify(p)}`;
    const L = cg * c.KH * c.KW;
    close(`${tag} forward`, run(() => b.conv2d(x.v, w.v, bias?.v ?? null, p)), ref.conv2d(x.r, w.r, bias?.r ?? null, p), c.dt, L);
    close(`${tag} backward-input`, run(() => b.conv2dBackwardInput(gy.v, w.v, x.v.shape, p)), ref.conv2dBackwardInput(gy.r, w.r, x.r.shape, p), c.dt, (O / p.groups) * c.KH * c.KW);
    close(`${tag} backward-weight`, run(() => b.conv2dBackwardWeight(gy.v, x.v, w.v.shape, p)), ref.conv2dBackwardWeight(gy.r, x.r, w.r.shape, p), c.dt, c.N * OH * OW);
  };

  S('conv2d forward, backward-input, backward-weight: groups, depthwise, stride, dilation, padding', () => {
    prop(arbConv, (c) => convCase(c), RUNS * 2);
  });

  S('conv2d on layer-sized shapes (parallel paths, block edges)', () => {
    const big = fc.record({
      C: fc.constantFrom(8, 16, 24, 37), O: fc.constantFrom(8, 19, 32, 64), HW: fc.constantFrom(9, 14, 17, 28),
      K: fc.constantFrom(1, 3), s: fc.constantFrom(1, 2), depthwise: fc.boolean(), seed: fc.nat(),
    });
    prop(big, (c) => {
      const pad = c.K === 3 ? 1 : 0;
      convCase({
        N: 2, G: 1, Cg: c.depthwise ? c.C : c.C, Og: c.depthwise ? 1 : c.O, H: c.HW, W: c.HW + 1, KH: c.K, KW: c.K,
        sh: c.s, sw: c.s, ph: pad, pw: pad, dh: 1, dw: 1, depthwise: c.depthwise, bias: true, seed: c.seed, dt: 'float32',
        lx: { perm: [0, 1, 2, 3], step: [1, 1, 1, 1], bcast: [false, false, false, false], offset: 0 },
      });
    }, Math.max(4, RUNS / 4));
  });

  S('conv2d on both sides of the cpu backend\'s direct-kernel thresholds (ResNet-20 shapes, 64 channels, 16 x 28 x 28 outputs)', () => {
    // cpu: forward direct up to 64 channels in and out and O x OH x OW <= 16 x 28 x 28 (KxK only), weight gradient
    // direct up to 64 channels; the first of each pair below is inside a threshold, the second just past it.
    // N = 5 is one full chunk of 4 images and one of 1 in the weight gradient; widths W + 1 are odd.
    const shapes: Array<[C: number, O: number, H: number, W: number, K: number, s: number, d: number]> = [
      [16, 16, 28, 28, 3, 1, 1], [16, 16, 28, 29, 3, 1, 1], [64, 64, 7, 7, 3, 1, 1], [65, 64, 7, 7, 3, 1, 1],
      [64, 65, 7, 7, 3, 1, 1], [32, 32, 14, 15, 3, 1, 1], [16, 32, 28, 28, 3, 2, 1], [32, 64, 14, 13, 3, 2, 1],
      [16, 32, 28, 28, 1, 2, 1], [1, 16, 28, 28, 3, 1, 1], [8, 12, 13, 11, 5, 1, 2], [3, 20, 17, 16, 3, 2, 2],
    ];
    prop(fc.record({
      shape: fc.constantFrom(...shapes), N: fc.constantFrom(1, 2, 5), pad: fc.constantFrom(0, 1, 2), bias: fc.boolean(), seed: fc.nat(),
    }), (c) => {
      const [C, O, H, W, K, st, d] = c.shape;
      const pad = K === 1 ? 0 : c.pad;
      convCase({
        N: c.N, G: 1, Cg: C, Og: O, H, W, KH: K, KW: K, sh: st, sw: st, ph: pad, pw: pad, dh: d, dw: d, depthwise: false,
        bias: c.bias, seed: c.seed, dt: 'float32', lx: { perm: [0, 1, 2, 3], step: [1, 1, 1, 1], bcast: [false, false, false, false], offset: 0 },
      });
    }, Math.max(12, RUNS / 4));
  });

  const arbPool: fc.Arbitrary<PoolCase> = fc.record({
    N: fc.integer({ min: 1, max: 2 }), C: fc.integer({ min: 1, max: 3 }), H: fc.integer({ min: 1, max: 11 }),
    W: fc.integer({ min: 1, max: 11 }), KH: fc.integer({ min: 1, max: 4 }), KW: fc.integer({ min: 1, max: 4 }),
    sh: fc.integer({ min: 1, max: 3 }), sw: fc.integer({ min: 1, max: 3 }), ph: fc.nat(2), pw: fc.nat(2),
    dh: fc.integer({ min: 1, max: 2 }), dw: fc.integer({ min: 1, max: 2 }), ceilMode: fc.boolean(),
    countIncludePad: fc.boolean(), oh: fc.integer({ min: 1, max: 6 }), ow: fc.integer({ min: 1, max: 6 }),
    seed: fc.nat(), dt: arbDt, lx: arbLayout(4, false),
  }).map((c) => ({ ...c, ph: Math.min(c.ph, c.KH >> 1), pw: Math.min(c.pw, c.KW >> 1) }))
    .filter((c) => {
      const { OH, OW } = poolOut(c.H, c.W, pool(c, true));
      return OH >= 1 && OW >= 1 && poolOut(c.H, c.W, pool(c, false)).OH >= 1 && poolOut(c.H, c.W, pool(c, false)).OW >= 1;
    });
  function pool(c: PoolCase, dilated: boolean): Pool2dParams {
    return {
      kernelSize: [c.KH, c.KW], stride: [c.sh, c.sw], padding: [c.ph, c.pw],
      dilation: dilated ? [c.dh, c.dw] : [1, 1], ceilMode: c.ceilMode, countIncludePad: c.countIncludePad,
    };
  }

  S('pooling: max (dilation, argmax), avg (ceilMode, countIncludePad), adaptive; forward and backward', () => {
    prop(arbPool, (c) => {
      const g = rng(c.seed);
      const x = makeView([c.N, c.C, c.H, c.W], c.lx, c.dt, () => g() * 4 - 2);
      const mp = pool(c, true), ap = pool(c, false);
      const m = run(() => b.maxPool2d(x.v, mp)), mr = ref.maxPool2d(x.r, mp);
      close('maxPool2d', m.out, mr.out, c.dt, 1, true);
      assert.equal([...m.argmax], [...mr.argmax], 'maxPool2d argmax');
      const mo = poolOut(c.H, c.W, mp), ao = poolOut(c.H, c.W, ap);
      const gm = makeView([c.N, c.C, mo.OH, mo.OW], c.lx, c.dt, () => g() * 2 - 1);
      close('maxPool2dBackward', run(() => b.maxPool2dBackward(gm.v, m.argmax, x.v.shape)), ref.maxPool2dBackward(gm.r, mr.argmax, x.r.shape), c.dt);
      close(`avgPool2d ${JSON.stringify(ap)}`, run(() => b.avgPool2d(x.v, ap)), ref.avgPool2d(x.r, ap), c.dt, c.KH * c.KW);
      const ga = makeView([c.N, c.C, ao.OH, ao.OW], c.lx, c.dt, () => g() * 2 - 1);
      close('avgPool2dBackward', run(() => b.avgPool2dBackward(ga.v, x.v.shape, ap)), ref.avgPool2dBackward(ga.r, x.r.shape, ap), c.dt, c.KH * c.KW);
      close('adaptiveAvgPool2d', run(() => b.adaptiveAvgPool2d(x.v, [c.oh, c.ow])), ref.adaptiveAvgPool2d(x.r, [c.oh, c.ow]), c.dt, c.H * c.W);
      const gd = makeView([c.N, c.C, c.oh, c.ow], c.lx, c.dt, () => g() * 2 - 1);
      close('adaptiveAvgPool2dBackward', run(() => b.adaptiveAvgPool2dBackward(gd.v, x.v.shape)), ref.adaptiveAvgPool2dBackward(gd.r, x.r.shape), c.dt, c.H * c.W);
    });
  });

  // A NaN in x, on the cpu backend: gpu.js's sums kernel multiplies x into sum gy by 0, so there NaN reaches gbias.
  const arbNan = backendUnderTest.name === 'cpu' ? fc.boolean() : fc.constant(false);
  interface BnCase { N: number; C: number; H: number; W: number; affine: boolean; training: boolean; nan: boolean; seed: number; dt: DT; lx: Layout }
  const bnCase = (c: BnCase) => {
    const g = rng(c.seed);
    const x = makeView([c.N, c.C, c.H, c.W], c.lx, c.dt, () => g() * 4 - 1);
    // one NaN poisons its channel's statistics and gradients and nothing else
    if (c.nan) {
      const i = Math.floor(g() * x.v.data.length);
      x.v.data[i] = x.r.data[i] = NaN;
    }
    const gy = makeView([c.N, c.C, c.H, c.W], c.lx, c.dt, () => g() * 2 - 1);
    const m = c.N * c.H * c.W;
    const s = run(() => b.batchNormStats(x.v)), sr = ref.batchNormStats(x.r);
    close('batchNormStats mean', s.mean, sr.mean, c.dt, m);
    close('batchNormStats variance', s.variance, sr.variance, c.dt, m);
    const vec = (f: () => number) => { const v = contig([c.C], c.dt, f); return { v: v.v.data, r: v.r.data }; };
    const mean = c.training ? { v: s.mean, r: Float64Array.from(s.mean) } : vec(() => g() - 0.5);
    const invstd = c.training ? vec(() => 0) : vec(() => 0.5 + g());
    if (c.training) for (let i = 0; i < c.C; i++) invstd.r[i] = invstd.v[i] = 1 / Math.sqrt(s.variance[i] + 1e-5);
    const w = c.affine ? vec(() => g() * 2 - 1) : null, bias = c.affine ? vec(() => g() * 2 - 1) : null;
    close('batchNormForward', run(() => b.batchNormForward(x.v, mean.v, invstd.v, w?.v ?? null, bias?.v ?? null)),
      ref.batchNormForward(x.r, mean.r, invstd.r, w?.r ?? null, bias?.r ?? null), c.dt);
    const r = run(() => b.batchNormBackward(gy.v, x.v, mean.v, invstd.v, w?.v ?? null, c.training));
    const rr = ref.batchNormBackward(gy.r, x.r, mean.r, invstd.r, w?.r ?? null, c.training);
    close(`batchNormBackward gx training=${c.training}`, r.gx, rr.gx, c.dt, m);
    close('batchNormBackward gweight', r.gweight, rr.gweight, c.dt, m);
    close('batchNormBackward gbias', r.gbias, rr.gbias, c.dt, m);
  };

  S('batch norm: stats, forward, backward in training and eval', () => {
    prop(fc.record({
      N: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 1, max: 5 }), H: fc.integer({ min: 1, max: 9 }),
      W: fc.integer({ min: 1, max: 9 }), affine: fc.boolean(), training: fc.boolean(), nan: arbNan, seed: fc.nat(),
      dt: arbDt, lx: arbLayout(4, false),
    }), bnCase);
  });

  S('max pooling on large float32 tensors (the cpu wasm path): ties, NaN, padding, dilation, ceil mode, bit for bit', () => {
    const maxCase = (c: PoolCase) => {
      const g = rng(c.seed);
      // values on a coarse grid so windows hold ties; 3% NaN (NaN wins a window) and some -Inf
      const x = makeView([c.N, c.C, c.H, c.W], c.lx, 'float32', () => (g() < 0.03 ? NaN : g() < 0.02 ? -Infinity : Math.round(g() * 8) / 4));
      const mp = pool(c, true);
      const m = run(() => b.maxPool2d(x.v, mp)), mr = ref.maxPool2d(x.r, mp);
      assert.equal([...m.argmax], [...mr.argmax], 'maxPool2d argmax');
      assert.equal([...m.out].map(String), [...mr.out].map(String), 'maxPool2d values');
      const mo = poolOut(c.H, c.W, mp);
      const gm = makeView([c.N, c.C, mo.OH, mo.OW], c.lx, 'float32', () => g() * 2 - 1);
      close('maxPool2dBackward', run(() => b.maxPool2dBackward(gm.v, m.argmax, x.v.shape)), ref.maxPool2dBackward(gm.r, mr.argmax, x.r.shape), 'float32');
      cases++;
    };
    prop(arbPool.map((c) => ({ ...c, N: c.N + 2, C: c.C * 4 + 3, H: c.H + 6, W: c.W + 6 }))
      .filter((c) => c.N * c.C * c.H * c.W > 1024 && poolOut(c.H, c.W, pool(c, true)).OH >= 1), maxCase, Math.max(10, RUNS / 4));
    // ResNet's stem pool at 2 x 32 planes of 64 x 64: above the pool split, so the planes go to every thread
    const flatLayout: Layout = { perm: [0, 1, 2, 3], step: [1, 1, 1, 1], bcast: [false, false, false, false], offset: 0 };
    maxCase({ N: 2, C: 32, H: 64, W: 64, KH: 3, KW: 3, sh: 2, sw: 2, ph: 1, pw: 1, dh: 1, dw: 1, ceilMode: false, countIncludePad: false, oh: 1, ow: 1, seed: 7, dt: 'float32', lx: flatLayout });
  });

  S('batch norm on large float32 tensors (the cpu wasm path): odd planes, strided views, NaN', () => {
    // 1,025 to ~14,000 elements: above the cpu backend's wasm threshold, below its pool split (bn thread counts are
    // checked in reliability-determinism); H * W odd or even so the kernels' pair and single tails both run
    prop(fc.record({
      N: fc.integer({ min: 2, max: 6 }), C: fc.integer({ min: 1, max: 7 }), H: fc.integer({ min: 7, max: 19 }),
      W: fc.integer({ min: 7, max: 19 }), affine: fc.boolean(), training: fc.boolean(), nan: arbNan, seed: fc.nat(),
      dt: fc.constant<DT>('float32'), lx: arbLayout(4, false),
    }).filter((c) => c.N * c.C * c.H * c.W > 1024), bnCase, Math.max(10, RUNS / 4));
  });

  S('elementwise ops, clamp and where on large float32 tensors (the cpu wasm path): NaN, Inf, -0, subnormals, scalar operands', () => {
    // Every op here is one IEEE operation on float32 values, so the float64 reference rounded to float32 is the exact
    // answer, -0 included: the cpu backend (wasm or JavaScript) must match it bit for bit; other backends (gpu.js on a
    // GPU may flush subnormals or divide approximately) within the float32 tolerance.
    const exact = backendUnderTest.name === 'cpu';
    const special = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -3e-39, 3.4e38, -1.5];
    const ops: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'gt', 'ge', 'lt', 'le', 'eq'];
    prop(fc.record({
      n: fc.integer({ min: 1025, max: 6000 }), offset: fc.nat(3), seed: fc.nat(), scalar: fc.constantFrom(...special, 0.5),
      side: fc.constantFrom('none', 'a', 'b'), u: fc.constantFrom<UnaryOp>('relu', 'neg', 'abs'), op: fc.constantFrom(...ops),
      // relu6's bounds, one-sided and float64 bounds that float32 cannot hold
      bounds: fc.constantFrom<[number, number]>([0, 6], [-1.5, 0.5], [-Infinity, 0.1], [0.1, Infinity], [-0.3, -0.3]),
    }), (c) => {
      const g = rng(c.seed);
      const val = () => (g() < 0.2 ? special[Math.floor(g() * special.length)] : Math.round((g() * 4 - 2) * 8) / 8);
      const lay: Layout = { perm: [0], step: [1], bcast: [false], offset: c.offset };
      const x = makeView([c.n], lay, 'float32', val), y = makeView([c.n], lay, 'float32', val);
      const sc = (d: Storage): HostView => ({ data: d, shape: [c.n], strides: [0], offset: 0 });
      const s32 = new Float32Array([c.scalar]), scalar = { v: sc(s32), r: sc(Float64Array.from(s32)) };
      const sa = c.side === 'a' ? scalar : x, sb = c.side === 'b' ? scalar : y;
      const check = (tag: string, got: Storage, want: Storage) => {
        if (!exact) return close(tag, got, want.map(Math.fround), 'float32');
        cases++;
        assert.is(got.length, want.length, `${tag}: length`);
        for (let i = 0; i < want.length; i++) {
          const e = Math.fround(want[i]);
          if (!Object.is(got[i], e)) assert.unreachable(`${tag}: element ${i} is ${Object.is(got[i], -0) ? '-0' : got[i]}, want ${Object.is(e, -0) ? '-0' : e}`);
        }
      };
      check(`unary ${c.u}`, run(() => b.unary(c.u, x.v)), ref.unary(c.u, x.r));
      check(`clamp [${c.bounds}]`, run(() => b.clamp(x.v, ...c.bounds)), ref.clamp(x.r, ...c.bounds));
      // A device that flushes subnormals (WebGL) computes on them as zeros: where that changes a comparison or picks
      // the other branch of where, the answer on flushed inputs is its answer. Exact backends get no such leeway.
      // (to a zero of the subnormal's sign, as IEEE flush-to-zero does: 1 / -3e-39 flushed is -Infinity)
      const flush = (v: HostView): HostView => ({ ...v, data: v.data.map((e) => (Math.abs(e) < 2 ** -126 ? (e < 0 ? -0 : 0) : e)) });
      const checkFlushing = (tag: string, got: Storage, want: Storage, flushed: Storage) => {
        if (exact) return check(tag, got, want);
        const same = (w: number, g: number) => Object.is(Math.fround(w), g) || (w !== w && g !== g) || (Number.isFinite(w) && Math.abs(Math.fround(w) - g) <= 1e-4 * (1 + Math.abs(w)));
        const picked = Float64Array.from(want, (w, i) => (same(w, got[i]) ? w : flushed[i]));
        check(tag, got, picked);
      };
      checkFlushing(`binary ${c.op} (scalar ${c.side}: ${c.scalar})`, run(() => b.binary(c.op, sa.v, sb.v)), ref.binary(c.op, sa.r, sb.r),
        ref.binary(c.op, flush(sa.r), flush(sb.r)));
      // the condition holds NaN, -0 and +0 too (relu's gradient is where(relu(x), g, 0))
      const cond = makeView([c.n], lay, 'float32', val);
      checkFlushing(`where (scalar ${c.side}: ${c.scalar})`, run(() => b.where(cond.v, sa.v, sb.v)), ref.where(cond.r, sa.r, sb.r),
        ref.where(flush(cond.r), sa.r, sb.r));
    }, Math.max(20, RUNS / 2));
  });

  S('the backend registry selects it', () => {
    assert.is(run(() => backend().name), backendUnderTest.name);
  });

  return S;
}

const names = listBackends().filter((n) => n !== 'reference');
const found = names.map((n) => withBackend(n, () => backend()));
for (const b of found) {
  const why = b.unavailableReason?.() ?? null;
  if (why) {
    console.log(`SKIPPED backend-parity for backend '${b.name}': ${why}`);
    const S = suite(`backend-parity: ${b.name} (SKIPPED)`);
    S.skip(`${b.name} is not available on this machine: ${why}`, () => {});
    S.run();
    continue;
  }
  defineSuite(b).run();
}
const tail = suite('backend-parity: summary');
tail('property cases ran', () => {
  console.log(`backend-parity: ${cases} kernel comparisons over ${found.length} backend(s): ${names.join(', ') || 'none'}`);
  assert.ok(names.length === 0 || cases > 0);
});
tail.run();
