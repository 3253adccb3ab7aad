// WebAssembly fast paths of the cpu backend's hottest elementwise ops on large float32 tensors: relu, neg, abs, clamp
// (relu6), the four arithmetic ops, the comparisons and where (relu's gradient), on contiguous operands or a scalar
// broadcast (every stride 0). The operands are copied into the shared arena (a memcpy, much cheaper than a JavaScript loop over the elements), one
// SIMD kernel of kernels/elementwise.as runs over them in place, and the result is copied out. These run on the main thread: the
// copies, which only it can make (the operands are not shared memory), take most of the time, and splitting the
// kernel across the pool measured no faster. Each returns null when it does not apply, and the caller runs its
// JavaScript loop (elementwise.ts); the values are the same bit for bit either way. Batch norm's wasm paths live in
// norm.ts and share the size threshold.

import type { BinaryOp, UnaryOp, HostView } from '../types.js';
import { isContiguous, isScalarView, numelOf } from './strided.js';
import { Arena, heap, takeOut, wasm, wasmUnavailable } from './wasm.js';

/**
 * Float32 elementwise and batch-norm calls from this many elements take the wasm paths (measured: even at 1,024
 * elements they are as fast as the JavaScript loops). Above the cap they stay in JavaScript, which needs no arena.
 */
const WASM_ELEMENTS = 1 << 10;
const WASM_MAX_ELEMENTS = 1 << 26;

/** n rounded up to a multiple of 4: the kernels have no scalar tail, and the arena pads reservations to 64 bytes. */
const ceil4 = (n: number) => (n + 3) & ~3;

/** Op codes of kernels/elementwise.as unaryF32 / binaryF32. */
const unaryCodes: Partial<Record<UnaryOp, number>> = { relu: 0, neg: 1, abs: 2 };
const binaryCodes: Partial<Record<BinaryOp, number>> = { add: 0, sub: 1, mul: 2, div: 3, gt: 4, ge: 5, lt: 6, le: 7, eq: 8 };

/** True when a float32 tensor of n elements should take a wasm path. */
export const wasmWorthIt = (data: unknown, n: number): boolean =>
  data instanceof Float32Array && n >= WASM_ELEMENTS && n <= WASM_MAX_ELEMENTS && wasmUnavailable() === null;

/**
 * Place an operand of n elements into the arena: a contiguous view as n floats (step 16 bytes), a scalar broadcast as
 * 4 copies of its value (step 0). Returns the reservation to fill after commit, or null for any other layout.
 */
function reserve(arena: Arena, v: HostView, n: number): { at: number; step: number; fill: (h: Float32Array) => void } | null {
  if (isScalarView(v)) {
    const at = arena.floats(4);
    return { at, step: 0, fill: (h) => h.fill(v.data[v.offset], at / 4, at / 4 + 4) };
  }
  if (!isContiguous(v)) return null;
  const at = arena.floats(n);
  return { at, step: 16, fill: (h) => h.set(v.data.subarray(v.offset, v.offset + n), at / 4) };
}

/** Copy contiguous x into the arena, run one in-place kernel over it, copy the result out (null: not applicable). */
function inPlace(label: string, x: HostView, kernel: (at: number, n4: number) => void): Float32Array | null {
  const n = numelOf(x.shape);
  if (!wasmWorthIt(x.data, n) || !isContiguous(x)) return null;
  const arena = new Arena(`${label} [${x.shape.join(', ')}]`);
  const xr = reserve(arena, x, n)!;
  arena.commit();
  xr.fill(heap());
  // in place: one array less to pass through the caches
  kernel(xr.at, ceil4(n));
  return takeOut(xr.at, n);
}

export function unaryWasm(op: UnaryOp, x: HostView): Float32Array | null {
  const code = unaryCodes[op];
  return code === undefined ? null : inPlace(`unary ${op}`, x, (at, n4) => wasm().k.unaryF32(code, at, at, n4));
}

/** clamp(x, lo, hi); a float64 bound rounds to float32 first, which gives the JavaScript loop's values exactly. */
export const clampWasm = (x: HostView, lo: number, hi: number): Float32Array | null =>
  inPlace('clamp', x, (at, n4) => wasm().k.clampF32(at, at, n4, lo, hi));

/** cond != 0 ? a : b on float32 operands, each contiguous or a scalar broadcast (null: not applicable). */
export function whereWasm(cond: HostView, a: HostView, b: HostView): Float32Array | null {
  const n = numelOf(a.shape);
  if (!wasmWorthIt(a.data, n) || !(b.data instanceof Float32Array) || !(cond.data instanceof Float32Array)) return null;
  const arena = new Arena(`where [${a.shape.join(', ')}]`);
  const cr = reserve(arena, cond, n), ar = reserve(arena, a, n), br = reserve(arena, b, n);
  if (!cr || !ar || !br) return null;
  // in place over an array operand, as binaryWasm
  const out = ar.step ? ar.at : br.step ? br.at : cr.step ? cr.at : arena.floats(n);
  arena.commit();
  const h = heap();
  cr.fill(h);
  ar.fill(h);
  br.fill(h);
  wasm().k.whereF32(cr.at, cr.step, ar.at, ar.step, br.at, br.step, out, ceil4(n));
  return takeOut(out, n);
}

export function binaryWasm(op: BinaryOp, a: HostView, b: HostView): Float32Array | null {
  const code = binaryCodes[op], n = numelOf(a.shape);
  if (code === undefined || !wasmWorthIt(a.data, n) || !(b.data instanceof Float32Array)) return null;
  const arena = new Arena(`binary ${op} [${a.shape.join(', ')}]`);
  const ar = reserve(arena, a, n), br = reserve(arena, b, n);
  if (!ar || !br) return null;
  // in place over an array operand (one array less to pass through the caches), or a fresh one when both are scalars
  const out = ar.step ? ar.at : br.step ? br.at : arena.floats(n);
  arena.commit();
  const h = heap();
  ar.fill(h);
  br.fill(h);
  wasm().k.binaryF32(code, ar.at, ar.step, br.at, br.step, out, ceil4(n));
  return takeOut(out, n);
}
