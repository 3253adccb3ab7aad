// Loads the compiled SIMD kernels (built from kernels/*.as by build-wasm.ts; the FMA build where it works) on one
// shared WasmMemory that the pool workers import too, with the same compiled module, so every thread runs the same
// kernels. Manages that memory as a per-call bump arena: a kernel call resets the arena, places its inputs, packed
// panels, scratch and outputs, runs, and copies its results out. Nothing in the arena outlives a call, so there is
// nothing to free; the memory grows to the largest call seen and stays (one place owns it).
//
// Or, where provideCpuWasm handed the bytes of a non-shared build over (a browser Web Worker without cross-origin
// isolation, see browser.ts): those kernels on a non-shared memory, one thread, and no Node API touched at all.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import v8 from 'node:v8';
import { PtslabError, ShapeError } from '../../errors.js';
import { buildScriptPath, kernelSourcePaths, NOSHARED_FILES, wasmBuilds } from './build-wasm.js';
import type { Kernels } from './kernels/exports.js';

export type { Kernels } from './kernels/exports.js';

// Minimal typings of the WebAssembly JS API (this project's lib setting has no DOM/WebAssembly declarations).
export interface WasmMemory {
  /** A SharedArrayBuffer on the Node path; an ArrayBuffer (detached and replaced on every grow) after provideCpuWasm. */
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  grow(pages: number): number;
}
export type WasmModule = object;
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
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
  /** Whether memory is shared (the Node path, which may start the pool); false after provideCpuWasm. */
  readonly shared: boolean;
}

let runtime: WasmRuntime | null = null;
let failure: string | null = null;
let info: { fma: boolean; file: string } | null = null;
/** The bytes provideCpuWasm handed over (the non-shared, single-thread path), or null (the Node path). */
let provided: { bytes: Uint8Array; fma: boolean; file: string } | null = null;

/** A one-function module: f(a, b, c) = lane 0 of f32x4.relaxed_madd(splat a, splat b, splat c). */
const MADD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7d, 0x7d, 0x7d, 0x01, 0x7d, // type: (f32, f32, f32) -> f32
  0x03, 0x02, 0x01, 0x00, // function 0 has that type
  0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, // export it as "f"
  0x0a, 0x16, 0x01, 0x14, 0x00,
  0x20, 0x00, 0xfd, 0x13, 0x20, 0x01, 0xfd, 0x13, 0x20, 0x02, 0xfd, 0x13, // three f32x4.splat
  0xfd, 0x85, 0x02, 0xfd, 0x1f, 0x00, 0x0b, // f32x4.relaxed_madd, f32x4.extract_lane 0, end
]);

/**
 * Why the relaxed-SIMD build (kernels-fma.wasm) is not used here, or null when it is: PTSLAB_FMA=0, an engine
 * without relaxed SIMD (Node 20 has it behind a V8 flag, set here before anything compiles), or a relaxed_madd that
 * the engine does not fuse (it may round twice; the builds would then differ for nothing, and we keep SIMD128).
 */
function fmaUnavailable(): string | null {
  const env = process.env.PTSLAB_FMA;
  if (env !== undefined && env !== '' && env !== '0' && env !== '1') {
    throw new PtslabError(`cpu backend: PTSLAB_FMA must be 0 (use the SIMD128 kernels) or 1 (use the FMA kernels where they work, the default), got '${env}'`);
  }
  if (env === '0') return 'PTSLAB_FMA=0';
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // an engine without the flag: validate says whether relaxed SIMD is there anyway
  }
  return maddUnfused();
}

/**
 * Why relaxed_madd cannot stand for a fused multiply-add on this engine, or null when it can: the MADD probe, with no
 * engine flag set and no environment read (what a browser calls, see fmaBuildWorks).
 */
function maddUnfused(): string | null {
  if (!WA.validate(MADD_PROBE)) return 'this engine has no WebAssembly relaxed SIMD';
  const f = (new WA.Instance(new WA.Module(MADD_PROBE), {}).exports as { f: (a: number, b: number, c: number) => number }).f;
  // (1 + 2^-23) (1 - 2^-23) - 1 is -2^-46 with one rounding, and 0 when the product is rounded first
  if (f(1 + 2 ** -23, 1 - 2 ** -23, -1) !== -(2 ** -46)) return 'relaxed_madd is not fused on this machine';
  return null;
}

/** The binary at file, rebuilt first (every build, in a child process) when it is missing or older than a source. */
function loadBytes(file: string): Buffer {
  const built = fs.existsSync(file) ? fs.statSync(file).mtimeMs : -1;
  if (built < 0 || kernelSourcePaths().some((s) => fs.statSync(s).mtimeMs > built)) {
    execFileSync(process.execPath, [buildScriptPath, '--wasm-only'], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  return fs.readFileSync(file);
}

/** Instantiate the kernels on a memory (the main thread's, or a worker's import of the same memory). */
export function instantiate(module: WasmModule, memory: WasmMemory): Kernels {
  return new WA.Instance(module, { env: { memory } }).exports as unknown as Kernels;
}

/**
 * Whether the relaxed-SIMD (FMA) non-shared build would run here: the engine validates relaxed SIMD and fuses
 * relaxed_madd (the probe the Node path runs). Touches no Node API; a browser asks this to pick the file to fetch.
 */
export function fmaBuildWorks(): boolean {
  return maddUnfused() === null;
}

/**
 * Hand the cpu backend the bytes of a non-shared kernel build (NOSHARED_FILES, fetched by a browser Web Worker) before
 * its first use: wasmUnavailable() then instantiates them on a non-shared WebAssembly.Memory and the backend runs on
 * one thread (threadCount() is 1, the pool never starts), with no node:fs, node:child_process, node:v8, node:os or
 * Buffer call. opts.fma says the bytes are the relaxed-SIMD build (NOSHARED_FILES.fma), refused where
 * fmaBuildWorks() is false; opts.file names them in cpuKernelInfo() and errors. Once per process (or worker): throws
 * after the kernels are loaded. The Node path (no call) is unchanged.
 */
export function provideCpuWasm(bytes: Uint8Array, opts: { fma?: boolean; file?: string } = {}): void {
  const fma = opts.fma ?? false;
  const file = opts.file ?? (fma ? NOSHARED_FILES.fma : NOSHARED_FILES.simd);
  if (runtime) throw new PtslabError(`cpu backend: provideCpuWasm(${file}) after the kernels were loaded (${info!.file}): call it before the backend's first use`);
  provided = { bytes, fma, file };
  failure = null;
}

/** Whether provideCpuWasm was called: the single-thread, non-shared path (threads.ts asks, touching no Node API). */
export const wasmProvided = (): boolean => provided !== null;

/** wasmUnavailable on the provideCpuWasm path: the bytes handed over, a non-shared memory, no Node API. */
function loadProvided(p: { bytes: Uint8Array; fma: boolean; file: string }): string | null {
  const unfused = p.fma ? maddUnfused() : null;
  if (unfused) return (failure = `cpu backend: ${p.file} is the relaxed-SIMD build, but ${unfused}: provide ${NOSHARED_FILES.simd} instead`);
  try {
    const module = new WA.Module(p.bytes);
    const memory = new WA.Memory({ initial: 256, maximum: MAX_PAGES, shared: false });
    runtime = { module, memory, k: instantiate(module, memory), shared: false };
    info = { fma: p.fma, file: p.file };
  } catch (e) {
    failure = `cpu backend: cannot load the wasm kernels (${p.file}): ${(e as Error).message.split('\n')[0]}`;
  }
  return failure;
}

/** Why the wasm kernels cannot run here, or null when they can. Loads (and if needed builds) them once. */
export function wasmUnavailable(): string | null {
  if (runtime || failure) return failure;
  if (provided) return loadProvided(provided);
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!proc?.versions?.node) {
    return (failure = `cpu backend: outside Node the wasm kernels must be handed over first: fetch ${NOSHARED_FILES.simd} (or ${NOSHARED_FILES.fma} where fmaBuildWorks()) and call provideCpuWasm (core/backend/cpu/browser.ts)`);
  }
  let fma: boolean;
  try {
    fma = fmaUnavailable() === null;
  } catch (e) {
    return (failure = (e as Error).message);
  }
  const file = fma ? wasmBuilds.fma.file : wasmBuilds.simd.file;
  try {
    const module = new WA.Module(loadBytes(file));
    const memory = new WA.Memory({ initial: 256, maximum: MAX_PAGES, shared: true });
    runtime = { module, memory, k: instantiate(module, memory), shared: true };
    info = { fma, file };
  } catch (e) {
    failure = `cpu backend: cannot load the wasm kernels (${file}): ${(e as Error).message.split('\n')[0]}`;
  }
  return failure;
}

/**
 * Which kernel build runs: the relaxed-SIMD one (fma: true, kernels-fma.wasm) or SIMD128 (kernels.wasm); after
 * provideCpuWasm, the file it named (kernels-fma-noshared.wasm or kernels-noshared.wasm). Loads the kernels if they
 * are not loaded yet; throws when they cannot load.
 */
export function cpuKernelInfo(): { fma: boolean; file: string } {
  wasm();
  return { ...info! };
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

let heapBytes: Buffer | null = null;
/** A Buffer over the whole shared memory (recreated after the memory grows), the source of takeOut's copies. */
function heapBuffer(): Buffer {
  const buf = wasm().memory.buffer as SharedArrayBuffer;
  if (!heapBytes || heapBytes.buffer !== buf) heapBytes = Buffer.from(buf);
  return heapBytes;
}

/** From this many bytes (16 MiB) takeBuffer uses TypedArray.slice; see there. */
const SLICE_BYTES = 1 << 24;

/**
 * A fresh (non-shared) ArrayBuffer holding the bytes [at, at + bytes) of the shared memory. Most of a copy-out's time
 * is the fresh memory (page faults), not the copy. Below 16 MiB an uninitialised Buffer.allocUnsafeSlow (its own
 * ArrayBuffer of exactly these bytes, never pooled) filled by one Buffer copy beats TypedArray.slice, which zeroes its
 * array first and copies from shared memory slowly at these sizes (measured 1.3x to 6x faster, 3 MB to 64 KB);
 * above, where every array is freshly mapped memory anyway, the two measured the same and slice stays. A non-shared
 * memory (provideCpuWasm; no Buffer outside Node) copies with ArrayBuffer.slice, one copy into a fresh buffer.
 */
function takeBuffer(at: number, bytes: number): ArrayBuffer {
  const rt = wasm();
  if (!rt.shared) return (rt.memory.buffer as ArrayBuffer).slice(at, at + bytes);
  if (bytes >= SLICE_BYTES) return heap().slice(at / 4, at / 4 + bytes / 4).buffer as ArrayBuffer;
  const b = Buffer.allocUnsafeSlow(bytes);
  heapBuffer().copy(b, 0, at, at + bytes);
  return b.buffer as ArrayBuffer;
}

/** A fresh (non-shared) Float32Array holding n floats from byte address at. */
export function takeOut(at: number, n: number): Float32Array {
  return new Float32Array(takeBuffer(at, n * 4));
}

/** A fresh Int32Array holding n int32s from byte address at. */
export const takeOutInt32 = (at: number, n: number): Int32Array => new Int32Array(takeBuffer(at, n * 4));

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
