// The gpu.js kernel cache and the data plumbing around it. Kernels are compiled once per (name, shape, params) key
// and kept in a Map; `dispose()` destroys every kernel, which frees its output textures (pipeline kernels run with
// immutable: false, so each reuses one output texture per call instead of allocating a new one), then the GPU
// instance and its WebGL context. Kernel sources are strings of JavaScript (gpu.js parses their text), which keeps
// TypeScript's `this` typing out of the way and lets each op's expression be baked into its own kernel.
//
// Index arithmetic inside kernels runs in float32 on WebGL, so two rules hold everywhere:
// - integer products and sums are exact below 2^24, hence the MAX_EXACT guard on every flat index range;
// - a quotient q = floor(i / d) is computed as floor((i + 0.5) / d): the true quotient is then at least 0.5 / d
//   away from an integer, which beats float32 division's error (GLSL allows 2.5 ulp) while i < 2^20.
// Kernels therefore divide only small indices (a spatial position, a channel row, a group); batch indices come from
// thread.z or from a loop on the host. gpu.js maps a 2-D output [w, h] onto a w x h texture, which fails past
// MAX_TEXTURE_SIZE, so kernels whose rows would be too long use 3-D outputs [W, H, rows] (fitsTexture decides).

import type { View } from '../types.js';
import { contiguousStrides, numel } from '../../shape.js';
import type { GpuInput, GpuInstance, GpuKernel, GpuKernelSettings, GpuTexture, KernelResult } from './loader.js';
import { gpujsModule, modeOf } from './loader.js';

/**
 * A kernel operand as the resident kernels take it: the contiguous row-major values of a tensor, either a host
 * Float32Array or a texture from this cache's GPU (any output dims whose row-major flattening is the tensor's). Kernels
 * read it flat, x[i], whatever dims produced it.
 */
export type Flat = Float32Array | GpuTexture;

/**
 * Settings for a kernel whose result a caller keeps (a tensor's storage): on WebGL a fresh texture per call
 * (pipeline, immutable), which the caller owns and deletes; on webasm/cpu gpu.js returns host arrays anyway.
 * Intermediates consumed inside one function keep the default (immutable: false, one reused texture per kernel).
 */
export const OWNED = { pipeline: true, immutable: true } as const;

/** Flat indices inside a kernel stay exact (float32 integers) below this. */
export const MAX_EXACT = 2 ** 24;
/** Largest dividend i for which floor((i + 0.5) / d) is exact in float32 (see file comment). */
export const MAX_QUOTIENT = 2 ** 20;

/** What the gpujs backend shows of its WebGL context (the DOM's WebGLRenderingContext, typed without the DOM lib). */
export interface GlContext {
  isContextLost(): boolean;
  getExtension(name: string): unknown;
  /** Wait until every queued GL command has run (a profile's sync). */
  finish(): void;
  readonly canvas: unknown;
}

export class KernelCache {
  private readonly kernels = new Map<string, GpuKernel>();
  /** How each kernel was made (to compile a sibling for other argument kinds), and the kinds it was first run with. */
  private readonly specs = new Map<GpuKernel, { key: string; source: () => string; settings: GpuKernelSettings }>();
  private readonly kinds = new Map<GpuKernel, string>();
  /** Kernels gpu.js silently moved to another mode (its console warning names the reason). */
  readonly fallbacks: string[] = [];
  /** Kernel runs, and how many of them left their output on the device as a texture (pipeline on WebGL). */
  readonly stats = { runs: 0, textureOutputs: 0 };

  /** Largest texture side: a 2-D output [w, h] needs w, h <= this; other outputs are packed near-square. */
  readonly maxTextureSize: number;

  /** maxTextureSize caps the device's own limit (tests use a small one to exercise the 3-D layouts). */
  constructor(
    private readonly gpu: GpuInstance,
    readonly mode: string,
    maxTextureSize = Infinity,
  ) {
    this.maxTextureSize = Math.min(maxTextureSize, gpu.Kernel.features?.maxTextureSize ?? Infinity);
  }

  /** The WebGL context the kernels share (gpu.js sets it once a kernel has been built), or null (webasm, cpu, none yet). */
  glContext(): GlContext | null {
    const c = (this.gpu as { context?: unknown }).context as GlContext | null | undefined;
    return c && typeof c.isContextLost === 'function' ? c : null;
  }

  /** Whether gpu.js can hold an output of these dims in one texture (gpu.js's own texture-size rule). */
  fitsTexture(dims: readonly number[]): boolean {
    const max = this.maxTextureSize;
    const [w, h = 1] = dims;
    // gpu.js: an output whose texels all lie in its first two dims is a w x h texture, anything else near-square.
    if (h > 1 && w * h === numel(dims)) return w <= max && h <= max;
    return numel(dims) <= max * max;
  }

  get size(): number {
    return this.kernels.size;
  }

  /** The kernel for key, compiled on first use from source with the given settings. */
  get(key: string, source: () => string, settings: GpuKernelSettings): GpuKernel {
    let k = this.kernels.get(key);
    if (!k) {
      k = this.compile(source(), settings);
      this.kernels.set(key, k);
      this.specs.set(k, { key, source, settings });
    }
    return k;
  }

  private compile(source: string, settings: GpuKernelSettings): GpuKernel {
    return this.gpu.createKernel(source, {
      precision: 'single',
      tactic: 'precision',
      loopMaxIterations: 1 << 24,
      immutable: false,
      // argument sizes compiled in as constants: the shader's index-to-texel divisions are then by constants, which
      // the driver's compiler turns into multiplies (twice as fast a conv on llvmpipe as sizes passed as uniforms,
      // which need integer divisions per fetch). gpu.js does not check a later argument's size against the compiled
      // one, so run() compiles a sibling per operand size (argKind).
      dynamicArguments: false,
      ...settings,
    });
  }

  /**
   * Run a cached kernel, recording (once per kernel) any run gpu.js moved to another mode. gpu.js specialises a kernel
   * to the kinds and sizes of its first arguments (a texture, a host array, an input(), a number) and refuses other
   * kinds (and would misread other sizes), so a call with other kinds or sizes (a tensor on the device where a host
   * array came first, a texture of another layout) runs a sibling compiled for them.
   */
  run(key: string, k: GpuKernel, ...args: Parameters<GpuKernel>): KernelResult {
    const kinds = args.map(argKind).join('');
    const spec = this.specs.get(k);
    if (spec) {
      const first = this.kinds.get(k);
      if (first === undefined) this.kinds.set(k, kinds);
      else if (first !== kinds) k = this.get(`${spec.key}|${kinds}`, spec.source, spec.settings);
      if (!this.kinds.has(k)) this.kinds.set(k, kinds);
    }
    const r = k(...args);
    this.stats.runs++;
    if (isTexture(r)) this.stats.textureOutputs++;
    const used = modeOf(k.kernel.constructor);
    if (used !== this.mode && !this.fallbacks.some((f) => f.startsWith(key))) {
      this.fallbacks.push(`${key}: ran in '${used}' instead of '${this.mode}'${k.kernel.fallbackReason ? ` (${k.kernel.fallbackReason})` : ''}`);
    }
    return r;
  }

  /** Destroy every kernel (and with it their textures) and the GPU instance. */
  dispose(): void {
    for (const k of this.kernels.values()) {
      try {
        k.destroy(true);
      } catch {
        // A kernel that never ran has nothing to free on some backends.
      }
    }
    this.kernels.clear();
    this.specs.clear();
    this.kinds.clear();
    void this.gpu.destroy().catch(() => undefined);
  }
}

/**
 * The kind of a kernel argument as a compiled kernel depends on it: texture (its class names its layout: 1-D, 2-D
 * and 3-D outputs make different classes), host array, input(), number, nested rows, each with its size (compiled
 * into the shader as a constant, see compile()). Numbers are uniforms.
 */
const argKind = (a: unknown): string => {
  if (typeof a === 'number') return 'n';
  if (ArrayBuffer.isView(a)) return `a${(a as Float32Array).length}`;
  if (Array.isArray(a)) return `r${a.length}x${Array.isArray(a[0]) || ArrayBuffer.isView(a[0]) ? (a[0] as ArrayLike<unknown>).length : 0}`;
  const t = a as { size?: readonly number[]; dimensions?: readonly number[] };
  return `${isTexture(a as KernelResult) ? (a as object).constructor.name : 'i'}${t.size ?? ''}:${t.dimensions ?? ''}`;
};

/**
 * Key fragment for a kernel whose source depends on which optional operands are present: 'x' or '-' per operand.
 * (How each operand is stored needs no key: KernelCache.run compiles a sibling per argument kind.)
 */
export const present = (...xs: readonly unknown[]): string => xs.map((x) => (x === null || x === undefined ? '-' : 'x')).join('');

/** A kernel result as an operand of the next kernel: the texture itself, else its n values as one flat array. */
export function asOperand(r: KernelResult, n: number): Flat {
  return isTexture(r) ? r : readFlat(r, n);
}

/**
 * Output dims for a row-major [rows, h, w] tensor: 'flat' 2-D [h*w, rows] (a thread splits its in-plane index q into
 * (y, x) with one small division; gpu.js also indexes 2-D outputs with less work) when the plane fits one texture
 * side and the exact-quotient range, else 'split' 3-D [w, h, rows] (packed near-square by gpu.js).
 */
export function planeGrid(cache: KernelCache, rows: number, h: number, w: number): number[] {
  return h * w < MAX_QUOTIENT && cache.fitsTexture([h * w, rows]) ? [h * w, rows] : [w, h, rows];
}

/** Kernel prelude for a planeGrid output: declares the thread's row and its (y, x) in a plane of width constant w. */
export function planeThread(grid: readonly number[], row: string, y: string, x: string, w: string): string {
  return grid.length === 2
    ? `const q = this.thread.x;
  const ${row} = this.thread.y;
  const ${y} = Math.floor((q + 0.5) / this.constants.${w});
  const ${x} = q - ${y} * this.constants.${w};`
    : `const ${x} = this.thread.x;
  const ${y} = this.thread.y;
  const ${row} = this.thread.z;`;
}


/** A flat, contiguous Float32Array of exactly n values from any kernel result (copies only when it must). */
export function readFlat(r: KernelResult, n: number, out?: Float32Array, at = 0): Float32Array {
  const v = isTexture(r) ? r.toArray() : r;
  if (v instanceof Float32Array) {
    if (!out) return v.length === n ? v : v.slice(0, n);
    out.set(v.length === n ? v : v.subarray(0, n), at);
    return out;
  }
  const dst = out ?? new Float32Array(n);
  copyNested(v, dst, out ? at : 0);
  return dst;
}

type Nested = Float32Array | Nested[];

/** Copy nested rows (2-D or 3-D kernel outputs) into dst from position p; returns the next position. */
function copyNested(v: Nested, dst: Float32Array, p: number): number {
  if (v instanceof Float32Array) {
    dst.set(v, p);
    return p + v.length;
  }
  for (const row of v) p = copyNested(row, dst, p);
  return p;
}

export function isTexture(r: KernelResult): r is Extract<KernelResult, { toArray(): unknown }> {
  return typeof (r as { toArray?: unknown }).toArray === 'function';
}

/** The view's values as a contiguous Float32Array, without copying when the view already is one. */
export function flatF32(v: View): Float32Array {
  const n = numel(v.shape);
  const data = v.data as Float32Array;
  const cs = contiguousStrides(v.shape);
  const contiguous = v.shape.every((d, i) => d === 1 || v.strides[i] === cs[i]);
  if (contiguous) return v.offset === 0 && data.length === n ? data : data.subarray(v.offset, v.offset + n);
  const out = new Float32Array(n);
  const nd = v.shape.length;
  const idx = new Array<number>(nd).fill(0);
  let off = v.offset;
  for (let flat = 0; flat < n; flat++) {
    out[flat] = data[off];
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      off += v.strides[d];
      if (idx[d] < v.shape[d]) break;
      off -= v.strides[d] * v.shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** True when a view is row-major contiguous with no broadcast (stride 0) dims of size > 1. */
export function isDense(v: View): boolean {
  const cs = contiguousStrides(v.shape);
  return v.shape.every((d, i) => d === 1 || v.strides[i] === cs[i]);
}

/** gpu.js's input(): a flat array seen as a 2-D or 3-D argument of dims [x, y(, z)] (a[y][x] or a[z][y][x]). */
export function asInput(data: Float32Array, dims: number[]): GpuInput {
  return gpujsModule()!.input(data, dims);
}
