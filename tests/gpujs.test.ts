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
import { convOut, referenceKernels as ref } from '../core/backend/reference.js';
import { close, convCases, convParams, rng, sumTol } from './helpers/gpujs-cases.js';
import { hostResults, type HostResults } from './helpers/host-results.js';
import type { BinaryOp, Conv2dParams, UnaryOp, HostView } from '../core/backend/types.js';
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
  registerTests(hostResults(b));
}
t.run();


function view(shape: readonly number[], r: () => number, f64 = false): HostView {
  const n = numel(shape);
  const data = f64 ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = r();
  return { data, shape, strides: contiguousStrides(shape), offset: 0 };
}



const convCase = convCases(2);
const params = convParams;


function registerTests(b: HostResults<GpujsBackend>): void {
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
    const x: HostView = { data: nhwc.data, shape: [N, C, H, W], strides: [H * W * C, 1, W * C, C], offset: 0 };
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
    const made = createGpujsBackend({ minElementwise: 0, minWork: 0, maxTextureSize: 40 });
    if ('unavailable' in made) throw new Error(made.unavailable);
    const small = hostResults(made);
    // 9x9 output (81 > 40) with 18 column rows: only the 3-D layout fits (81 * 18 <= 40 * 40).
    const r = rng(13);
    const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    const [x, w, gy] = [view([2, 2, 9, 9], r), view([4, 2, 3, 3], r), view([2, 4, 9, 9], r)];
    /** fn's result, asserting that it ran gpu.js kernels (nothing delegated). */
    const onGpu = <T>(what: string, fn: () => T): T => {
      const before = small.stats.runs;
      const out = fn();
      assert.ok(small.stats.runs > before, `${what} ran on gpu.js`);
      return out;
    };
    close('split conv', onGpu('conv', () => small.conv2d(x, w, null, p)), ref.conv2d(x, w, null, p), sumTol(18));
    close('split grad input', onGpu('grad input', () => small.conv2dBackwardInput(gy, w, x.shape, p)), ref.conv2dBackwardInput(gy, w, x.shape, p), sumTol(36));
    close('split grad weight', onGpu('grad weight', () => small.conv2dBackwardWeight(gy, x, w.shape, p)), ref.conv2dBackwardWeight(gy, x, w.shape, p), sumTol(162));
    const s0 = ref.batchNormStats(x);
    // Batch norm planes of 81 > 40 values: [W, H, N*C] outputs. x doubles as the incoming gradient.
    const invstd = s0.mean.map(() => 2);
    close('split bn grad x', onGpu('bn backward', () => small.batchNormBackward(x, x, s0.mean, invstd, null, true)).gx, ref.batchNormBackward(x, x, s0.mean, invstd, null, true).gx, 1e-4);
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

  t('reduce sum/max/min over random axes of odd shapes, NaN included', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }), fc.integer(), fc.constantFrom('sum', 'max', 'min'),
        fc.integer({ min: 0, max: 15 }), fc.boolean(),
        (shape, seed, op, mask, nan) => {
          const x = view(shape, rng(seed));
          if (nan) (x.data as Float32Array)[seed & 1 ? 0 : x.data.length - 1] = NaN;
          const axes = shape.map((_, i) => i).filter((i) => (mask >> i) & 1);
          const before = b.stats.runs;
          const got = b.reduce(op as 'sum', x, axes);
          assert.ok(b.stats.runs > before, 'ran on gpu.js');
          close(`${op} over [${axes}] of [${shape}]`, got, ref.reduce(op as 'sum', x, axes), 1e-5 * numel(shape));
        },
      ),
      { numRuns: 25 },
    );
  });

  t('delegated to the reference backend: float64, pow', () => {
    const r = rng(3);
    const a64 = view([2, 3, 4], r, true), b64 = view([2, 4, 5], r, true);
    const before = b.stats.runs;
    const m = b.matmul(a64, b64);
    assert.instance(m, Float64Array);
    assert.equal(Array.from(m), Array.from(ref.matmul(a64, b64)));
    const x = view([3, 4], r);
    assert.equal(Array.from(b.binary('pow', x, x)), Array.from(ref.binary('pow', x, x)));
    assert.is(b.stats.runs, before, 'no gpu.js kernel ran for delegated work');
    // a broadcast view runs on gpu.js (on WebGL its span is uploaded and expanded on the device)
    const row: HostView = { data: view([4], r).data, shape: [3, 4], strides: [0, 1], offset: 0 };
    assert.equal(Array.from(b.binary('add', x, row)), Array.from(ref.binary('add', x, row)));
    assert.ok(b.stats.runs > before, 'broadcast add ran on gpu.js');
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

  t('conv forward is one kernel for the whole batch, and on WebGL its output is a device texture', () => {
    const r = rng(9);
    const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    b.dispose();
    b.conv2d(view([3, 2, 5, 5], r), view([4, 2, 3, 3], r), null, p);
    assert.is(b.stats.runs, 1, 'one direct-convolution kernel over the batch');
    assert.is(b.stats.textureOutputs, b.mode === 'headlessgl' ? 1 : 0);
  });

  t('no kernel fell back to another gpu.js mode', () => {
    assert.equal(b.fallbacks, []);
    b.dispose();
  });
}
