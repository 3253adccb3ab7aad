// Reductions over axes (one, a list, or all), with keepDim. sum, max and min are primitives with their own kernels;
// mean and var are written in terms of them and need no backward of their own.

import { record } from '../autograd.js';
import { backend } from '../backend/index.js';
import type { ReduceOp } from '../backend/types.js';
import { ArgumentError, fmtShape } from '../errors.js';
import { normAxes, normAxis, numel } from '../shape.js';
import { Tensor, arange, fromStorage } from '../tensor.js';
import { div, eq, mul, sub, where } from './elementwise.js';
import { expand, reshape } from './shape.js';

type Axes = number | readonly number[] | undefined;

/** Reduce and return both the keepDim result and the requested shape. */
function reduceRaw(op: ReduceOp, x: Tensor, axes: number[], keepDim: boolean): { kept: Tensor; out: Tensor } {
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const kept = fromStorage(backend().reduce(op, x, axes), keptShape);
  const outShape = keepDim ? keptShape : x.shape.filter((_, i) => !axes.includes(i));
  return { kept, out: keepDim ? kept : kept.detach().reshape(outShape) };
}

/** Bring a reduced gradient back to x's shape: reinsert the reduced axes as 1, then broadcast. */
const unreduce = (g: Tensor, keptShape: readonly number[], shape: readonly number[]): Tensor =>
  expand(reshape(g, keptShape), shape);

export function sum(x: Tensor, axis?: Axes, keepDim = false): Tensor {
  const axes = normAxes('sum', axis, x.ndim);
  const { kept, out } = reduceRaw('sum', x, axes, keepDim);
  // d sum(x) = sum(dx): the gradient is copied to every reduced element
  return record('sum', out, [x], (g) => [unreduce(g, kept.shape, x.shape)]);
}

function extremum(op: 'max' | 'min', x: Tensor, axis: Axes, keepDim: boolean): Tensor {
  const axes = normAxes(op, axis, x.ndim);
  if (axes.some((a) => x.shape[a] === 0)) {
    throw new ArgumentError(`${op}: cannot reduce an empty axis of a tensor of shape ${fmtShape(x.shape)}`);
  }
  const { kept, out } = reduceRaw(op, x, axes, keepDim);
  // The gradient goes to the elements equal to the extremum, shared evenly among ties (PyTorch's amax rule).
  return record(op, out, [x], (g) => {
    const hit = eq(x, kept);
    const count = fromStorage(backend().reduce('sum', hit, axes), kept.shape);
    return [mul(unreduce(g, kept.shape, x.shape), div(hit, count))];
  });
}

export const max = (x: Tensor, axis?: Axes, keepDim = false): Tensor => extremum('max', x, axis, keepDim);
export const min = (x: Tensor, axis?: Axes, keepDim = false): Tensor => extremum('min', x, axis, keepDim);

/** Number of elements a reduction over these axes covers. */
const countOver = (x: Tensor, axis: Axes, op: string): number =>
  numel(normAxes(op, axis, x.ndim).map((a) => x.shape[a]));

export function mean(x: Tensor, axis?: Axes, keepDim = false): Tensor {
  return div(sum(x, axis, keepDim), countOver(x, axis, 'mean'));
}

/** Variance with Bessel's correction by default (correction = 1, unbiased), PyTorch's torch.var. */
export function variance(x: Tensor, axis?: Axes, keepDim = false, correction = 1): Tensor {
  const n = countOver(x, axis, 'var');
  const d = sub(x, mean(x, axis, true));
  return div(sum(mul(d, d), axis, keepDim), Math.max(n - correction, 0));
}

/** Index of the largest element along one axis (first one at ties); no gradient. */
export function argmax(x: Tensor, axis: number): Tensor {
  const a = normAxis('argmax', axis, x.ndim);
  const n = x.shape[a];
  if (n === 0) throw new ArgumentError(`argmax: axis ${axis} of shape ${fmtShape(x.shape)} is empty`);
  // Among positions equal to the max, take the smallest index: min over (hit ? index : n).
  const best = max(x.detach(), a, true);
  const idx = arange(n, undefined, 1, { dtype: x.dtype }).reshape(x.shape.map((d, i) => (i === a ? n : 1)));
  return min(where(eq(x.detach(), best), idx, n), a);
}

export const reduceOps = { sum, max, min, mean, var: variance };
