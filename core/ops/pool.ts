// Pooling: max, average and adaptive average over NCHW, PyTorch's argument names, output sizes and divisor rules.
// Each forward and backward is a named backend kernel.

import { record, willRecord } from '../autograd.js';
import { backend } from '../backend/index.js';
import { poolOut } from '../backend/reference.js';
import type { Pool2dParams } from '../backend/types.js';
import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { pair } from '../shape.js';
import { Tensor, fromStorage } from '../tensor.js';

export interface Pool2dOptions {
  kernelSize: number | readonly number[];
  /** Defaults to kernelSize. */
  stride?: number | readonly number[];
  padding?: number | readonly number[];
  dilation?: number | readonly number[];
  ceilMode?: boolean;
  /** avgPool2d: count padded zeros in the divisor (default true, as PyTorch). */
  countIncludePad?: boolean;
}

function poolParams(op: string, x: Tensor, o: Pool2dOptions): { p: Pool2dParams; OH: number; OW: number } {
  if (x.ndim !== 4) throw new ShapeError(`${op}: expected a 4-D NCHW input, got ${fmtShape(x.shape)}`);
  const kernelSize = pair(op, 'kernelSize', o.kernelSize, 1);
  const p: Pool2dParams = {
    kernelSize,
    stride: pair(op, 'stride', o.stride ?? kernelSize, 1),
    padding: pair(op, 'padding', o.padding ?? 0, 0),
    dilation: pair(op, 'dilation', o.dilation ?? 1, 1),
    ceilMode: o.ceilMode ?? false,
    countIncludePad: o.countIncludePad ?? true,
  };
  if (p.padding[0] * 2 > kernelSize[0] || p.padding[1] * 2 > kernelSize[1]) {
    throw new ArgumentError(`${op}: padding ${p.padding} must be at most half the kernel size ${kernelSize}`);
  }
  const { OH, OW } = poolOut(x.shape[2], x.shape[3], p);
  if (OH < 1 || OW < 1) throw new ShapeError(`${op}: output would be empty (${OH}x${OW}) for input ${fmtShape(x.shape)}, kernel ${kernelSize}`);
  return { p, OH, OW };
}

export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const { p, OH, OW } = poolParams('maxPool2d', x, opts);
  const b = backend();
  // no gradient to route: the backend's inference kernel, which computes no argmax, where it has one
  if (b.maxPool2dInference && !willRecord([x])) return fromStorage(b.maxPool2dInference(x, p), [x.shape[0], x.shape[1], OH, OW]);
  const { out, argmax } = b.maxPool2d(x, p);
  // d max = dy routed to the chosen element of each window
  return record('maxPool2d', fromStorage(out, [x.shape[0], x.shape[1], OH, OW]), [x], (g) => [
    fromStorage(backend().maxPool2dBackward(g, argmax, x.shape), x.shape),
  ]);
}

export function avgPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  if (opts.dilation !== undefined) throw new ArgumentError('avgPool2d: has no dilation argument (as in PyTorch)');
  const { p, OH, OW } = poolParams('avgPool2d', x, opts);
  // d mean = dy / divisor spread over each window
  return record('avgPool2d', fromStorage(backend().avgPool2d(x, p), [x.shape[0], x.shape[1], OH, OW]), [x], (g) => [
    fromStorage(backend().avgPool2dBackward(g, x.shape, p), x.shape),
  ]);
}

export function adaptiveAvgPool2d(x: Tensor, outputSize: number | readonly number[]): Tensor {
  if (x.ndim !== 4) throw new ShapeError(`adaptiveAvgPool2d: expected a 4-D NCHW input, got ${fmtShape(x.shape)}`);
  const [OH, OW] = pair('adaptiveAvgPool2d', 'outputSize', outputSize, 1);
  const y = fromStorage(backend().adaptiveAvgPool2d(x, [OH, OW]), [x.shape[0], x.shape[1], OH, OW]);
  // d mean over each cell = dy / cell size spread over the cell
  return record('adaptiveAvgPool2d', y, [x], (g) => [fromStorage(backend().adaptiveAvgPool2dBackward(g, x.shape), x.shape)]);
}

export const poolOps = { maxPool2d, avgPool2d, adaptiveAvgPool2d };
