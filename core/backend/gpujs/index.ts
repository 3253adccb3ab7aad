// The gpujs backend: the Backend interface served by gpu.js kernels (matmul, conv2d and both of its backward passes,
// batch norm, pooling, elementwise ops, where, clamp, reductions, contiguous copies and assignment); it has no sparse
// kernels (its delegate table says so). In WebGL mode its outputs are
// device arrays (GpuArray, device.ts): a texture per tensor, read back only when JS needs numbers, so a chain of
// served kernels never leaves the device. A served kernel still hands an input to the reference when gpu.js cannot
// take it (float64, shapes whose flat indices would not be exact in float32, host tensors too small to be worth a
// launch); device inputs are then read back, and `transfers()` counts every upload and readback.
//
// gpu.js is loaded lazily (loader.ts): `gpujsBackend()` returns null when it cannot load or start in the requested
// mode, and `gpujsUnavailableReason()` says why. The registry holds `gpujsEntry`, which loads gpu.js only when one of
// its kernels runs or its unavailableReason() is asked (the auto probe), so listing backends costs nothing.
// PTSLAB_GPUJS_MODE forces a mode (gpu, webgl, headlessgl, webasm, cpu); `gpujsMode()` is the mode gpu.js actually
// runs. `dispose()` frees every kernel and texture at once; the backend starts a fresh GPU instance on its next call.

import type { DeviceArray, Storage, TensorData } from '../../dtype.js';
import { PtslabError } from '../../errors.js';
import { contiguousStrides, numel } from '../../shape.js';
import { KERNEL_NAMES, composeBackend } from '../compose.js';
import { convOut, poolOut, referenceBackend as ref } from '../reference.js';
import type { Backend, BatchNormGrads, Pool2dParams, TransferStats, View } from '../types.js';
import { convFits, gpuConv2d, gpuConv2dBackwardInput, gpuConv2dBackwardWeight } from './conv.js';
import { COPY, GpuArray, Traffic, operand, own } from './device.js';
import { gpuBinary, gpuBinaryOps, gpuClamp, gpuReduce, gpuUnary, gpuWhere } from './elementwise.js';
import { gpuMatmul, matmulFits } from './gemm.js';
import { KernelCache, MAX_EXACT, MAX_QUOTIENT, OWNED, type Flat, type GlContext } from './kernels.js';
import { createGpu, type KernelResult } from './loader.js';
import { batchNormFits, gpuBatchNormBackward, gpuBatchNormForward, gpuBatchNormStats } from './norm.js';
import {
  gpuAdaptiveAvgPool2d, gpuAdaptiveAvgPool2dBackward, gpuAvgPool2d, gpuAvgPool2dBackward, gpuMaxPool2d, gpuMaxPool2dBackward, poolFits,
} from './pool.js';

export { GPUJS_MODES, gpujsLoadAttempted, requestedMode, type GpujsModeRequest } from './loader.js';
export { GpuArray } from './device.js';
export type { GlContext } from './kernels.js';

export interface GpujsOptions {
  /** Elementwise ops on fewer elements, all on the host, run on the reference backend (a launch costs more). Default 4096. */
  minElementwise?: number;
  /** Matmul, conv and batch norm with fewer multiply-adds, all inputs on the host, run on the reference. Default 4096. */
  minWork?: number;
  /**
   * Cap on the texture side kernels may assume, below the device's own (WebGL: MAX_TEXTURE_SIZE, 16384 on llvmpipe;
   * webasm/cpu: none). Tests set a small one to run the layouts meant for large images on small shapes.
   */
  maxTextureSize?: number;
}

export interface GpujsBackend extends Backend {
  /** The gpu.js mode in use: 'headlessgl' (WebGL), 'webasm' or 'cpu'. */
  readonly mode: string;
  /** Number of compiled kernels in the cache. */
  readonly kernelCount: number;
  /** Kernels gpu.js moved to another mode than `mode` (each with its reason); empty when all ran where asked. */
  readonly fallbacks: readonly string[];
  /** Kernel runs since the last dispose, and how many kept their output on the device (WebGL pipeline textures). */
  readonly stats: { readonly runs: number; readonly textureOutputs: number };
  /** Uploads and readbacks since the backend was made (or since resetTransfers()). */
  transfers(): TransferStats;
  resetTransfers(): void;
  /**
   * Destroy every compiled kernel, texture and the WebGL context. The backend stays usable (it recompiles); device
   * arrays made before are gone and say so when read.
   */
  dispose(): void;
  /**
   * The WebGL context its kernels share, once a kernel has run (null before, and in webasm/cpu mode). A browser may
   * lose it (a GPU reset, memory pressure, a tab in the background for long): isContextLost() is then true at once,
   * every device array is gone and readbacks give zeros, so a caller that must not get wrong numbers checks it.
   */
  glContext(): GlContext | null;
}

/** What gpujs leaves to other backends (the reference reads device inputs back: counted readbacks). */
const delegated = {
  conv2dAct: null, maxPool2dInference: null, sparseConv2d: null, sparseLinear: null,
} as const;

/** The value of a float32 host view that shows one element everywhere (a broadcast scalar), else null. */
const scalarOf = (v: View): number | null =>
  v.data instanceof Float32Array && v.shape.every((d, i) => d === 1 || v.strides[i] === 0) ? v.data[v.offset] : null;

const f32 = (v: View) => v.data instanceof Float32Array || v.data instanceof GpuArray;
const onDevice = (...vs: (View | null)[]) => vs.some((v) => v !== null && v.data instanceof GpuArray);
const vecView = (d: TensorData): View => ({ data: d, shape: [d.length], strides: [1], offset: 0 });

/**
 * A new gpujs backend with its own kernel cache, or the reason gpu.js cannot run here. Tests make their own with
 * thresholds at 0 so that every shape goes through a kernel.
 */
export function createGpujsBackend(opts: GpujsOptions = {}): GpujsBackend | { unavailable: string } {
  const first = createGpu();
  if ('reason' in first) return { unavailable: first.reason };
  const minElementwise = opts.minElementwise ?? 4096;
  const minWork = opts.minWork ?? 4096;
  let cache: KernelCache | null = new KernelCache(first.gpu, first.mode, opts.maxTextureSize);
  const fallbacks: string[] = [];
  const traffic = new Traffic();
  /** Each device argmax's pooling params (the Backend's maxPool2dBackward does not pass them). */
  const poolParams = new WeakMap<GpuArray, Pool2dParams>();
  const live = () => cache;
  const kernels = (): KernelCache => {
    if (!cache) {
      const g = createGpu();
      if ('reason' in g) throw new PtslabError(`gpujs backend: gpu.js could not restart after dispose: ${g.reason}`);
      cache = new KernelCache(g.gpu, g.mode, opts.maxTextureSize);
    }
    return cache;
  };

  /**
   * run(args) on the views' operands (device views stay on the device, gathered ones are freed after), with `own`
   * to keep a kernel result as tensor storage; null when some device view cannot be handed over as it is (the caller
   * then delegates, reading it back). With scalars, a host scalar broadcast to the shape (x * 2, where(m, 0, p)) is a
   * number argument, not an upload.
   */
  const withOperands = <A extends Flat | number, R>(
    views: (View | null)[], run: (args: (A | null)[], keep: (r: KernelResult, n: number) => Float32Array | GpuArray) => R, scalars = false,
  ): R | null => {
    const kc = kernels();
    const ops = views.map((v) => {
      if (!v) return { arg: null, release: () => undefined };
      const s = scalars ? scalarOf(v) : null;
      return s !== null ? { arg: s, release: () => undefined } : operand(kc, v, traffic);
    });
    try {
      if (ops.some((o) => o === null)) return null;
      return run(ops.map((o) => o!.arg as A | null), (r, n) => own(r, n, traffic, kc, live));
    } finally {
      for (const o of ops) o?.release();
    }
  };
  /** One kernel on the views' operands, its n-element result owned (see withOperands). */
  const launch = <A extends Flat | number = Flat>(
    views: (View | null)[], n: number, k: (args: (A | null)[]) => KernelResult, scalars = false,
  ): Float32Array | GpuArray | null => withOperands<A, Float32Array | GpuArray>(views, (args, keep) => keep(k(args), n), scalars);
  /** Host views below the size cut-off, float64 and shapes too large to index exactly go to the reference. */
  const worthIt = (views: (View | null)[], work: number, min: number) =>
    views.every((v) => v === null || f32(v)) && (onDevice(...views) || work >= min);
  const elementwise = (views: View[]) => {
    const n = numel(views[0].shape);
    return n > 0 && n < MAX_EXACT && worthIt(views, n, minElementwise);
  };
  /** A copy kernel: a host array onto the device, or a device array into a fresh texture. */
  const copy = (x: Flat, n: number): KernelResult => {
    const kc = kernels();
    const key = `copy:${n}`;
    return kc.run(key, kc.get(key, () => COPY, { output: [n], ...OWNED }), x);
  };

  const served = {
    contiguous(x: View): TensorData {
      const n = numel(x.shape);
      if (!(x.data instanceof GpuArray) || n === 0) return ref.contiguous(x);
      const kc = kernels();
      const o = operand(kc, x, traffic);
      if (!o) return ref.contiguous(x);
      // a gathered operand already is a fresh texture; a dense one is the array itself and must be copied
      return own(o.arg === x.data.texture() ? copy(o.arg, n) : o.arg, n, traffic, kc, live);
    },

    assign(dst: View, src: View): void {
      const d = dst.data;
      if (!(d instanceof GpuArray)) return ref.assign(dst, src);
      const n = numel(dst.shape);
      const dense = dst.offset === 0 && n === d.length && dst.strides.every((s, i) => dst.shape[i] === 1 || s === dst.strides.slice(i + 1).reduce((a, _, j) => a * dst.shape[i + 1 + j], 1));
      if (dense && f32(src)) {
        const r = launch([src], n, ([s]) => copy(s!, n));
        if (r instanceof GpuArray) return d.adopt(r);
      }
      // a part of the array (pad, concat): through the host, both ways (counted)
      const host = d.read() as Float32Array;
      ref.assign({ ...dst, data: host }, src);
      traffic.upload(d.length);
      d.adopt(own(copy(host, d.length), d.length, traffic, kernels(), live) as GpuArray);
    },

    unary(op: Parameters<Backend['unary']>[0], x: View): TensorData {
      const n = numel(x.shape);
      return (elementwise([x]) && launch([x], n, ([a]) => gpuUnary(kernels(), op, a!, n))) || ref.unary(op, x);
    },

    binary(op: Parameters<Backend['binary']>[0], a: View, b: View): TensorData {
      const n = numel(a.shape);
      if (op === 'pow' || !gpuBinaryOps.has(op) || !elementwise([a, b])) return ref.binary(op, a, b);
      return launch<Flat | number>([a, b], n, ([u, v]) => gpuBinary(kernels(), op as Exclude<typeof op, 'pow'>, u!, v!, n), true) || ref.binary(op, a, b);
    },

    where(cond: View, a: View, b: View): TensorData {
      const n = numel(a.shape);
      return (elementwise([cond, a, b]) && launch<Flat | number>([cond, a, b], n, ([c, u, v]) => gpuWhere(kernels(), c!, u!, v!, n), true)) || ref.where(cond, a, b);
    },

    clamp(x: View, lo: number, hi: number): TensorData {
      const n = numel(x.shape);
      const finite = Number.isFinite(lo) && Number.isFinite(hi);
      return (finite && elementwise([x]) && launch([x], n, ([a]) => gpuClamp(kernels(), a!, lo, hi, n))) || ref.clamp(x, lo, hi);
    },

    reduce(op: Parameters<Backend['reduce']>[0], x: View, axes: readonly number[]): TensorData {
      const n = numel(x.shape);
      const R = axes.reduce((a, i) => a * x.shape[i], 1);
      if (R === 0 || n === 0 || n >= MAX_EXACT || R >= MAX_QUOTIENT || n / R >= MAX_QUOTIENT || !worthIt([x], n, minElementwise)) return ref.reduce(op, x, axes);
      return launch([x], n / R, ([u]) => gpuReduce(kernels(), op, u!, x.shape, axes)) || ref.reduce(op, x, axes);
    },

    matmul(a: View, b: View): TensorData {
      const [B, M, K] = a.shape;
      const N = b.shape[2];
      if (!worthIt([a, b], B * M * K * N, minWork) || !matmulFits(kernels(), B, M, K, N)) return ref.matmul(a, b);
      return launch([a, b], B * M * N, ([u, v]) => gpuMatmul(kernels(), u!, v!, B, M, K, N)) || ref.matmul(a, b);
    },

    conv2d(x: View, w: View, bias: View | null, p: Parameters<Backend['conv2d']>[3]): TensorData {
      if (!worthIt([x, w, bias], convWork(x.shape, w.shape), minWork) || !convFits(kernels(), x.shape, w.shape, p)) return ref.conv2d(x, w, bias, p);
      const [N, , H, W] = x.shape;
      const { OH, OW } = convOut(H, W, w.shape[2], w.shape[3], p);
      const n = N * w.shape[0] * OH * OW;
      return launch([x, w, bias], n, ([u, v, c]) => gpuConv2d(kernels(), u!, x.shape, v!, w.shape, c, p)) || ref.conv2d(x, w, bias, p);
    },

    conv2dBackwardInput(gy: View, w: View, xShape: readonly number[], p: Parameters<Backend['conv2d']>[3]): TensorData {
      if (!worthIt([gy, w], convWork(xShape, w.shape), minWork) || !convFits(kernels(), xShape, w.shape, p)) return ref.conv2dBackwardInput(gy, w, xShape, p);
      return launch([gy, w], numel(xShape), ([g, v]) => gpuConv2dBackwardInput(kernels(), g!, v!, w.shape, xShape, p)) || ref.conv2dBackwardInput(gy, w, xShape, p);
    },

    conv2dBackwardWeight(gy: View, x: View, wShape: readonly number[], p: Parameters<Backend['conv2d']>[3]): TensorData {
      if (!worthIt([gy, x], convWork(x.shape, wShape), minWork) || !convFits(kernels(), x.shape, wShape, p)) return ref.conv2dBackwardWeight(gy, x, wShape, p);
      return launch([gy, x], numel(wShape), ([g, u]) => gpuConv2dBackwardWeight(kernels(), g!, u!, x.shape, wShape, p)) || ref.conv2dBackwardWeight(gy, x, wShape, p);
    },

    maxPool2d(x: View, p: Pool2dParams): { out: TensorData; argmax: Int32Array | DeviceArray } {
      const [N, C, H, W] = x.shape;
      const { OH, OW } = poolOut(H, W, p);
      if (!worthIt([x], numel(x.shape), minElementwise) || !poolFits(kernels(), x.shape, [OH, OW])) return ref.maxPool2d(x, p);
      const n = N * C * OH * OW;
      return withOperands<Flat, { out: TensorData; argmax: Int32Array | DeviceArray }>([x], ([u], keep) => {
        const r = gpuMaxPool2d(kernels(), u!, x.shape, p);
        const argmax = keep(r.argmax, n);
        if (argmax instanceof GpuArray) poolParams.set(argmax, p);
        return { out: keep(r.out, n), argmax: argmax instanceof GpuArray ? argmax : Int32Array.from(argmax) };
      }) ?? ref.maxPool2d(x, p);
    },

    maxPool2dBackward(gy: View, argmax: Int32Array | DeviceArray, xShape: readonly number[]): TensorData {
      const am = argmax instanceof Int32Array ? Float32Array.from(argmax) : argmax;
      const av: View = { data: am, shape: gy.shape, strides: contiguousStrides(gy.shape), offset: 0 };
      if (!worthIt([gy, av], numel(xShape), minElementwise) || !poolFits(kernels(), xShape, [gy.shape[2], gy.shape[3]])) {
        return ref.maxPool2dBackward(gy, argmax, xShape);
      }
      // the forward's params let each input cell visit only the windows that can hold it
      const p = am instanceof GpuArray ? poolParams.get(am) : undefined;
      return launch([gy, av], numel(xShape), ([g, a]) => gpuMaxPool2dBackward(kernels(), g!, a!, gy.shape, xShape, p)) ||
        ref.maxPool2dBackward(gy, argmax, xShape);
    },

    avgPool2d(x: View, p: Pool2dParams): TensorData {
      const [N, C, H, W] = x.shape;
      const { OH, OW } = poolOut(H, W, p);
      if (!worthIt([x], numel(x.shape), minElementwise) || !poolFits(kernels(), x.shape, [OH, OW])) return ref.avgPool2d(x, p);
      return launch([x], N * C * OH * OW, ([u]) => gpuAvgPool2d(kernels(), u!, x.shape, p)) || ref.avgPool2d(x, p);
    },

    avgPool2dBackward(gy: View, xShape: readonly number[], p: Pool2dParams): TensorData {
      if (!worthIt([gy], numel(xShape), minElementwise) || !poolFits(kernels(), xShape, [gy.shape[2], gy.shape[3]])) return ref.avgPool2dBackward(gy, xShape, p);
      return launch([gy], numel(xShape), ([g]) => gpuAvgPool2dBackward(kernels(), g!, xShape, p)) || ref.avgPool2dBackward(gy, xShape, p);
    },

    adaptiveAvgPool2d(x: View, outSize: readonly [number, number]): TensorData {
      const [N, C] = x.shape;
      if (!worthIt([x], numel(x.shape), minElementwise) || !poolFits(kernels(), x.shape, outSize)) return ref.adaptiveAvgPool2d(x, outSize);
      return launch([x], N * C * outSize[0] * outSize[1], ([u]) => gpuAdaptiveAvgPool2d(kernels(), u!, x.shape, outSize)) || ref.adaptiveAvgPool2d(x, outSize);
    },

    adaptiveAvgPool2dBackward(gy: View, xShape: readonly number[]): TensorData {
      if (!worthIt([gy], numel(xShape), minElementwise) || !poolFits(kernels(), xShape, [gy.shape[2], gy.shape[3]])) return ref.adaptiveAvgPool2dBackward(gy, xShape);
      return launch([gy], numel(xShape), ([g]) => gpuAdaptiveAvgPool2dBackward(kernels(), g!, gy.shape, xShape)) || ref.adaptiveAvgPool2dBackward(gy, xShape);
    },

    batchNormStats(x: View): { mean: TensorData; variance: TensorData } {
      const C = x.shape[1];
      if (!worthIt([x], numel(x.shape), minElementwise) || !batchNormFits(kernels(), x.shape)) return ref.batchNormStats(x);
      return withOperands<Flat, { mean: TensorData; variance: TensorData }>([x], ([u], keep) => {
        const r = gpuBatchNormStats(kernels(), u!, x.shape);
        return { mean: keep(r.mean, C), variance: keep(r.variance, C) };
      }) ?? ref.batchNormStats(x);
    },

    batchNormForward(x: View, mean: TensorData, invstd: TensorData, weight: TensorData | null, bias: TensorData | null): TensorData {
      const vs = [x, vecView(mean), vecView(invstd), weight && vecView(weight), bias && vecView(bias)];
      if (!worthIt(vs, numel(x.shape), minElementwise) || !batchNormFits(kernels(), x.shape)) return ref.batchNormForward(x, mean, invstd, weight, bias);
      return launch(vs, numel(x.shape), ([u, m, s, wt, bs]) => gpuBatchNormForward(kernels(), u!, x.shape, m!, s!, wt, bs)) ||
        ref.batchNormForward(x, mean, invstd, weight, bias);
    },

    batchNormBackward(gy: View, x: View, mean: TensorData, invstd: TensorData, weight: TensorData | null, training: boolean) {
      const C = x.shape[1];
      const vs = [gy, x, vecView(mean), vecView(invstd), weight && vecView(weight)];
      if (!worthIt(vs, numel(x.shape), minElementwise) || !batchNormFits(kernels(), x.shape)) return ref.batchNormBackward(gy, x, mean, invstd, weight, training);
      return withOperands<Flat, BatchNormGrads>(vs, ([g, u, m, sd, wt], keep) => {
        const r = gpuBatchNormBackward(kernels(), g!, u!, x.shape, m!, sd!, wt, training);
        return { gx: keep(r.gx, numel(x.shape)), gweight: keep(r.gweight, C), gbias: keep(r.gbias, C) };
      }) ?? ref.batchNormBackward(gy, x, mean, invstd, weight, training);
    },
  };

  const extra = {
    mode: first.mode,
    get kernelCount() {
      return cache?.size ?? 0;
    },
    get stats() {
      return { ...(cache?.stats ?? { runs: 0, textureOutputs: 0 }) };
    },
    get fallbacks() {
      return [...fallbacks, ...(cache?.fallbacks ?? [])];
    },
    transfers: () => traffic.snapshot(),
    resetTransfers: () => traffic.reset(),
    glContext: () => cache?.glContext() ?? null,
    /** A float32 host array onto the device (WebGL; elsewhere the array itself, gpu.js having no device memory). */
    upload(data: Storage): TensorData {
      if (!(data instanceof Float32Array) || data.length === 0 || data.length >= MAX_EXACT) return data;
      traffic.upload(data.length);
      return own(copy(data, data.length), data.length, traffic, kernels(), live);
    },
    dispose() {
      if (cache) {
        fallbacks.push(...cache.fallbacks);
        cache.dispose();
      }
      cache = null;
    },
  };

  return composeBackend(
    {
      name: 'gpujs',
      serve: served,
      delegate: delegated,
      // A gpujs backend exists only where gpu.js started (createGpujsBackend returns the reason otherwise).
      unavailableReason: () => null,
    },
    extra,
  ) as GpujsBackend;
}

/** Multiply-adds of a conv, ignoring stride (a cheap size estimate for the small-work cut-off). */
function convWork(xShape: readonly number[], wShape: readonly number[]): number {
  return numel(xShape) * wShape[0] * wShape[2] * wShape[3];
}

let shared: GpujsBackend | null = null;
let sharedReason: string | null = null;

/** The process-wide gpujs backend (created on first call), or null when gpu.js cannot run here. */
export function gpujsBackend(): GpujsBackend | null {
  if (!shared && !sharedReason) {
    const b = createGpujsBackend();
    if ('unavailable' in b) sharedReason = b.unavailable;
    else shared = b;
  }
  return shared;
}

/** Why gpujsBackend() is null; null when it is available. */
export function gpujsUnavailableReason(): string | null {
  gpujsBackend();
  return sharedReason;
}

/** The gpu.js mode the shared backend runs in ('headlessgl', 'webasm', 'cpu'), or null when unavailable. */
export function gpujsMode(): string | null {
  return gpujsBackend()?.mode ?? null;
}

/** The shared backend, or a PtslabError naming why gpu.js cannot run here. */
function sharedOrThrow(): GpujsBackend {
  const b = gpujsBackend();
  if (!b) throw new PtslabError(`gpujs backend is not available here: ${sharedReason}`);
  return b;
}

type Kernels = Record<string, (...args: unknown[]) => unknown>;

/**
 * The registry's 'gpujs' entry: the shared backend behind a front that loads gpu.js on first use. Its kernels forward
 * to gpujsBackend() (throwing PtslabError with the reason where gpu.js cannot run), unavailableReason() loads gpu.js
 * to answer, `mode` loads it too; kernelCount, stats, fallbacks and dispose() read the shared backend only if it
 * exists, so they never load gpu.js.
 */
export const gpujsEntry: GpujsBackend = Object.freeze({
  ...(Object.fromEntries(
    Object.entries(ref)
      .filter(([k, v]) => typeof v === 'function' && k !== 'unavailableReason')
      .map(([k]) => [k, (...args: unknown[]) => (sharedOrThrow() as unknown as Kernels)[k](...args)]),
  ) as unknown as Omit<Backend, 'name' | 'unavailableReason' | 'kernels'>),
  name: 'gpujs',
  unavailableReason: gpujsUnavailableReason,
  kernels: Object.freeze(Object.fromEntries(KERNEL_NAMES.map((n) => {
    const d = (delegated as Record<string, Backend | null>)[n];
    return [n, d === undefined ? 'gpujs' : d === null ? null : d.kernels[n]];
  }))) as Backend['kernels'],
  upload: (data: Storage) => sharedOrThrow().upload!(data),
  transfers: () => shared?.transfers() ?? new Traffic().snapshot(),
  resetTransfers: () => shared?.resetTransfers(),
  glContext: () => shared?.glContext() ?? null,
  get mode() {
    return sharedOrThrow().mode;
  },
  get kernelCount() {
    return shared?.kernelCount ?? 0;
  },
  get stats() {
    return shared?.stats ?? { runs: 0, textureOutputs: 0 };
  },
  get fallbacks() {
    return shared?.fallbacks ?? [];
  },
  dispose() {
    shared?.dispose();
  },
});
