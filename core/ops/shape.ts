// Shape ops. reshape (of contiguous data), permute, transpose, expand and slice are O(ndim) views over the same
// storage, built with ndarray's view methods; concat and pad copy through the backend's assign kernel. Backward
// rules undo the view: permute by the inverse permutation, expand by summing (sumTo), slice by padding back.

import ndarray from 'ndarray';
import { record } from '../autograd.js';
import { backend } from '../backend/index.js';
import type { View } from '../backend/types.js';
import { allocate, type DType, type Storage } from '../dtype.js';
import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { checkShape, contiguousStrides, normAxis, numel, sameShape } from '../shape.js';
import { Tensor, fromStorage, full } from '../tensor.js';

/** The ndarray view of a tensor (0-d tensors have no ndarray view methods to call; callers avoid that case). */
// ndarray only does the index arithmetic here (views never read elements), so a device array passes as its data.
const nd = (t: Tensor) => ndarray(t.data as Storage, t.shape as number[], t.strides as number[], t.offset);

const viewOf = (x: Tensor, v: { shape: number[]; stride: number[]; offset: number }): Tensor =>
  new Tensor(x.data, v.shape, v.stride, v.offset);

/** A raw (unrecorded) broadcast view of x with the given shape: stride 0 on stretched dims. */
export function expandView(op: string, x: Tensor, shape: readonly number[]): View {
  if (sameShape(x.shape, shape)) return x;
  const lead = shape.length - x.ndim;
  if (lead < 0) throw new ShapeError(`${op}: cannot expand shape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  const strides = shape.map((d, i) => {
    if (i < lead) return 0;
    const xd = x.shape[i - lead];
    if (xd === d) return x.strides[i - lead];
    if (xd === 1) return 0;
    throw new ShapeError(`${op}: cannot expand shape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  });
  return { data: x.data, shape, strides, offset: x.offset };
}

/** Sum a broadcast gradient back to shape (leading dims summed away, stretched dims summed with keepDim). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  return reshape(g.sum(axes, true), shape);
}

export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous) return x;
  return clone(x);
}

/** A contiguous copy with its own storage. d clone(x) = dx */
export function clone(x: Tensor): Tensor {
  return record('clone', fromStorage(backend().contiguous(x), x.shape), [x], (g) => [g]);
}

/** Convert the element type. d cast(x) = cast(dx) back to x's type */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const out = allocate(dtype, x.size);
  backend().assign({ data: out, shape: x.shape, strides: contiguousStrides(x.shape), offset: 0 }, x);
  return record('cast', fromStorage(out, x.shape), [x], (g) => [cast(g, x.dtype)]);
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const infer = s.indexOf(-1);
  if (infer !== s.lastIndexOf(-1)) throw new ShapeError(`reshape: only one dim can be -1, got ${fmtShape(shape)}`);
  if (infer >= 0) {
    const rest = numel(s.filter((_, i) => i !== infer));
    s[infer] = rest === 0 ? 0 : x.size / rest;
  }
  if (s.some((d) => !Number.isInteger(d) || d < 0) || numel(s) !== x.size) {
    throw new ShapeError(`reshape: cannot reshape a tensor of shape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)}`);
  }
  if (sameShape(s, x.shape)) return x;
  const src = x.isContiguous ? x : fromStorage(backend().contiguous(x), x.shape);
  const y = new Tensor(src.data, s, undefined, src.offset);
  // d reshape(x) = reshape(dx) back
  return record('reshape', y, [x], (g) => [reshape(g, x.shape)]);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const d = dims.map((a) => normAxis('permute', a, x.ndim));
  if (d.length !== x.ndim || new Set(d).size !== d.length) {
    throw new ArgumentError(`permute: [${dims.join(', ')}] is not a permutation of the ${x.ndim} dims of ${fmtShape(x.shape)}`);
  }
  if (x.ndim === 0) return x;
  const y = viewOf(x, nd(x).transpose(...d));
  const inverse = d.map((_, i) => d.indexOf(i));
  // d permute(x) = permute(dx) by the inverse permutation
  return record('permute', y, [x], (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const a = normAxis('transpose', dim0, x.ndim);
  const b = normAxis('transpose', dim1, x.ndim);
  const dims = x.shape.map((_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, dims);
}

/** Broadcast to a larger shape without copying; -1 keeps a dim. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.ndim;
  const s = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
  checkShape('expand', s);
  const v = expandView('expand', x, s);
  if (v === x) return x;
  const y = new Tensor(x.data, s, v.strides, x.offset);
  // d expand(x) = sum of dx over the stretched dims
  return record('expand', y, [x], (g) => [sumTo(g, x.shape)]);
}

/** Elements start, start + step, ... below end along one dim (negative indices count from the end). */
export function slice(x: Tensor, dim: number, start = 0, end = Infinity, step = 1): Tensor {
  const a = normAxis('slice', dim, x.ndim);
  if (!Number.isInteger(step) || step < 1) throw new ArgumentError(`slice: step must be a positive integer, got ${step}`);
  const n = x.shape[a];
  const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const lo = clampIdx(start);
  const hi = Math.max(clampIdx(end), lo);
  const len = Math.ceil((hi - lo) / step);
  const shape = x.shape.map((d, i) => (i === a ? len : d));
  const strides = x.strides.map((s, i) => (i === a ? s * step : s));
  const y = new Tensor(x.data, shape, strides, x.offset + (len > 0 ? lo * x.strides[a] : 0));
  // d slice(x) = dx scattered back into zeros at the sliced positions
  return record('slice', y, [x], (g) => [sliceBackward(g, x.shape, a, lo, step)]);
}

/** Zeros of shape with g written at positions lo, lo + step, ... along dim (differentiable through pad). */
function sliceBackward(g: Tensor, shape: readonly number[], dim: number, lo: number, step: number): Tensor {
  let spread = g;
  if (step > 1) {
    // Interleave step - 1 zeros after each element: [L, ...] -> [L, step, ...] -> [L * step, ...].
    const inner = g.unsqueeze(dim + 1);
    const padSpec = padSpecFor(inner.ndim, dim + 1, 0, step - 1);
    spread = reshape(pad(inner, padSpec), g.shape.map((d, i) => (i === dim ? d * step : d)));
  }
  const after = shape[dim] - lo - spread.shape[dim];
  if (after < 0) spread = slice(spread, dim, 0, shape[dim] - lo);
  return pad(spread, padSpecFor(g.ndim, dim, lo, Math.max(after, 0)));
}

/** A PyTorch-style pad list that pads only one dim. */
function padSpecFor(ndim: number, dim: number, before: number, after: number): number[] {
  const spec = new Array<number>(2 * (ndim - dim)).fill(0);
  spec[spec.length - 2] = before;
  spec[spec.length - 1] = after;
  return spec;
}

/** Join tensors along an existing dim (torch.cat). */
export function concat(xs: readonly Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new ArgumentError('concat: needs at least one tensor');
  const first = xs[0];
  const a = normAxis('concat', dim, first.ndim);
  for (const x of xs) {
    if (x.ndim !== first.ndim || x.shape.some((d, i) => i !== a && d !== first.shape[i]) || x.dtype !== first.dtype) {
      throw new ShapeError(
        `concat: along dim ${a} all tensors need the same dtype and the same size in other dims; got ${xs.map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(', ')}`,
      );
    }
  }
  const shape = first.shape.map((d, i) => (i === a ? xs.reduce((s, x) => s + x.shape[a], 0) : d));
  const out = full(shape, 0, { dtype: first.dtype });
  const starts: number[] = [];
  let at = 0;
  for (const x of xs) {
    starts.push(at);
    if (x.shape[a] > 0) backend().assign(viewOf(out, nd(out).lo(...shape.map((_, i) => (i === a ? at : 0))).hi(...x.shape)), x);
    at += x.shape[a];
  }
  // d concat(xs) = the matching slices of dx
  return record('concat', out, xs, (g, needs) => xs.map((x, i) => (needs[i] ? slice(g, a, starts[i], starts[i] + x.shape[a]) : null)));
}

/**
 * Constant padding, PyTorch's F.pad order: pads = [left, right] for the last dim, then [top, bottom] for the one
 * before, and so on. Pads must be >= 0.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length / 2 > x.ndim || pads.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new ArgumentError(
      `pad: pads must be an even-length list of non-negative integers covering at most ${x.ndim} dims, got [${pads.join(', ')}]`,
    );
  }
  const before = x.shape.map(() => 0);
  const after = x.shape.map(() => 0);
  for (let k = 0; k < pads.length / 2; k++) {
    before[x.ndim - 1 - k] = pads[2 * k];
    after[x.ndim - 1 - k] = pads[2 * k + 1];
  }
  if (before.every((b, i) => b === 0 && after[i] === 0)) return x;
  const shape = x.shape.map((d, i) => d + before[i] + after[i]);
  const out = full(shape, value, { dtype: x.dtype });
  if (x.size > 0) backend().assign(viewOf(out, nd(out).lo(...before).hi(...x.shape)), x);
  // d pad(x) = the interior of dx
  return record('pad', out, [x], (g) => {
    let gx = g;
    before.forEach((b, i) => {
      if (b > 0 || after[i] > 0) gx = slice(gx, i, b, b + x.shape[i]);
    });
    return [gx];
  });
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis('flatten', startDim, x.ndim);
  const e = normAxis('flatten', endDim, x.ndim);
  if (s > e) throw new ArgumentError(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  return reshape(x, [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

/** Remove one size-1 dim, or all of them. */
export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis('squeeze', dim, x.ndim);
  return x.shape[a] === 1 ? reshape(x, x.shape.filter((_, i) => i !== a)) : x;
}

/** Insert a size-1 dim at position dim (in the result's dims). */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const a = normAxis('unsqueeze', dim, x.ndim + 1);
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

export const shapeOps = {
  reshape, permute, transpose, expand, slice, concat, pad, flatten, squeeze, unsqueeze, contiguous, clone, cast,
};
