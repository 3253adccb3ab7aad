// 2-D convolution (PyTorch's conv2d: NCHW input, weight [out, in / groups, kh, kw], stride, padding, dilation,
// groups; depthwise is groups = in = out). Forward and both backward passes are named backend kernels.

import { record } from '../autograd.js';
import { backend } from '../backend/index.js';
import { convOut } from '../backend/reference.js';
import type { Conv2dParams } from '../backend/types.js';
import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { pair } from '../shape.js';
import { Tensor, fromStorage } from '../tensor.js';

export interface Conv2dOptions {
  stride?: number | readonly number[];
  padding?: number | readonly number[];
  dilation?: number | readonly number[];
  groups?: number;
}

export function conv2dParams(opts: Conv2dOptions): Conv2dParams {
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new ArgumentError(`conv2d: groups must be a positive integer, got ${groups}`);
  return {
    stride: pair('conv2d', 'stride', opts.stride ?? 1, 1),
    padding: pair('conv2d', 'padding', opts.padding ?? 0, 0),
    dilation: pair('conv2d', 'dilation', opts.dilation ?? 1, 1),
    groups,
  };
}

export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const p = conv2dParams(opts);
  const shapes = () => `input ${fmtShape(x.shape)}, weight ${fmtShape(w.shape)}${bias ? `, bias ${fmtShape(bias.shape)}` : ''}`;
  if (x.ndim !== 4 || w.ndim !== 4) throw new ShapeError(`conv2d: expected 4-D input and weight, got ${shapes()}`);
  const [, C, H, W] = x.shape;
  const [O, Cg, KH, KW] = w.shape;
  if (C !== Cg * p.groups || O % p.groups !== 0) {
    throw new ShapeError(`conv2d: with groups=${p.groups}, input channels must equal weight.shape[1] * groups and out channels be divisible by groups; got ${shapes()}`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== O)) throw new ShapeError(`conv2d: bias must have shape [${O}]; got ${shapes()}`);
  if (x.dtype !== w.dtype || (bias && bias.dtype !== w.dtype)) throw new ShapeError(`conv2d: dtypes differ: input ${x.dtype}, weight ${w.dtype}`);
  const { OH, OW } = convOut(H, W, KH, KW, p);
  if (OH < 1 || OW < 1) {
    throw new ShapeError(`conv2d: output would be empty (${OH}x${OW}) for ${shapes()}, padding ${p.padding}, dilation ${p.dilation}`);
  }
  const y = fromStorage(backend().conv2d(x, w, bias, p), [x.shape[0], O, OH, OW]);
  const inputs = bias ? [x, w, bias] : [x, w];
  // dy = conv(dx, w) + conv(x, dw) + db: the two backward kernels, and db = sum of dy over N, H, W
  return record('conv2d', y, inputs, (g, needs) => [
    needs[0] ? fromStorage(backend().conv2dBackwardInput(g, w, x.shape, p), x.shape) : null,
    needs[1] ? fromStorage(backend().conv2dBackwardWeight(g, x, w.shape, p), w.shape) : null,
    ...(bias ? [needs[2] ? g.sum([0, 2, 3]) : null] : []),
  ]);
}

export const convOps = { conv2d };
