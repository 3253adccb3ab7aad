// Loads the compiled SIMD kernels (kernels.wasm, built from kernels.as) on one shared WasmMemory that the
// pool workers import too, and manages that memory as a per-call bump arena: a kernel call resets the arena, places
// its inputs, packed panels, scratch and outputs, runs, and copies its results out. Nothing in the arena outlives a
// call, so there is nothing to free; the memory grows to the largest call seen and stays (one place owns it).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { PtslabError, ShapeError } from '../../errors.js';
import { buildScriptPath, wasmOutputPath, wasmSourcePath } from './build-wasm.js';

export interface Kernels {
  gemm(ap: number, aps: number, bp: number, kc: number, mp: number, np: number, c: number, ldc: number, acc: number): void;
  packA(src: number, rs: number, cs: number, M: number, K: number, dst: number, kt: number, koff: number): void;
  packB(src: number, rs: number, cs: number, k0: number, kc: number, n0: number, nc: number, N: number, dst: number): void;
  packIm2col(
    x: number, H: number, W: number, KH: number, KW: number, sh: number, sw: number, ph: number, pw: number,
    dh: number, dw: number, OW: number, P: number, k0: number, kc: number, p0: number, nc: number, dst: number,
  ): void;
  packIm2colT(
    x: number, H: number, W: number, KH: number, KW: number, sh: number, sw: number, ph: number, pw: number,
    dh: number, dw: number, OW: number, Kc: number, p0: number, pc: number, n0: number, nc: number, dst: number,
  ): void;
  col2im(
    dcol: number, ldd: number, c0: number, c1: number, H: number, W: number, KH: number, KW: number, sh: number,
    sw: number, ph: number, pw: number, dh: number, dw: number, OH: number, OW: number, gx: number,
  ): void;
  dwPlane(
    x: number, H: number, W: number, w: number, KH: number, KW: number, sh: number, sw: number, ph: number, pw: number,
    dh: number, dw: number, OH: number, OW: number, out: number, bias: number, flip: number, scratch: number,
  ): void;
  dwPlaneBackInput(
    gy: number, OH: number, OW: number, w: number, KH: number, KW: number, sh: number, sw: number, ph: number,
    pw: number, dh: number, dw: number, H: number, W: number, gx: number, scratch: number,
  ): void;
  compactRows(src: number, srcStride: number, rows: number, len: number, dst: number): void;
  dwPlaneBackWeight(
    gy: number, OH: number, OW: number, x: number, H: number, W: number, KH: number, KW: number, sh: number,
    sw: number, ph: number, pw: number, dh: number, dw: number, gw: number, scratch: number,
  ): void;
  padPhases(
    x: number, C: number, H: number, W: number, sh: number, sw: number, na: number, nb: number, ph: number, pw: number,
    Hq: number, Wq: number, dst: number,
  ): void;
  convDirect(
    xs: number, off: number, K: number, a: number, p0: number, p1: number, O: number, OH: number, OW: number, Wq: number,
    out: number, tmp: number,
  ): void;
  transposePlanes(src: number, count: number, P: number, dst: number, width: number): void;
  convDirectBackWeight(
    gt: number, gImg: number, nb: number, o0: number, O: number, OH: number, OW: number, xs: number, xImg: number,
    Wq: number, off: number, k0: number, k1: number, N: number, gw: number, K: number,
  ): void;
  sumStrided(src: number, count: number, stride: number, i0: number, i1: number, dst: number): void;
  unaryF32(op: number, x: number, out: number, n: number): void;
  clampF32(x: number, out: number, n: number, lo: number, hi: number): void;
  binaryF32(op: number, a: number, as: number, b: number, bs: number, out: number, n: number): void;
  bnStats(x: number, N: number, C: number, HW: number, c: number, out: number): void;
  bnForward(x: number, N: number, C: number, HW: number, c: number, par: number, y: number): void;
  bnBackward(gy: number, x: number, N: number, C: number, HW: number, c: number, par: number, out: number, gx: number): void;
}

// Minimal typings of the WebAssembly JS API (this project's lib setting has no DOM/WebAssembly declarations).
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
export type WasmModule = object;
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (m: WasmModule, imports: object) => { exports: unknown };
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const PAGE = 65536;
const MAX_PAGES = 32768; // 2 GiB, as declared in build-wasm.ts
/** The first 64 KiB stay unused so that address 0 is never a valid buffer. */
const ARENA_START = PAGE;

export interface WasmRuntime {
  readonly module: WasmModule;
  readonly memory: WasmMemory;
  readonly k: Kernels;
}

let runtime: WasmRuntime | null = null;
let failure: string | null = null;

function loadBytes(): Buffer {
  const stale =
    !fs.existsSync(wasmOutputPath) ||
    (fs.existsSync(wasmSourcePath) && fs.statSync(wasmSourcePath).mtimeMs > fs.statSync(wasmOutputPath).mtimeMs);
  if (stale) execFileSync(process.execPath, [buildScriptPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  return fs.readFileSync(wasmOutputPath);
}

/** Instantiate the kernels on a memory (the main thread's, or a worker's import of the same memory). */
export function instantiate(module: WasmModule, memory: WasmMemory): Kernels {
  return new WA.Instance(module, { env: { memory } }).exports as unknown as Kernels;
}

/** Why the wasm kernels cannot run here, or null when they can. Loads (and if needed builds) them once. */
export function wasmUnavailable(): string | null {
  if (runtime || failure) return failure;
  try {
    const module = new WA.Module(loadBytes());
    const memory = new WA.Memory({ initial: 256, maximum: MAX_PAGES, shared: true });
    runtime = { module, memory, k: instantiate(module, memory) };
  } catch (e) {
    failure = `cpu backend: cannot load the wasm kernels (${wasmOutputPath}): ${(e as Error).message.split('\n')[0]}`;
  }
  return failure;
}

export function wasm(): WasmRuntime {
  const why = wasmUnavailable();
  if (why) throw new PtslabError(why);
  return runtime!;
}

let heapView: Float32Array | null = null;
/** A Float32Array over the whole shared memory (recreated after the memory grows). */
export function heap(): Float32Array {
  const buf = wasm().memory.buffer;
  if (!heapView || heapView.buffer !== buf) heapView = new Float32Array(buf);
  return heapView;
}

let heap64View: Float64Array | null = null;
/** A Float64Array over the whole shared memory (per-channel float64 parameters and sums). */
export function heap64(): Float64Array {
  const buf = wasm().memory.buffer;
  if (!heap64View || heap64View.buffer !== buf) heap64View = new Float64Array(buf);
  return heap64View;
}

/**
 * A fresh (non-shared) Float32Array holding n floats from byte address at. TypedArray.slice is a plain memcpy here,
 * while set() from shared memory into a fresh array is several times slower.
 */
export function takeOut(at: number, n: number): Float32Array {
  return heap().slice(at / 4, at / 4 + n);
}

/**
 * Gather `blocks` blocks of `rows` rows (row length len, row stride stride floats; blocks blockStride floats apart)
 * into one contiguous run at the first block's address, then take it out as a fresh array.
 */
export function takeRows(at: number, blocks: number, blockStride: number, rows: number, stride: number, len: number): Float32Array {
  if (stride !== len || (blocks > 1 && blockStride !== rows * len)) {
    const { k } = wasm();
    for (let b = 0; b < blocks; b++) k.compactRows(at + b * blockStride * 4, stride, rows, len, at + b * rows * len * 4);
  }
  return takeOut(at, blocks * rows * len);
}

/** Bump allocator over the shared memory; byte addresses, 64-byte aligned. */
export class Arena {
  private top = ARENA_START;
  /** label names the op and shapes for error messages. */
  constructor(private readonly label: string) {}
  /** Reserve bytes and return the byte address. */
  alloc(bytes: number): number {
    const p = this.top;
    this.top = p + Math.ceil(bytes / 64) * 64;
    return p;
  }
  /** Reserve floats and return the byte address. */
  floats(n: number): number {
    return this.alloc(n * 4);
  }
  /** Grow the memory so every reservation fits. Call once after the reservations, before touching them. */
  commit(): void {
    const mem = wasm().memory;
    const need = Math.ceil(this.top / PAGE);
    const have = mem.buffer.byteLength / PAGE;
    if (need > MAX_PAGES) {
      throw new ShapeError(`cpu backend: ${this.label} needs ${(this.top / 2 ** 30).toFixed(2)} GiB of wasm memory, more than the 2 GiB a wasm32 memory holds; use a smaller batch`);
    }
    if (need > have) mem.grow(Math.max(need - have, Math.min(have, MAX_PAGES - have)));
  }
}
