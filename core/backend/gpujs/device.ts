// The gpujs backend's device arrays and its host <-> device traffic. A GpuArray is a tensor's storage on gpu.js in
// WebGL mode: one texture holding the contiguous row-major values (any kernel output dims that flatten row-major to
// them), which kernels read flat (x[i]). Views over it (reshape, slices, transposes, broadcasts) pass kernels the same
// texture; operand() hands a kernel a texture as it is when the view covers it densely, and gathers other views into a
// fresh texture on the device (a gather kernel, no readback). In webasm and cpu modes gpu.js has no device memory and
// the backend keeps host arrays.
//
// Traffic counts what crosses the bus: uploads (a host array passed to a kernel, or Backend.upload) and readbacks
// (GpuArray.read: toArray, item, printing, saving, a kernel gpujs delegates to a host backend). Textures are freed when
// their GpuArray is collected (FinalizationRegistry) or, all at once, by the backend's dispose(); an array of a disposed
// backend says so when read instead of returning garbage.

import type { Storage } from '../../dtype.js';
import type { DeviceArray } from '../../dtype.js';
import { PtslabError } from '../../errors.js';
import { contiguousStrides, numel } from '../../shape.js';
import type { TransferStats, View } from '../types.js';
import { MAX_EXACT, MAX_QUOTIENT, OWNED, flatF32, isTexture, readFlat, type Flat, type KernelCache } from './kernels.js';
import type { GpuTexture, KernelResult } from './loader.js';

export class Traffic implements TransferStats {
  uploads = 0;
  uploadBytes = 0;
  readbacks = 0;
  readbackBytes = 0;
  upload(n: number): void {
    this.uploads++;
    this.uploadBytes += 4 * n;
  }
  readback(n: number): void {
    this.readbacks++;
    this.readbackBytes += 4 * n;
  }
  reset(): void {
    this.uploads = this.uploadBytes = this.readbacks = this.readbackBytes = 0;
  }
  snapshot(): TransferStats {
    return { uploads: this.uploads, uploadBytes: this.uploadBytes, readbacks: this.readbacks, readbackBytes: this.readbackBytes };
  }
}

const freeTexture = new FinalizationRegistry<GpuTexture>((t) => {
  try {
    t.delete();
  } catch {
    // its context is gone (disposed): nothing left to free
  }
});

/** A float32 array on the device: one texture owned by this array. */
export class GpuArray implements DeviceArray {
  readonly device = 'gpujs';
  readonly dtype = 'float32' as const;
  private tex: GpuTexture | null;
  constructor(
    tex: GpuTexture,
    readonly length: number,
    private readonly traffic: Traffic,
    /** The kernel cache whose GPU made the texture; a disposed backend has a new one. */
    readonly cache: KernelCache,
    private readonly live: () => KernelCache | null,
  ) {
    this.tex = tex;
    freeTexture.register(this, tex, this);
  }
  /** The texture, for kernels of the same GPU (throws when the backend was disposed since). */
  texture(): GpuTexture {
    if (!this.tex || this.live() !== this.cache) {
      throw new PtslabError(`gpujs: this tensor's device array (${this.length} floats) was freed by the backend's dispose(); read it before disposing, or recompute it`);
    }
    return this.tex;
  }
  /**
   * Take over other's texture as this array's values (an in-place write: assign, copy_), freeing the old one; other
   * must be a fresh array of the same length that nothing else holds.
   */
  adopt(other: GpuArray): void {
    if (other.length !== this.length) throw new PtslabError(`gpujs: cannot replace ${this.length} floats with ${other.length}`);
    const old = this.tex;
    this.tex = other.texture();
    other.tex = null;
    freeTexture.unregister(other);
    freeTexture.unregister(this);
    freeTexture.register(this, this.tex, this);
    old?.delete();
  }
  read(): Storage {
    const t = this.texture();
    this.traffic.readback(this.length);
    return readFlat(t, this.length).slice();
  }
}

/** A kernel result as tensor storage: a texture becomes a GpuArray (owned), anything else a host Float32Array. */
export function own(r: KernelResult, n: number, traffic: Traffic, cache: KernelCache, live: () => KernelCache | null): Float32Array | GpuArray {
  return isTexture(r) ? new GpuArray(r, n, traffic, cache, live) : readFlat(r, n);
}

/** True when the view reads its array's elements 0..n-1 in order (shape-1 dims ignored). */
const coversDensely = (v: View, n: number) => {
  const cs = contiguousStrides(v.shape);
  return v.offset === 0 && v.shape.every((d, i) => d === 1 || v.strides[i] === cs[i]) && v.data.length === n;
};

const MAX_GATHER_DIMS = 6;

// out[i] = x[offset + sum_d idx_d(i) * stride_d] for the row-major index idx(i) of shape; idx peeled from the last
// dim with floor((r + 0.5) / dim), exact while i < MAX_QUOTIENT (operand() checks).
const gatherSource = (nd: number) => `function(x) {
  let r = this.thread.x;
  let at = this.constants.OFF;
${Array.from({ length: nd }, (_, k) => {
  const d = nd - 1 - k;
  return `  const q${d} = Math.floor((r + 0.5) / this.constants.D${d});
  at += (r - q${d} * this.constants.D${d}) * this.constants.S${d};
  r = q${d};`;
}).join('\n')}
  return x[at];
}`;

/**
 * A float32 view as a kernel operand, without leaving the device when it lives there: the texture itself when the
 * view covers it densely, else a gathered copy (an owned texture the caller frees through the returned release);
 * a host view is passed as a flat host array (gpu.js uploads it: counted). null when the view is on the device but
 * cannot be gathered exactly (more than 6 dims, 2^20 elements or more); the caller then reads it back.
 */
export function operand(cache: KernelCache, v: View, traffic: Traffic): { arg: Flat; release(): void } | null {
  const n = numel(v.shape);
  const gatherable = v.shape.length <= MAX_GATHER_DIMS && n < MAX_QUOTIENT && n > 0;
  if (!(v.data instanceof GpuArray)) {
    const host = v as View & { data: Float32Array };
    // a broadcast or strided host view covering fewer elements than it shows (a scalar, a bias row): upload the
    // span it reads and expand it on the device
    let lo = v.offset, hi = v.offset;
    v.shape.forEach((d, i) => (v.strides[i] < 0 ? (lo += v.strides[i] * (d - 1)) : (hi += v.strides[i] * (d - 1))));
    if (!gatherable || hi - lo + 1 >= n || cache.mode !== 'headlessgl') {
      traffic.upload(n);
      return { arg: flatF32(host), release: () => undefined };
    }
    traffic.upload(hi - lo + 1);
    const span = cache.run(`copy:${hi - lo + 1}`, cache.get(`copy:${hi - lo + 1}`, () => COPY, { output: [hi - lo + 1], ...OWNED }), host.data.subarray(lo, hi + 1)) as GpuTexture;
    try {
      return gather(cache, span, v, v.offset - lo, n);
    } finally {
      span.delete();
    }
  }
  const tex = v.data.texture();
  if (coversDensely(v, n)) return { arg: tex, release: () => undefined };
  if (!gatherable || v.data.length >= MAX_EXACT) return null;
  return gather(cache, tex, v, v.offset, n);
}

/** A copy kernel's source: out[i] = a[i]. */
export const COPY = 'function(a) {\n  return a[this.thread.x];\n}';

/** The view's elements gathered from tex (its array, offset as given) into a fresh texture of n values. */
function gather(cache: KernelCache, tex: GpuTexture, v: View, offset: number, n: number): { arg: Flat; release(): void } {
  const nd = v.shape.length;
  const constants: Record<string, number> = { OFF: offset };
  v.shape.forEach((d, i) => {
    constants[`D${i}`] = d;
    constants[`S${i}`] = v.strides[i];
  });
  const key = `gather:${v.shape}:${v.strides}:${offset}`;
  const k = cache.get(key, () => gatherSource(nd), { output: [n], constants, ...OWNED });
  const out = cache.run(key, k, tex) as GpuTexture;
  return { arg: out, release: () => out.delete() };
}
