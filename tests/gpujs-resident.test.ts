// The device-resident gpujs kernels (core/backend/gpujs/{gemm,conv,norm,pool}.ts) called directly on a KernelCache,
// against the reference backend's kernels (referenceKernels: host arrays in and out), in whatever gpu.js mode this
// machine gives (WebGL through headless-gl under xvfb-run, else webasm; PTSLAB_GPUJS_MODE forces one). Each kernel
// runs whole-batch on random shapes drawn by fast-check (odd sizes, groups/depthwise, stride, padding, dilation, ceil
// mode, count_include_pad, training and eval), with float32 tolerances; operands are host arrays or, in WebGL mode,
// device textures (uploaded by a copy kernel, or the result of another kernel). Also: NaN and padding-only windows in
// max pooling, NaN in batch norm's eval backward; a conv -> batch norm -> conv -> conv -> max pool chain and its
// backward on device results only (a kernel reading its own earlier output included); in WebGL mode every result is
// a texture; two calls of one kernel on one shape give two results that both stay correct (OWNED outputs are
// immutable); the 3-D 'split' layouts and the one-kernel weight gradient run with a 40-texel texture side; no kernel
// fell back to another mode. Every texture a case gets is deleted at its end. Where gpu.js cannot run, one SKIPPED
// line says why; a forced mode that cannot run fails. Shapes stay small: WebGL here is Mesa llvmpipe (software) and
// each shader compile costs ~90 ms.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { convFits, gpuConv2d, gpuConv2dBackwardInput, gpuConv2dBackwardWeight } from '../core/backend/gpujs/conv.js';
import { gpuMatmul, matmulFits } from '../core/backend/gpujs/gemm.js';
import { KernelCache, OWNED, isTexture, readFlat, type Flat } from '../core/backend/gpujs/kernels.js';
import { createGpu, requestedMode, type GpuTexture, type KernelResult } from '../core/backend/gpujs/loader.js';
import { batchNormFits, gpuBatchNormBackward, gpuBatchNormForward, gpuBatchNormStats } from '../core/backend/gpujs/norm.js';
import {
  gpuAdaptiveAvgPool2d, gpuAdaptiveAvgPool2dBackward, gpuAvgPool2d, gpuAvgPool2dBackward, gpuMaxPool2d,
  gpuMaxPool2dBackward, poolFits,
} from '../core/backend/gpujs/pool.js';
import { convOut, poolOut, referenceKernels as ref } from '../core/backend/reference.js';
import type { Conv2dParams, HostView, Pool2dParams } from '../core/backend/types.js';
import type { Storage } from '../core/dtype.js';
import { contiguousStrides, numel } from '../core/shape.js';
import { close, convCases, convParams, rng, sumTol } from './helpers/gpujs-cases.js';

const t = suite('gpujs device-resident kernels');
const forced = requestedMode();
const started = createGpu();

if ('reason' in started) {
  console.log(`SKIPPED gpujs device-resident kernel tests: ${started.reason}`);
  t.skip(`gpujs device-resident kernels vs reference (unavailable: ${started.reason})`, () => undefined);
  if (forced) {
    t(`PTSLAB_GPUJS_MODE=${forced} was requested and must be available`, () => {
      assert.unreachable(`gpujs unavailable in forced mode '${forced}': ${started.reason}`);
    });
  }
} else {
  console.log(`gpujs device-resident kernel tests run in gpu.js mode '${started.mode}'${forced ? ` (PTSLAB_GPUJS_MODE=${forced})` : ''}`);
  registerTests(new KernelCache(started.gpu, started.mode));
}
t.run();


function values(n: number, r: () => number): Float32Array {
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = r();
  return data;
}

const view = (data: Float32Array, shape: readonly number[]): HostView => ({ data, shape, strides: contiguousStrides(shape), offset: 0 });



function registerTests(cache: KernelCache): void {
  const gl = cache.mode === 'headlessgl';

  /**
   * The textures one test case holds, deleted together at its end. read() copies a result's values out (asserting,
   * in WebGL mode, that it is a texture); keep() hands it on as the operand of the next kernel; upload() makes a host
   * array a device texture (WebGL mode only; elsewhere operands stay host arrays, as gpu.js has no device memory).
   */
  class Scope {
    private readonly textures = new Set<GpuTexture>();

    /** c: the cache whose GPU the uploads go to (a texture works only in kernels of its own GPU). */
    constructor(private readonly c: KernelCache) {}

    read(r: KernelResult, n: number, what: string): Float32Array {
      if (gl) assert.ok(isTexture(r), `${what}: a texture in WebGL mode`);
      if (isTexture(r)) this.textures.add(r);
      return readFlat(r, n).slice();
    }

    keep(r: KernelResult, n: number, what: string): Flat {
      if (gl) assert.ok(isTexture(r), `${what}: a texture in WebGL mode`);
      if (isTexture(r)) {
        this.textures.add(r);
        return r;
      }
      return readFlat(r, n).slice();
    }

    upload(data: Float32Array, device = true): Flat {
      if (!gl || !device) return data;
      const key = `test:upload:${data.length}`;
      const k = this.c.get(key, () => 'function(a) {\n  return a[this.thread.x];\n}', { output: [data.length], ...OWNED });
      return this.keep(this.c.run(key, k, data), data.length, 'upload');
    }

    /** Take r into this scope (deleted by free()) and return it as it is. */
    hold(r: KernelResult): KernelResult {
      if (isTexture(r)) this.textures.add(r);
      return r;
    }

    free(): void {
      for (const tex of this.textures) tex.delete();
      this.textures.clear();
    }
  }

  /** Run a test case with a fresh Scope, freeing its textures whatever happens. */
  const scoped = <T>(fn: (s: Scope) => T, c = cache): T => {
    const s = new Scope(c);
    try {
      return fn(s);
    } finally {
      s.free();
    }
  };

  t('the mode in use is one Node gets from gpu.js, and a forced mode is honoured', () => {
    assert.ok(['headlessgl', 'webasm', 'cpu'].includes(cache.mode), cache.mode);
    const want: Record<string, string> = { webgl: 'headlessgl', headlessgl: 'headlessgl', webasm: 'webasm', cpu: 'cpu' };
    if (forced && forced !== 'gpu') assert.is(cache.mode, want[forced]);
  });

  t('matmul [B, M, K] x [B, K, N]: odd sizes, host or device operands', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 17 }),
        fc.integer({ min: 1, max: 9 }), fc.boolean(), fc.integer(),
        (B, M, K, N, device, seed) =>
          scoped((s) => {
            const r = rng(seed);
            const a = values(B * M * K, r), b = values(B * K * N, r);
            assert.ok(matmulFits(cache, B, M, K, N));
            const got = s.read(gpuMatmul(cache, s.upload(a, device), s.upload(b, device), B, M, K, N), B * M * N, 'matmul');
            close(`matmul ${B}x${M}x${K}x${N}`, got, ref.matmul(view(a, [B, M, K]), view(b, [B, K, N])), sumTol(K));
          }),
      ),
      { numRuns: 8, includeErrorInReport: true },
    );
  });

  const convCase = convCases(3, { device: fc.boolean() });

  type ConvCase = typeof convCase extends fc.Arbitrary<infer T> ? T : never;

  /** Forward, backward-input and backward-weight of one conv case on cache c, against the reference. */
  function checkConv(c: KernelCache, cc: ConvCase, s: Scope): void {
    const r = rng(cc.seed);
    const p = convParams(cc);
    const C = cc.cg * cc.groups, O = cc.og * cc.groups;
    const xShape = [cc.n, C, cc.h, cc.w], wShape = [O, cc.cg, cc.kh, cc.kw];
    const { OH, OW } = convOut(cc.h, cc.w, cc.kh, cc.kw, p);
    const gyShape = [cc.n, O, OH, OW];
    const [x, w, gy] = [values(numel(xShape), r), values(numel(wShape), r), values(numel(gyShape), r)];
    const bias = cc.bias ? values(O, r) : null;
    const [xv, wv, gyv] = [view(x, xShape), view(w, wShape), view(gy, gyShape)];
    const what = `conv ${JSON.stringify(cc)}`;
    assert.ok(convFits(c, xShape, wShape, p), `${what} fits`);
    const [xd, wd, gyd] = [s.upload(x, cc.device), s.upload(w, cc.device), s.upload(gy, cc.device)];
    const bd = bias ? s.upload(bias, cc.device) : null;
    const y = s.read(gpuConv2d(c, xd, xShape, wd, wShape, bd, p), numel(gyShape), `${what} forward`);
    close(`${what} forward`, y, ref.conv2d(xv, wv, bias ? view(bias, [O]) : null, p), sumTol(cc.cg * cc.kh * cc.kw));
    const gx = s.read(gpuConv2dBackwardInput(c, gyd, wd, wShape, xShape, p), numel(xShape), `${what} grad input`);
    close(`${what} grad input`, gx, ref.conv2dBackwardInput(gyv, wv, xShape, p), sumTol(cc.og * cc.kh * cc.kw));
    const gw = s.read(gpuConv2dBackwardWeight(c, gyd, xd, xShape, wShape, p), numel(wShape), `${what} grad weight`);
    close(`${what} grad weight`, gw, ref.conv2dBackwardWeight(gyv, xv, wShape, p), sumTol(cc.n * OH * OW));
  }

  t('conv2d forward, backward-input, backward-weight, whole batch: groups, depthwise, stride, padding, dilation', () => {
    fc.assert(
      fc.property(convCase, (cc) => scoped((s) => checkConv(cache, cc, s))),
      { numRuns: 10, includeErrorInReport: true },
    );
  });

  t('3-D split layouts and the one-kernel weight gradient, with a texture side of 40', () => {
    const g = createGpu();
    if ('reason' in g) throw new Error(g.reason);
    const small = new KernelCache(g.gpu, g.mode, 40);
    try {
      scoped((s) => {
        const base = { groups: 1, depthwise: false, bias: true, device: true, dilation: [1, 1] as [number, number] };
        // 9x9 planes (81 > 40): only the 3-D layout fits; the weight partial [18, 4, 2] fits.
        checkConv(small, { ...base, n: 2, cg: 2, og: 4, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1], h: 9, w: 9, seed: 3 }, s);
        // 8 samples: the partial [27, 8, 8] (1728 > 40 * 40) does not fit, one kernel loops over n.
        checkConv(small, { ...base, n: 8, cg: 3, og: 8, kh: 3, kw: 3, stride: [1, 1], padding: [1, 1], h: 4, w: 4, seed: 4 }, s);
        // Batch norm and pooling on 9x9 planes.
        const r = rng(5);
        const shape = [2, 3, 9, 9];
        const x = values(numel(shape), r);
        const st = gpuBatchNormStats(small, s.upload(x), shape);
        const s0 = ref.batchNormStats(view(x, shape));
        close('split bn mean', s.read(st.mean, 3, 'mean'), s0.mean, 1e-5);
        const invstd = s0.variance.map((v) => 1 / Math.sqrt(v + 1e-5)) as Float32Array;
        const y = s.read(gpuBatchNormForward(small, s.upload(x), shape, s0.mean as Float32Array, invstd, null, null), x.length, 'bn');
        close('split bn forward', y, ref.batchNormForward(view(x, shape), s0.mean, invstd, null, null), 1e-4);
        const bg = gpuBatchNormBackward(small, s.upload(x), s.upload(x), shape, s0.mean as Float32Array, invstd, null, true);
        close('split bn grad x', s.read(bg.gx, x.length, 'gx'), ref.batchNormBackward(view(x, shape), view(x, shape), s0.mean, invstd, null, true).gx, 1e-4, 1e-3);
        const p: Pool2dParams = { kernelSize: [2, 2], stride: [1, 1], padding: [1, 0], dilation: [1, 1], ceilMode: false, countIncludePad: false };
        const mp = gpuMaxPool2d(small, s.upload(x), shape, p);
        const m0 = ref.maxPool2d(view(x, shape), p);
        close('split max pool', s.read(mp.out, m0.out.length, 'max'), m0.out, 0, 0);
        const gyShape = [2, 3, ...Object.values(poolOut(9, 9, p))];
        const gy = values(numel(gyShape), r);
        const gx = s.read(gpuMaxPool2dBackward(small, s.upload(gy), s.keep(mp.argmax, m0.out.length, 'argmax'), gyShape, shape, p), x.length, 'max gx');
        close('split max pool grad', gx, ref.maxPool2dBackward(view(gy, gyShape), m0.argmax, shape), 1e-6);
      }, small);
      // Random conv cases on small textures (split wherever a plane or a row count passes 40).
      fc.assert(
        fc.property(convCase, (cc) => scoped((s) => checkConv(small, cc, s), small)),
        { numRuns: 4, includeErrorInReport: true },
      );
      assert.equal(small.fallbacks, []);
    } finally {
      small.dispose();
    }
  });

  t('batch norm stats, forward, backward, whole batch (training and eval, with and without weight and bias)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 6 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.integer(),
        (N, C, H, W, training, withWeight, withBias, device, seed) =>
          scoped((s) => {
            fc.pre(N * H * W > 1);
            const r = rng(seed);
            const shape = [N, C, H, W];
            const x = values(numel(shape), r), gy = values(numel(shape), r);
            const [xv, gyv] = [view(x, shape), view(gy, shape)];
            const m = N * H * W;
            assert.ok(batchNormFits(cache, shape));
            const xd = s.upload(x, device);
            const st = gpuBatchNormStats(cache, xd, shape);
            const s0 = ref.batchNormStats(xv);
            close('bn mean', s.read(st.mean, C, 'mean'), s0.mean, sumTol(m) / m + 1e-6);
            close('bn variance', s.read(st.variance, C, 'variance'), s0.variance, sumTol(m) / m + 1e-6, 1e-3);
            const invstd = s0.variance.map((v) => 1 / Math.sqrt(v + 1e-5)) as Float32Array;
            const weight = withWeight ? values(C, r) : null;
            const bias = withBias ? values(C, r) : null;
            // The mean goes in as the stats kernel's own result (a texture in WebGL mode) on device cases.
            const meanIn = device ? s.keep(st.mean, C, 'mean') : (s0.mean as Float32Array);
            const want = ref.batchNormForward(xv, device ? s.read(st.mean, C, 'mean') : s0.mean, invstd, weight, bias);
            const [wd, bd] = [weight && s.upload(weight, device), bias && s.upload(bias, device)];
            const y = s.read(gpuBatchNormForward(cache, xd, shape, meanIn, s.upload(invstd, device), wd, bd), x.length, 'bn forward');
            close('bn forward', y, want, 1e-4, 1e-4);
            const g = gpuBatchNormBackward(cache, s.upload(gy, device), xd, shape, s0.mean as Float32Array, s.upload(invstd, device), wd, training);
            const g0 = ref.batchNormBackward(gyv, xv, s0.mean, invstd, weight, training);
            // gx scales with invstd, which is large for near-constant channels: compare relative to its size.
            const scale = Math.max(1, ...Array.from(invstd));
            close('bn grad x', s.read(g.gx, x.length, 'gx'), g0.gx, 1e-4 * scale * scale, 1e-3);
            close('bn grad weight', s.read(g.gweight, C, 'gweight'), g0.gweight, sumTol(m) * scale, 1e-3);
            close('bn grad bias', s.read(g.gbias, C, 'gbias'), g0.gbias, sumTol(m));
          }),
      ),
      { numRuns: 8, includeErrorInReport: true },
    );
  });

  t('batch norm backward in eval mode: a NaN in x leaves grad bias and grad x finite (as the reference and PyTorch)', () =>
    scoped((s) => {
      const shape = [2, 3, 4, 5], r = rng(7);
      const x = values(numel(shape), r), gy = values(numel(shape), r);
      x[0] = NaN; // channel 0
      const mean = new Float32Array([0.1, -0.2, 0.3]), invstd = new Float32Array([1.5, 0.5, 2]);
      const g = gpuBatchNormBackward(cache, s.upload(gy), s.upload(x), shape, mean, invstd, null, false);
      const g0 = ref.batchNormBackward(view(gy, shape), view(x, shape), mean, invstd, null, false);
      assert.ok(Array.from(g0.gbias).every(Number.isFinite), 'reference grad bias is finite');
      close('eval bn grad bias with NaN in x', s.read(g.gbias, 3, 'gbias'), g0.gbias, sumTol(40));
      close('eval bn grad x with NaN in x', s.read(g.gx, x.length, 'gx'), g0.gx, 1e-5, 1e-5);
      const gw = s.read(g.gweight, 3, 'gweight');
      assert.ok(Number.isNaN(gw[0]) && Number.isNaN(g0.gweight[0]), 'grad weight of the NaN channel is NaN in both');
    }));

  const poolCase = fc
    .record({
      n: fc.integer({ min: 1, max: 2 }),
      c: fc.integer({ min: 1, max: 3 }),
      h: fc.integer({ min: 1, max: 9 }),
      w: fc.integer({ min: 1, max: 9 }),
      kh: fc.integer({ min: 1, max: 3 }),
      kw: fc.integer({ min: 1, max: 3 }),
      stride: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
      pad: fc.tuple(fc.nat(1), fc.nat(1)),
      dilation: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
      ceilMode: fc.boolean(),
      countIncludePad: fc.boolean(),
      out: fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 })),
      nan: fc.boolean(),
      device: fc.boolean(),
      seed: fc.integer(),
    })
    .map((c) => ({
      ...c,
      // PyTorch's rule: padding at most half the kernel.
      p: {
        kernelSize: [c.kh, c.kw], stride: c.stride, dilation: c.dilation, ceilMode: c.ceilMode, countIncludePad: c.countIncludePad,
        padding: [Math.min(c.pad[0], c.kh >> 1), Math.min(c.pad[1], c.kw >> 1)],
      } as Pool2dParams,
    }))
    .filter((c) => {
      const { OH, OW } = poolOut(c.h, c.w, c.p);
      return OH >= 1 && OW >= 1;
    });

  type PoolCase = typeof poolCase extends fc.Arbitrary<infer T> ? T : never;

  /** Max (with argmax, fed back as a device result), average and adaptive pooling and their backwards. */
  function checkPools(cc: PoolCase, s: Scope): void {
    const r = rng(cc.seed);
    const xShape = [cc.n, cc.c, cc.h, cc.w];
    const x = values(numel(xShape), r);
    if (cc.nan) for (let i = 0; i < x.length; i += 5) x[i] = [NaN, -Infinity, 2, -2][(i / 5) % 4];
    const xv = view(x, xShape);
    const xd = s.upload(x, cc.device);
    const what = `pool ${JSON.stringify(cc)}`;
    const { OH, OW } = poolOut(cc.h, cc.w, cc.p);
    const gyShape = [cc.n, cc.c, OH, OW];
    const gy = values(numel(gyShape), r);
    const gyv = view(gy, gyShape);
    const gyd = s.upload(gy, cc.device);
    assert.ok(poolFits(cache, xShape, [OH, OW]), `${what} fits`);

    const mp = gpuMaxPool2d(cache, xd, xShape, cc.p);
    const m0 = ref.maxPool2d(xv, cc.p);
    close(`${what} max`, s.read(mp.out, m0.out.length, 'max'), m0.out, 0, 0);
    close(`${what} argmax`, s.read(mp.argmax, m0.out.length, 'argmax'), Float32Array.from(m0.argmax), 0, 0);
    const am = s.keep(mp.argmax, m0.out.length, 'argmax');
    const gx0 = ref.maxPool2dBackward(gyv, m0.argmax, xShape);
    close(`${what} max grad`, s.read(gpuMaxPool2dBackward(cache, gyd, am, gyShape, xShape, cc.p), x.length, 'max gx'), gx0, 1e-6, 1e-5);
    close(`${what} max grad (no params)`, s.read(gpuMaxPool2dBackward(cache, gyd, am, gyShape, xShape), x.length, 'max gx'), gx0, 1e-6, 1e-5);

    close(`${what} avg`, s.read(gpuAvgPool2d(cache, xd, xShape, cc.p), m0.out.length, 'avg'), ref.avgPool2d(xv, cc.p), 1e-6, 1e-5);
    close(`${what} avg grad`, s.read(gpuAvgPool2dBackward(cache, gyd, xShape, cc.p), x.length, 'avg gx'), ref.avgPool2dBackward(gyv, xShape, cc.p), 1e-6, 1e-5);

    const out = cc.out as [number, number];
    const agShape = [cc.n, cc.c, ...out];
    const ag = values(numel(agShape), r);
    assert.ok(poolFits(cache, xShape, out), `${what} adaptive fits`);
    close(`${what} adaptive`, s.read(gpuAdaptiveAvgPool2d(cache, xd, xShape, out), numel(agShape), 'adaptive'), ref.adaptiveAvgPool2d(xv, out), 1e-6, 1e-5);
    const agx = gpuAdaptiveAvgPool2dBackward(cache, s.upload(ag, cc.device), agShape, xShape);
    close(`${what} adaptive grad`, s.read(agx, x.length, 'adaptive gx'), ref.adaptiveAvgPool2dBackward(view(ag, agShape), xShape), 1e-6, 1e-5);
  }

  t('max (argmax), average and adaptive average pooling and their backwards: ceil mode, padding, dilation, NaN', () => {
    fc.assert(
      fc.property(poolCase, (cc) => scoped((s) => checkPools(cc, s))),
      { numRuns: 8, includeErrorInReport: true },
    );
  });

  t('max pooling of a window that holds only padding: -Infinity, argmax -1, no gradient', () =>
    scoped((s) => {
      // Taps at -1 and 2 of a 2-row input (kernel 2, padding 1, dilation 3): the window misses every row.
      const p: Pool2dParams = { kernelSize: [2, 1], stride: [1, 1], padding: [1, 0], dilation: [3, 1], ceilMode: false, countIncludePad: false };
      const xShape = [1, 2, 2, 3];
      const x = values(numel(xShape), rng(1));
      const m0 = ref.maxPool2d(view(x, xShape), p);
      assert.ok(Array.from(m0.argmax).every((a) => a === -1), 'the reference sees padding only');
      const mp = gpuMaxPool2d(cache, s.upload(x), xShape, p);
      const out = s.read(mp.out, m0.out.length, 'max');
      assert.ok(out.every((v) => v === -Infinity), `-Infinity, got ${Array.from(out)}`);
      close('argmax', s.read(mp.argmax, m0.out.length, 'argmax'), Float32Array.from(m0.argmax), 0, 0);
      const gyShape = [1, 2, ...Object.values(poolOut(2, 3, p))];
      const gy = values(numel(gyShape), rng(2));
      const gx = s.read(gpuMaxPool2dBackward(cache, s.upload(gy), s.keep(mp.argmax, m0.out.length, 'argmax'), gyShape, xShape, p), x.length, 'gx');
      assert.ok(gx.every((v) => v === 0), 'no gradient reaches the input');
    }));

  t('max pooling with NaN: out NaN, argmax the reference\'s (first NaN of the last window row holding one)', () =>
    scoped((s) => {
      const p: Pool2dParams = { kernelSize: [3, 3], stride: [1, 1], padding: [0, 0], dilation: [1, 1], ceilMode: false, countIncludePad: false };
      const xShape = [1, 2, 3, 3];
      const x = new Float32Array([NaN, NaN, 1, 2, 3, 4, 5, NaN, NaN, 1, 2, 3, 4, NaN, 6, 7, 8, 9]);
      const m0 = ref.maxPool2d(view(x, xShape), p);
      assert.equal(Array.from(m0.argmax), [7, 4], 'the reference');
      const mp = gpuMaxPool2d(cache, s.upload(x), xShape, p);
      close('NaN max', s.read(mp.out, 2, 'max'), m0.out, 0, 0);
      assert.equal(Array.from(s.read(mp.argmax, 2, 'argmax')), [7, 4]);
    }));

  t('a chain on device results only: conv -> batch norm (its own stats) -> conv -> conv (its own output) -> max pool, and back', () =>
    scoped((s) => {
      const r = rng(21);
      const N = 2, C = 3, O = 4, H = 7, W = 6;
      const p1: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
      const p2: Conv2dParams = { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 2 };
      const p3: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
      const pp: Pool2dParams = { kernelSize: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1], ceilMode: true, countIncludePad: false };
      const xShape = [N, C, H, W], w1Shape = [O, C, 3, 3], w2Shape = [O, O / 2, 3, 2], w3Shape = [O, O, 3, 3];
      const x = values(numel(xShape), r), w1 = values(numel(w1Shape), r), w2 = values(numel(w2Shape), r), w3 = values(numel(w3Shape), r);
      const b1 = values(O, r), bnw = values(O, r), bnb = values(O, r), b2 = values(O, r);
      const y1Shape = [N, O, H, W];
      const { OH: H2, OW: W2 } = convOut(H, W, 3, 2, p2);
      const y2Shape = [N, O, H2, W2];
      const { OH: HP, OW: WP } = poolOut(H2, W2, pp);
      const zShape = [N, O, HP, WP];
      const n1 = numel(y1Shape), n2 = numel(y2Shape);

      // Device chain: every operand after the first is a kernel result (a texture in WebGL mode).
      const y1 = s.keep(gpuConv2d(cache, x, xShape, w1, w1Shape, b1, p1), n1, 'conv 1');
      const st = gpuBatchNormStats(cache, y1, y1Shape);
      const mean = s.keep(st.mean, O, 'mean');
      const variance = s.keep(st.variance, O, 'variance');
      const ik = `test:invstd:${O}`;
      const kInv = cache.get(ik, () => 'function(v) {\n  return 1.0 / Math.sqrt(v[this.thread.x] + 0.00001);\n}', { output: [O], ...OWNED });
      const invstd = s.keep(cache.run(ik, kInv, variance), O, 'invstd');
      const a1 = s.keep(gpuBatchNormForward(cache, y1, y1Shape, mean, invstd, bnw, bnb), n1, 'bn');
      const y2 = s.keep(gpuConv2d(cache, a1, y1Shape, w2, w2Shape, b2, p2), n2, 'conv 2');
      // The same conv twice: the second call reads the first one's output, a texture of this very kernel.
      const y3 = s.keep(gpuConv2d(cache, y2, y2Shape, w3, w3Shape, null, p3), n2, 'conv 3');
      const y4 = s.keep(gpuConv2d(cache, y3, y2Shape, w3, w3Shape, null, p3), n2, 'conv 3 again');
      const mp = gpuMaxPool2d(cache, y4, y2Shape, pp);
      const z = s.read(mp.out, numel(zShape), 'pool');
      const gz = values(numel(zShape), r);
      const g4 = s.keep(gpuMaxPool2dBackward(cache, gz, s.keep(mp.argmax, numel(zShape), 'argmax'), zShape, y2Shape, pp), n2, 'pool grad');
      const g3 = s.keep(gpuConv2dBackwardInput(cache, g4, w3, w3Shape, y2Shape, p3), n2, 'conv 3 grad input');
      const gw3 = s.read(gpuConv2dBackwardWeight(cache, g4, y3, y2Shape, w3Shape, p3), numel(w3Shape), 'conv 3 grad weight');
      const g2 = s.keep(gpuConv2dBackwardInput(cache, g3, w3, w3Shape, y2Shape, p3), n2, 'conv 3 grad input again');
      const ga1 = s.keep(gpuConv2dBackwardInput(cache, g2, w2, w2Shape, y1Shape, p2), n1, 'conv 2 grad input');
      const bn = gpuBatchNormBackward(cache, ga1, y1, y1Shape, mean, invstd, bnw, true);
      const gy1 = s.keep(bn.gx, n1, 'bn grad x');
      const gw1 = s.read(gpuConv2dBackwardWeight(cache, gy1, x, xShape, w1Shape, p1), numel(w1Shape), 'conv 1 grad weight');
      const gx = s.read(gpuConv2dBackwardInput(cache, gy1, w1, w1Shape, xShape, p1), numel(xShape), 'conv 1 grad input');
      const gbnw = s.read(bn.gweight, O, 'bn grad weight');

      // The reference chain.
      const R = (d: Storage, shape: number[]) => view(d as Float32Array, shape);
      const ry1 = ref.conv2d(R(x, xShape), R(w1, w1Shape), R(b1, [O]), p1);
      const rs = ref.batchNormStats(R(ry1, y1Shape));
      const rinv = rs.variance.map((v) => 1 / Math.sqrt(v + 1e-5));
      const ra1 = ref.batchNormForward(R(ry1, y1Shape), rs.mean, rinv, bnw, bnb);
      const ry2 = ref.conv2d(R(ra1, y1Shape), R(w2, w2Shape), R(b2, [O]), p2);
      const ry3 = ref.conv2d(R(ry2, y2Shape), R(w3, w3Shape), null, p3);
      const ry4 = ref.conv2d(R(ry3, y2Shape), R(w3, w3Shape), null, p3);
      const rmp = ref.maxPool2d(R(ry4, y2Shape), pp);
      close('chain pool', z, rmp.out, 1e-3, 1e-3);
      // The backward goes through the reference's own argmax where both agree (a near-tie could pick another cell).
      const rg4 = ref.maxPool2dBackward(R(gz, zShape), rmp.argmax, y2Shape);
      const rg3 = ref.conv2dBackwardInput(R(rg4, y2Shape), R(w3, w3Shape), y2Shape, p3);
      const rgw3 = ref.conv2dBackwardWeight(R(rg4, y2Shape), R(ry3, y2Shape), w3Shape, p3);
      const rg2 = ref.conv2dBackwardInput(R(rg3, y2Shape), R(w3, w3Shape), y2Shape, p3);
      const rga1 = ref.conv2dBackwardInput(R(rg2, y2Shape), R(w2, w2Shape), y1Shape, p2);
      const rbn = ref.batchNormBackward(R(rga1, y1Shape), R(ry1, y1Shape), rs.mean, rinv, bnw, true);
      const rgw1 = ref.conv2dBackwardWeight(R(rbn.gx, y1Shape), R(x, xShape), w1Shape, p1);
      const rgx = ref.conv2dBackwardInput(R(rbn.gx, y1Shape), R(w1, w1Shape), xShape, p1);
      close('chain conv 3 grad weight', gw3, rgw3, 1e-3, 1e-3);
      close('chain bn grad weight', gbnw, rbn.gweight, 1e-3, 1e-3);
      close('chain conv 1 grad weight', gw1, rgw1, 1e-3, 1e-3);
      close('chain grad input', gx, rgx, 1e-3, 1e-3);
    }));

  t('two calls of one kernel on one shape give two results, both still correct (OWNED outputs are immutable)', () =>
    scoped((s) => {
      const r = rng(31);
      const xShape = [2, 2, 5, 4], wShape = [3, 2, 3, 3];
      const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
      const pp: Pool2dParams = { kernelSize: [2, 2], stride: [1, 2], padding: [1, 1], dilation: [1, 1], ceilMode: false, countIncludePad: true };
      const yShape = [2, 3, 5, 4];
      const { OH, OW } = poolOut(5, 4, pp);
      const zShape = [2, 2, OH, OW];
      const data = () => ({
        x: values(numel(xShape), r), w: values(numel(wShape), r), gy: values(numel(yShape), r), gz: values(numel(zShape), r),
        c: values(2, r).map((v) => v + 2),
      });
      const X = [data(), data()];
      type Pair = { name: string; run: (d: ReturnType<typeof data>) => KernelResult; want: (d: ReturnType<typeof data>) => Storage; n: number; tol: number };
      const xv = (d: ReturnType<typeof data>) => view(d.x, xShape);
      const maxPool = (d: ReturnType<typeof data>) => {
        const m = gpuMaxPool2d(cache, d.x, xShape, pp);
        s.hold(m.argmax);
        s.hold(m.out);
        return m;
      };
      const argmax = (d: ReturnType<typeof data>) => s.keep(maxPool(d).argmax, numel(zShape), 'argmax');
      const stats = (d: ReturnType<typeof data>) => {
        const st = gpuBatchNormStats(cache, d.x, xShape);
        s.hold(st.variance);
        return st.mean;
      };
      const bnGrad = (d: ReturnType<typeof data>) => {
        const g = gpuBatchNormBackward(cache, d.x, d.x, xShape, d.c, d.c, d.c, true);
        s.hold(g.gweight);
        s.hold(g.gbias);
        return g.gx;
      };
      const pairs: Pair[] = [
        { name: 'matmul', run: (d) => gpuMatmul(cache, d.x.subarray(0, 40), d.gy.subarray(0, 24), 2, 5, 4, 3), want: (d) => ref.matmul(view(d.x.subarray(0, 40), [2, 5, 4]), view(d.gy.subarray(0, 24), [2, 4, 3])), n: 30, tol: 1e-4 },
        { name: 'conv', run: (d) => gpuConv2d(cache, d.x, xShape, d.w, wShape, null, p), want: (d) => ref.conv2d(xv(d), view(d.w, wShape), null, p), n: numel(yShape), tol: 1e-4 },
        { name: 'conv grad input', run: (d) => gpuConv2dBackwardInput(cache, d.gy, d.w, wShape, xShape, p), want: (d) => ref.conv2dBackwardInput(view(d.gy, yShape), view(d.w, wShape), xShape, p), n: numel(xShape), tol: 1e-4 },
        { name: 'conv grad weight', run: (d) => gpuConv2dBackwardWeight(cache, d.gy, d.x, xShape, wShape, p), want: (d) => ref.conv2dBackwardWeight(view(d.gy, yShape), xv(d), wShape, p), n: numel(wShape), tol: 1e-4 },
        { name: 'bn mean', run: stats, want: (d) => ref.batchNormStats(xv(d)).mean, n: 2, tol: 1e-5 },
        { name: 'bn forward', run: (d) => gpuBatchNormForward(cache, d.x, xShape, d.c, d.c, d.c, d.c), want: (d) => ref.batchNormForward(xv(d), d.c, d.c, d.c, d.c), n: numel(xShape), tol: 1e-5 },
        { name: 'bn grad x', run: bnGrad, want: (d) => ref.batchNormBackward(xv(d), xv(d), d.c, d.c, d.c, true).gx, n: numel(xShape), tol: 1e-4 },
        { name: 'max pool', run: (d) => maxPool(d).out, want: (d) => ref.maxPool2d(xv(d), pp).out, n: numel(zShape), tol: 0 },
        { name: 'max pool grad', run: (d) => gpuMaxPool2dBackward(cache, d.gz, argmax(d), zShape, xShape, pp), want: (d) => ref.maxPool2dBackward(view(d.gz, zShape), ref.maxPool2d(xv(d), pp).argmax, xShape), n: numel(xShape), tol: 1e-6 },
        { name: 'avg pool', run: (d) => gpuAvgPool2d(cache, d.x, xShape, pp), want: (d) => ref.avgPool2d(xv(d), pp), n: numel(zShape), tol: 1e-6 },
        { name: 'avg pool grad', run: (d) => gpuAvgPool2dBackward(cache, d.gz, xShape, pp), want: (d) => ref.avgPool2dBackward(view(d.gz, zShape), xShape, pp), n: numel(xShape), tol: 1e-6 },
        { name: 'adaptive pool', run: (d) => gpuAdaptiveAvgPool2d(cache, d.x, xShape, [3, 3]), want: (d) => ref.adaptiveAvgPool2d(xv(d), [3, 3]), n: 36, tol: 1e-6 },
        { name: 'adaptive pool grad', run: (d) => gpuAdaptiveAvgPool2dBackward(cache, d.gz.subarray(0, 36), [2, 2, 3, 3], xShape), want: (d) => ref.adaptiveAvgPool2dBackward(view(d.gz.subarray(0, 36), [2, 2, 3, 3]), xShape), n: numel(xShape), tol: 1e-6 },
      ];
      for (const pr of pairs) {
        const first = pr.run(X[0]);
        const second = pr.run(X[1]);
        assert.ok(first !== second, `${pr.name}: two results`);
        if (gl) {
          assert.ok(isTexture(first) && isTexture(second), `${pr.name}: textures`);
          const tex = (v: KernelResult) => (v as unknown as { texture: unknown }).texture;
          assert.ok(tex(first) !== tex(second), `${pr.name}: two GL textures`);
        }
        // Read the first only after the second call: a reused output would now hold the second's values.
        close(`${pr.name} first`, s.read(first, pr.n, pr.name), pr.want(X[0]), pr.tol, 1e-4);
        close(`${pr.name} second`, s.read(second, pr.n, pr.name), pr.want(X[1]), pr.tol, 1e-4);
      }
    }));

  t('fits predicates refuse what the float32 index arithmetic or a texture cannot hold', () => {
    const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    assert.ok(convFits(cache, [2, 3, 8, 8], [4, 3, 3, 3], p));
    assert.not.ok(convFits(cache, [64, 64, 64, 64], [64, 64, 3, 3], p), 'x of 2^24 elements');
    assert.ok(matmulFits(cache, 2, 3, 4, 5));
    assert.not.ok(matmulFits(cache, 1, 4096, 4096, 4), 'a of 2^24 elements');
    assert.ok(batchNormFits(cache, [2, 3, 4, 5]));
    assert.not.ok(batchNormFits(cache, [1, 2 ** 20, 1, 1]), 'rows past the exact quotient range');
    assert.ok(poolFits(cache, [2, 3, 8, 8], [4, 4]));
    assert.not.ok(poolFits(cache, [1, 1, 2 ** 12, 2 ** 12], [2 ** 11, 2 ** 11]), 'x of 2^24 elements');
  });

  t('no kernel fell back to another gpu.js mode', () => {
    assert.equal(cache.fallbacks, []);
    cache.dispose();
  });
}

