// The gpujs backend against the reference backend, in whatever gpu.js mode this machine gives (WebGL through
// headless-gl under xvfb-run, else webasm; PTSLAB_GPUJS_MODE forces one). Each gpu.js kernel runs on random shapes
// drawn by fast-check, odd sizes, groups/depthwise, stride, padding and dilation included, with float32 tolerances.
// Also: what gpu.js is poor at is delegated (float64, broadcast views), kernels are cached per shape and freed by
// dispose(), no kernel silently fell back to another mode, and on WebGL the conv's im2col stays a device texture.
// Where gpu.js cannot run, one SKIPPED line says why; a mode forced through PTSLAB_GPUJS_MODE that cannot run fails.
// Shapes stay small: gpu.js's cpu mode is slow and WebGL here is Mesa llvmpipe (software).

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createGpujsBackend, gpujsMode, requestedMode, type GpujsBackend } from '../core/backend/gpujs/index.js';
import { convOut, referenceBackend as ref } from '../core/backend/reference.js';
import type { BinaryOp, Conv2dParams, UnaryOp, View } from '../core/backend/types.js';
import type { Storage } from '../core/dtype.js';
import { contiguousStrides, numel } from '../core/shape.js';

const created = createGpujsBackend({ minElementwise: 0, minWork: 0 });
const forced = requestedMode();
const t = suite('gpujs backend');

if ('unavailable' in created) {
  console.log(`SKIPPED gpujs backend tests: ${created.unavailable}`);
  t.skip(`gpujs kernels vs reference (unavailable: ${created.unavailable})`, () => undefined);
  if (forced) {
    t(`PTSLAB_GPUJS_MODE=${forced} was requested and must be available`, () => {
      assert.unreachable(`gpujs unavailable in forced mode '${forced}': ${created.unavailable}`);
    });
  }
} else {
  const b: GpujsBackend = created;
  console.log(`gpujs backend tests run in gpu.js mode '${b.mode}'${forced ? ` (PTSLAB_GPUJS_MODE=${forced})` : ''}`);
  registerTests(b);
}
t.run();

/** A seeded uniform generator in [-1, 1): data come from one fast-check integer, so shrinking acts on shapes. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

function view(shape: readonly number[], r: () => number, f64 = false): View {
  const n = numel(shape);
  const data = f64 ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = r();
  return { data, shape, strides: contiguousStrides(shape), offset: 0 };
}

/** Every |got - want| <= atol + rtol |want|; NaN must meet NaN. */
function close(what: string, got: Storage, want: Storage, atol: number, rtol = 1e-4): void {
  assert.is(got.length, want.length, `${what}: length`);
  assert.is(got.constructor, want.constructor, `${what}: element type`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (g === w || (Number.isNaN(w) && Number.isNaN(g))) continue;
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) {
      assert.unreachable(`${what}: element ${i} is ${g}, reference ${w} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** float32 tolerance for a sum of `terms` products of values in [-1, 1]. */
const sumTol = (terms: number) => 1e-5 * (4 + Math.sqrt(terms) * 4);

const convCase = fc
  .record({
    n: fc.integer({ min: 1, max: 2 }),
    groups: fc.integer({ min: 1, max: 3 }),
    cg: fc.integer({ min: 1, max: 3 }),
    og: fc.integer({ min: 1, max: 3 }),
    depthwise: fc.boolean(),
    kh: fc.integer({ min: 1, max: 3 }),
    kw: fc.integer({ min: 1, max: 3 }),
    stride: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
    padding: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
    dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
    h: fc.integer({ min: 1, max: 9 }),
    w: fc.integer({ min: 1, max: 9 }),
    bias: fc.boolean(),
    seed: fc.integer(),
  })
  .map((c) => (c.depthwise ? { ...c, cg: 1, og: 1, groups: c.groups + 1 } : c))
  .filter((c) => {
    const { OH, OW } = convOut(c.h, c.w, c.kh, c.kw, params(c));
    return OH >= 1 && OW >= 1;
  });

function params(c: { stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number }): Conv2dParams {
  return { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
}

function registerTests(b: GpujsBackend): void {
  t('gpujsMode() names the mode in use, and a forced mode is honoured', () => {
    assert.is(gpujsMode(), b.mode);
    assert.ok(['headlessgl', 'webasm', 'cpu'].includes(b.mode), b.mode);
    const want: Record<string, string> = { webgl: 'headlessgl', headlessgl: 'headlessgl', webasm: 'webasm', cpu: 'cpu' };
    if (forced && forced !== 'gpu') assert.is(b.mode, want[forced]);
  });

  t('matmul: batched, odd sizes, transposed (strided) operands', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 17 }),
        fc.integer({ min: 1, max: 9 }), fc.boolean(), fc.integer(),
        (B, M, K, N, transposeB, seed) => {
          const r = rng(seed);
          const a = view([B, M, K], r);
          // b as the transpose of a contiguous [B, N, K]: strides [N*K, 1, K].
          const bv = transposeB
            ? { ...view([B, N, K], r), shape: [B, K, N], strides: [N * K, 1, K] }
            : view([B, K, N], r);
          close(`matmul ${B}x${M}x${K}x${N}`, b.matmul(a, bv), ref.matmul(a, bv), sumTol(K));
        },
      ),
      { numRuns: 12, includeErrorInReport: true },
    );
  });

  t('conv2d forward, backward-input, backward-weight: groups, depthwise, stride, padding, dilation', () => {
    fc.assert(
      fc.property(convCase, (c) => {
        const r = rng(c.seed);
        const p = params(c);
        const C = c.cg * c.groups, O = c.og * c.groups;
        const x = view([c.n, C, c.h, c.w], r);
        const w = view([O, c.cg, c.kh, c.kw], r);
        const bias = c.bias ? view([O], r) : null;
        const { OH, OW } = convOut(c.h, c.w, c.kh, c.kw, p);
        const gy = view([c.n, O, OH, OW], r);
        const what = `conv ${JSON.stringify(c)}`;
        close(`${what} forward`, b.conv2d(x, w, bias, p), ref.conv2d(x, w, bias, p), sumTol(c.cg * c.kh * c.kw));
        close(`${what} grad input`, b.conv2dBackwardInput(gy, w, x.shape, p), ref.conv2dBackwardInput(gy, w, x.shape, p), sumTol(c.og * c.kh * c.kw));
        close(`${what} grad weight`, b.conv2dBackwardWeight(gy, x, w.shape, p), ref.conv2dBackwardWeight(gy, x, w.shape, p), sumTol(c.n * OH * OW));
      }),
      { numRuns: 12, includeErrorInReport: true },
    );
  });

  t('conv2d on a non-contiguous input view (NHWC storage seen as NCHW)', () => {
    const r = rng(7);
    const [N, C, H, W] = [2, 3, 5, 4];
    const nhwc = view([N, H, W, C], r);
    const x: View = { data: nhwc.data, shape: [N, C, H, W], strides: [H * W * C, 1, W * C, C], offset: 0 };
    const w = view([4, C, 3, 3], r);
    const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    close('conv strided input', b.conv2d(x, w, null, p), ref.conv2d(x, w, null, p), sumTol(27));
  });

  t('conv2d and batch norm on an image wider than a WebGL texture side (17000 > 16384)', () => {
    const r = rng(11);
    const x = view([1, 2, 1, 17000], r);
    const w = view([2, 2, 1, 3], r);
    const p: Conv2dParams = { stride: [1, 1], padding: [0, 1], dilation: [1, 1], groups: 1 };
    const runs = b.stats.runs;
    close('wide conv', b.conv2d(x, w, null, p), ref.conv2d(x, w, null, p), sumTol(6));
    const s0 = ref.batchNormStats(x);
    close('wide bn forward', b.batchNormForward(x, s0.mean, s0.mean, null, null), ref.batchNormForward(x, s0.mean, s0.mean, null, null), 1e-5);
    assert.ok(b.stats.runs > runs, 'ran on gpu.js, not delegated');
  });

  t('3-D layouts for images wider than a texture side, forced with maxTextureSize 40 (delegation past it)', () => {
    const small = createGpujsBackend({ minElementwise: 0, minWork: 0, maxTextureSize: 40 });
    if ('unavailable' in small) throw new Error(small.unavailable);
    // 9x9 output (81 > 40) with 18 column rows: only the 3-D layout fits (81 * 18 <= 40 * 40).
    const r = rng(13);
    const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    const [x, w, gy] = [view([2, 2, 9, 9], r), view([4, 2, 3, 3], r), view([2, 4, 9, 9], r)];
    close('split conv', small.conv2d(x, w, null, p), ref.conv2d(x, w, null, p), sumTol(18));
    close('split grad input', small.conv2dBackwardInput(gy, w, x.shape, p), ref.conv2dBackwardInput(gy, w, x.shape, p), sumTol(36));
    close('split grad weight', small.conv2dBackwardWeight(gy, x, w.shape, p), ref.conv2dBackwardWeight(gy, x, w.shape, p), sumTol(162));
    const s0 = ref.batchNormStats(x);
    // Batch norm planes of 81 > 40 values: [W, H, N*C] outputs. x doubles as the incoming gradient.
    const invstd = s0.mean.map(() => 2);
    close('split bn grad x', small.batchNormBackward(x, x, s0.mean, invstd, null, true).gx, ref.batchNormBackward(x, x, s0.mean, invstd, null, true).gx, 1e-4);
    assert.is(small.stats.runs, 3 * 2 * 2 + 2, 'every kernel ran on gpu.js: 2 per sample per conv pass, 2 for bn');
    fc.assert(
      fc.property(convCase, (c) => {
        const r = rng(c.seed);
        const p = params(c);
        const x = view([c.n, c.cg * c.groups, c.h, c.w], r);
        const w = view([c.og * c.groups, c.cg, c.kh, c.kw], r);
        const { OH, OW } = convOut(c.h, c.w, c.kh, c.kw, p);
        const gy = view([c.n, c.og * c.groups, OH, OW], r);
        close('conv (small textures)', small.conv2d(x, w, null, p), ref.conv2d(x, w, null, p), sumTol(c.cg * c.kh * c.kw));
        close('grad input (small textures)', small.conv2dBackwardInput(gy, w, x.shape, p), ref.conv2dBackwardInput(gy, w, x.shape, p), sumTol(c.og * c.kh * c.kw));
      }),
      { numRuns: 5, includeErrorInReport: true },
    );
    assert.equal(small.fallbacks, []);
    small.dispose();
  });

  t('batch norm stats, forward, backward (training and eval, with and without weight)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 6 }), fc.boolean(), fc.boolean(), fc.integer(),
        (N, C, H, W, training, withWeight, seed) => {
          fc.pre(N * H * W > 1);
          const r = rng(seed);
          const x = view([N, C, H, W], r);
          const gy = view([N, C, H, W], r);
          const m = N * H * W;
          const s = b.batchNormStats(x), s0 = ref.batchNormStats(x);
          close('bn mean', s.mean, s0.mean, sumTol(m) / m + 1e-6);
          close('bn variance', s.variance, s0.variance, sumTol(m) / m + 1e-6, 1e-3);
          const invstd = s0.variance.map((v) => 1 / Math.sqrt(v + 1e-5));
          const weight = withWeight ? view([C], r).data : null;
          const bias = withWeight ? view([C], r).data : null;
          close('bn forward', b.batchNormForward(x, s0.mean, invstd, weight, bias), ref.batchNormForward(x, s0.mean, invstd, weight, bias), 1e-4, 1e-4);
          const g = b.batchNormBackward(gy, x, s0.mean, invstd, weight, training);
          const g0 = ref.batchNormBackward(gy, x, s0.mean, invstd, weight, training);
          // gx scales with invstd, which is large for near-constant channels: compare relative to its size.
          const scale = Math.max(1, ...Array.from(invstd));
          close('bn grad x', g.gx, g0.gx, 1e-4 * scale * scale, 1e-3);
          close('bn grad weight', g.gweight, g0.gweight, sumTol(m) * scale, 1e-3);
          close('bn grad bias', g.gbias, g0.gbias, sumTol(m));
        },
      ),
      { numRuns: 12, includeErrorInReport: true },
    );
  });

  t('batch norm backward in eval mode: a NaN in x leaves grad bias finite (as the reference and PyTorch)', () => {
    const shape = [2, 3, 4, 5], r = rng(7);
    const x = view(shape, r), gy = view(shape, r);
    x.data[0] = NaN; // channel 0
    const mean = new Float32Array([0.1, -0.2, 0.3]), invstd = new Float32Array([1.5, 0.5, 2]);
    const g = b.batchNormBackward(gy, x, mean, invstd, null, false);
    const g0 = ref.batchNormBackward(gy, x, mean, invstd, null, false);
    assert.ok(Array.from(g0.gbias).every(Number.isFinite), 'reference grad bias is finite');
    close('eval bn grad bias with NaN in x', g.gbias, g0.gbias, sumTol(40));
    close('eval bn grad x with NaN in x', g.gx, g0.gx, 1e-5, 1e-5);
    assert.ok(Number.isNaN(g.gweight[0]) && Number.isNaN(g0.gweight[0]), 'grad weight of the NaN channel is NaN in both');
  });

  const unaryOps: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'abs', 'sign', 'sigmoid', 'tanh', 'relu'];
  const binaryOps: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'gt', 'ge', 'lt', 'le', 'eq'];

  t('elementwise unary and binary ops on dense inputs of odd lengths', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer(), (n, seed) => {
        const r = rng(seed);
        const x = view([n], r);
        for (let i = 0; i < n; i += 7) x.data[i] = [0, 30, -30, 1e-3, NaN][i % 5]; // zeros, exp/tanh extremes, NaN
        for (const op of unaryOps) {
          const input = op === 'log' || op === 'sqrt' ? { ...x, data: x.data.map(Math.abs).map((v) => v + 1e-3) } : x;
          close(`unary ${op} [${n}]`, b.unary(op, input), ref.unary(op, input), 1e-6, 2e-5);
        }
        const y = view([n], r);
        for (let i = 0; i < n; i += 5) y.data[i] = x.data[i]; // ties for eq/ge/le
        for (let i = 3; i < n; i += 11) y.data[i] = NaN; // NaN in either operand (maximum/minimum propagate it)
        for (const op of binaryOps) {
          const bb = op === 'div' ? { ...y, data: y.data.map((v) => (Math.abs(v) < 0.1 ? 0.5 : v)) } : y;
          close(`binary ${op} [${n}]`, b.binary(op, x, bb), ref.binary(op, x, bb), 1e-6, 2e-5);
        }
      }),
      { numRuns: 3, includeErrorInReport: true },
    );
  });

  t('delegated to the reference backend: float64, broadcast views, reductions, pooling', () => {
    const r = rng(3);
    const a64 = view([2, 3, 4], r, true), b64 = view([2, 4, 5], r, true);
    const before = b.stats.runs;
    const m = b.matmul(a64, b64);
    assert.instance(m, Float64Array);
    assert.equal(Array.from(m), Array.from(ref.matmul(a64, b64)));
    const x = view([3, 4], r);
    const row: View = { data: view([4], r).data, shape: [3, 4], strides: [0, 1], offset: 0 };
    assert.equal(Array.from(b.binary('add', x, row)), Array.from(ref.binary('add', x, row)));
    assert.equal(Array.from(b.reduce('sum', x, [1])), Array.from(ref.reduce('sum', x, [1])));
    assert.is(b.stats.runs, before, 'no gpu.js kernel ran for delegated work');
  });

  t('kernels are cached per shape; dispose() frees them and the backend keeps working', () => {
    const r = rng(5);
    const a = view([1, 6, 5], r), c = view([1, 5, 3], r);
    b.matmul(a, c);
    const count = b.kernelCount;
    b.matmul(view([1, 6, 5], r), view([1, 5, 3], r));
    assert.is(b.kernelCount, count, 'same shape, no new kernel');
    b.dispose();
    assert.is(b.kernelCount, 0);
    close('matmul after dispose', b.matmul(a, c), ref.matmul(a, c), sumTol(5));
    assert.is(b.kernelCount, 1);
  });

  t('on WebGL, conv forward keeps im2col on the device (pipeline texture), one per sample', () => {
    const r = rng(9);
    const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    b.dispose();
    b.conv2d(view([3, 2, 5, 5], r), view([4, 2, 3, 3], r), null, p);
    assert.is(b.stats.runs, 6, 'im2col + gemm per sample');
    assert.is(b.stats.textureOutputs, b.mode === 'headlessgl' ? 3 : 0);
  });

  t('no kernel fell back to another gpu.js mode', () => {
    assert.equal(b.fallbacks, []);
    b.dispose();
  });
}
