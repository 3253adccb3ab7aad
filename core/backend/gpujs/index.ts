// The gpujs backend: the Backend interface served by gpu.js kernels for the hot paths (matmul, conv2d and both of
// its backward passes, batch norm, dense elementwise ops) and by the reference backend for the rest (strided or
// broadcast elementwise, reductions over arbitrary axes, pooling with argmax, where/clamp, float64 inputs, shapes
// whose flat indices would not be exact in float32, and tensors too small to be worth a kernel launch).
//
// gpu.js is loaded lazily (loader.ts): `gpujsBackend()` returns null when it cannot load or start in the requested
// mode, and `gpujsUnavailableReason()` says why. The registry holds `gpujsEntry`, which loads gpu.js only when one of
// its kernels runs or its unavailableReason() is asked (the auto probe), so listing backends costs nothing.
// PTSLAB_GPUJS_MODE forces a mode (gpu, webgl, headlessgl, webasm, cpu); `gpujsMode()` is the mode gpu.js actually
// runs. `dispose()` frees every kernel and texture at once; the backend starts a fresh GPU instance on its next call.

import type { Storage } from '../../dtype.js';
import { PtslabError } from '../../errors.js';
import { numel } from '../../shape.js';
import { referenceBackend as ref } from '../reference.js';
import type { Backend, View } from '../types.js';
import { convFits, gpuConv2d, gpuConv2dBackwardInput, gpuConv2dBackwardWeight } from './conv.js';
import { gpuBinary, gpuBinaryOps, gpuUnary } from './elementwise.js';
import { gpuMatmul, matmulFits } from './gemm.js';
import { KernelCache, MAX_EXACT, flatF32, isDense } from './kernels.js';
import { createGpu } from './loader.js';
import { batchNormFits, gpuBatchNormBackward, gpuBatchNormForward, gpuBatchNormStats } from './norm.js';

export { GPUJS_MODES, gpujsLoadAttempted, requestedMode, type GpujsModeRequest } from './loader.js';

export interface GpujsOptions {
  /** Elementwise ops on fewer elements run on the reference backend (a kernel launch costs more). Default 4096. */
  minElementwise?: number;
  /** Matmul, conv and batch norm with fewer multiply-adds run on the reference backend. Default 4096. */
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
  /** Destroy every compiled kernel, texture and the WebGL context. The backend stays usable (it recompiles). */
  dispose(): void;
}

const isF32 = (...vs: View[]) => vs.every((v) => v.data instanceof Float32Array);
const f32 = (s: Storage | null) => s === null || s instanceof Float32Array;

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
  const kernels = (): KernelCache => {
    if (!cache) {
      const g = createGpu();
      if ('reason' in g) throw new PtslabError(`gpujs backend: gpu.js could not restart after dispose: ${g.reason}`);
      cache = new KernelCache(g.gpu, g.mode, opts.maxTextureSize);
    }
    return cache;
  };
  const elementwiseOnGpu = (...vs: View[]) => {
    const n = numel(vs[0].shape);
    return isF32(...vs) && n >= minElementwise && n < MAX_EXACT && vs.every((v) => isDense(v) && numel(v.shape) === n);
  };

  const b: GpujsBackend = {
    ...ref,
    name: 'gpujs',
    // A gpujs backend exists only where gpu.js started (createGpujsBackend returns the reason otherwise).
    unavailableReason: () => null,
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
    dispose() {
      if (cache) {
        fallbacks.push(...cache.fallbacks);
        cache.dispose();
      }
      cache = null;
    },

    unary(op, x) {
      return elementwiseOnGpu(x) ? gpuUnary(kernels(), op, flatF32(x)) : ref.unary(op, x);
    },

    binary(op, a, b2) {
      if (op !== 'pow' && gpuBinaryOps.has(op) && elementwiseOnGpu(a, b2)) {
        return gpuBinary(kernels(), op, flatF32(a), flatF32(b2));
      }
      return ref.binary(op, a, b2);
    },

    matmul(a, b2) {
      const [B, M, K] = a.shape;
      const work = B * M * K * b2.shape[2];
      if (!isF32(a, b2) || work < minWork || !matmulFits(kernels(), a, b2)) return ref.matmul(a, b2);
      return gpuMatmul(kernels(), a, b2);
    },

    conv2d(x, w, bias, p) {
      const onGpu = isF32(x, w) && (!bias || isF32(bias)) && convWork(x.shape, w.shape) >= minWork && convFits(kernels(), x.shape, w.shape, p);
      return onGpu ? gpuConv2d(kernels(), x, w, bias, p) : ref.conv2d(x, w, bias, p);
    },

    conv2dBackwardInput(gy, w, xShape, p) {
      const onGpu = isF32(gy, w) && convWork(xShape, w.shape) >= minWork && convFits(kernels(), xShape, w.shape, p);
      return onGpu ? gpuConv2dBackwardInput(kernels(), gy, w, xShape, p) : ref.conv2dBackwardInput(gy, w, xShape, p);
    },

    conv2dBackwardWeight(gy, x, wShape, p) {
      const onGpu = isF32(gy, x) && convWork(x.shape, wShape) >= minWork && convFits(kernels(), x.shape, wShape, p);
      return onGpu ? gpuConv2dBackwardWeight(kernels(), gy, x, wShape, p) : ref.conv2dBackwardWeight(gy, x, wShape, p);
    },

    batchNormStats(x) {
      const onGpu = isF32(x) && numel(x.shape) >= minElementwise && batchNormFits(kernels(), x.shape);
      return onGpu ? gpuBatchNormStats(kernels(), x) : ref.batchNormStats(x);
    },

    batchNormForward(x, mean, invstd, weight, bias) {
      const onGpu = isF32(x) && f32(weight) && numel(x.shape) >= minElementwise && batchNormFits(kernels(), x.shape);
      return onGpu ? gpuBatchNormForward(kernels(), x, mean, invstd, weight, bias) : ref.batchNormForward(x, mean, invstd, weight, bias);
    },

    batchNormBackward(gy, x, mean, invstd, weight, training) {
      const onGpu = isF32(gy, x) && numel(x.shape) >= minElementwise && batchNormFits(kernels(), x.shape);
      return onGpu
        ? gpuBatchNormBackward(kernels(), gy, x, mean, invstd, weight, training)
        : ref.batchNormBackward(gy, x, mean, invstd, weight, training);
    },
  };
  return b;
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
  ) as unknown as Omit<Backend, 'name' | 'unavailableReason'>),
  name: 'gpujs',
  unavailableReason: gpujsUnavailableReason,
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
