// Strided-view helpers of the cpu backend: contiguity tests, dim collapsing (merge dims that walk memory evenly for
// every operand, drop size-1 dims), and a row-major gather of any view into a flat array. Loops run over the
// innermost collapsed dim with plain index arithmetic, so a contiguous or scalar-broadcast operand costs one tight
// loop and a generic view costs one loop per row.

import type { Storage } from '../../dtype.js';
import type { HostView } from '../types.js';

export type Arr = Storage | Float32Array;

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** True when the view's elements are row-major from its offset with no gaps. */
export function isContiguous(v: HostView): boolean {
  let s = 1;
  for (let i = v.shape.length - 1; i >= 0; i--) {
    if (v.shape[i] !== 1 && v.strides[i] !== s) return false;
    s *= v.shape[i];
  }
  return true;
}

/** True when every element of the view is the same memory cell (all strides 0 or sizes 1). */
export function isScalarView(v: HostView): boolean {
  return v.shape.every((d, i) => d === 1 || v.strides[i] === 0);
}

/**
 * Collapse a shape shared by several views: drop size-1 dims, merge dim i into i+1 when every view has
 * stride[i] == stride[i+1] * shape[i+1]. Returns the collapsed shape and each view's strides (at least 1 dim).
 */
export function collapse(shape: readonly number[], views: readonly HostView[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = views.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && views.every((v, k) => outStrides[k][last] === v.strides[d] * shape[d])) {
      outShape[last] *= shape[d];
      views.forEach((v, k) => (outStrides[k][last] = v.strides[d]));
    } else {
      outShape.push(shape[d]);
      views.forEach((v, k) => outStrides[k].push(v.strides[d]));
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    views.forEach((_, k) => outStrides[k].push(0));
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * Call row(offsets, n) for every innermost row of a collapsed iteration, in row-major order; offsets[k] is the start
 * of view k's row (its data offset included), n the row length. The per-row strides are strides[k][last].
 */
export function forEachRow(
  shape: readonly number[], strides: readonly (readonly number[])[], offsets: readonly number[],
  row: (offs: number[], flat: number) => void,
): void {
  const nd = shape.length;
  const inner = shape[nd - 1];
  const rows = numelOf(shape) / inner;
  const idx = new Array<number>(nd).fill(0);
  const offs = [...offsets];
  for (let r = 0, flat = 0; r < rows; r++, flat += inner) {
    row(offs, flat);
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < offs.length; k++) offs[k] += strides[k][d];
      if (idx[d] < shape[d]) break;
      for (let k = 0; k < offs.length; k++) offs[k] -= strides[k][d] * shape[d];
      idx[d] = 0;
    }
  }
}

/** Write the view's elements in row-major order into dst starting at index at. */
export function gather(v: HostView, dst: Arr, at: number): void {
  const n = numelOf(v.shape);
  if (n === 0) return;
  if (isContiguous(v)) {
    dst.set(v.data.subarray(v.offset, v.offset + n), at);
    return;
  }
  const { shape, strides } = collapse(v.shape, [v]);
  const inner = shape[shape.length - 1];
  const s = strides[0][shape.length - 1];
  const src = v.data;
  forEachRow(shape, strides, [v.offset], (offs, flat) => {
    let o = offs[0];
    const base = at + flat;
    if (s === 1) dst.set(src.subarray(o, o + inner), base);
    else for (let i = 0; i < inner; i++, o += s) dst[base + i] = src[o];
  });
}
