// The functional namespace F, as torch.nn.functional: layers and losses written over the ops. Everything here is
// composed of differentiable ops (or is one of the kernel-backed ops re-exported), so none needs a backward rule.

import { ArgumentError, ShapeError, fmtShape } from './errors.js';
import { globalGenerator, type Generator } from './random.js';
import { allocate } from './dtype.js';
import { Tensor, fromStorage, rand } from './tensor.js';
import { exp, mul, relu, relu6, sigmoid, sub, tanh } from './ops/elementwise.js';
import { max, mean, sum } from './ops/reduce.js';
import { pad } from './ops/shape.js';
import { matmul } from './ops/matmul.js';
import { conv2d } from './ops/conv.js';
import { adaptiveAvgPool2d, avgPool2d, maxPool2d } from './ops/pool.js';
import { batchNorm2d } from './ops/norm.js';
import { noGrad } from './autograd.js';

export type Reduction = 'mean' | 'sum' | 'none';

/** y = x w^T + b, w [out, in] (PyTorch's layout). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  if (weight.ndim !== 2 || x.shape[x.ndim - 1] !== weight.shape[1]) {
    throw new ShapeError(`linear: input ${fmtShape(x.shape)} does not fit weight ${fmtShape(weight.shape)} (need input[-1] = weight[1])`);
  }
  const y = matmul(x, weight.transpose(0, 1));
  return bias ? y.add(bias) : y;
}

/** log softmax along dim, stable: x - max - log(sum(exp(x - max))). */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  const shifted = sub(x, max(x, dim, true).detach());
  return sub(shifted, sum(exp(shifted), dim, true).log());
}

export function softmax(x: Tensor, dim = -1): Tensor {
  return exp(logSoftmax(x, dim));
}

function reduce(loss: Tensor, reduction: Reduction, op: string): Tensor {
  if (reduction === 'mean') return mean(loss);
  if (reduction === 'sum') return sum(loss);
  if (reduction === 'none') return loss;
  throw new ArgumentError(`${op}: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
}

/** Class indices as a [N, C] one-hot tensor of the given dtype; checks the range. */
export function oneHot(target: Tensor | ArrayLike<number>, numClasses: number, like: Tensor, op = 'oneHot'): Tensor {
  const t = target instanceof Tensor ? target.toArray() : target;
  const n = t.length;
  const data = allocate(like.dtype, n * numClasses);
  for (let i = 0; i < n; i++) {
    const c = t[i];
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new ArgumentError(`${op}: target ${i} is ${c}, expected an integer class index in [0, ${numClasses})`);
    }
    data[i * numClasses + c] = 1;
  }
  return fromStorage(data, [n, numClasses]);
}

function checkTargets(op: string, input: Tensor, target: Tensor | ArrayLike<number>): void {
  const n = target instanceof Tensor ? target.size : target.length;
  if (input.ndim !== 2 || n !== input.shape[0]) {
    throw new ShapeError(`${op}: expected input [N, C] and N targets, got input ${fmtShape(input.shape)} and ${n} targets`);
  }
}

/** Negative log-likelihood of log-probabilities [N, C] at integer targets. */
export function nllLoss(logProbs: Tensor, target: Tensor | ArrayLike<number>, opts: { reduction?: Reduction } = {}): Tensor {
  checkTargets('nllLoss', logProbs, target);
  const picked = sum(mul(logProbs, oneHot(target, logProbs.shape[1], logProbs, 'nllLoss')), 1);
  return reduce(picked.neg(), opts.reduction ?? 'mean', 'nllLoss');
}

/**
 * Cross entropy of logits [N, C] against integer targets, with optional label smoothing (PyTorch's rule: the target
 * distribution is (1 - eps) one-hot + eps / C uniform).
 */
export function crossEntropy(
  logits: Tensor,
  target: Tensor | ArrayLike<number>,
  opts: { labelSmoothing?: number; reduction?: Reduction } = {},
): Tensor {
  checkTargets('crossEntropy', logits, target);
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) throw new ArgumentError(`crossEntropy: labelSmoothing must be in [0, 1], got ${eps}`);
  const C = logits.shape[1];
  const logp = logSoftmax(logits, 1);
  const hot = oneHot(target, C, logits, 'crossEntropy');
  const dist = eps === 0 ? hot : hot.mul(1 - eps).add(eps / C);
  return reduce(sum(mul(logp, dist), 1).neg(), opts.reduction ?? 'mean', 'crossEntropy');
}

export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  if (input.shape.length !== target.shape.length || input.shape.some((d, i) => d !== target.shape[i])) {
    throw new ShapeError(`mseLoss: input ${fmtShape(input.shape)} and target ${fmtShape(target.shape)} differ in shape`);
  }
  const d = sub(input, target);
  return reduce(mul(d, d), opts.reduction ?? 'mean', 'mseLoss');
}

/**
 * Distillation loss: T^2 * batch mean of KL(softmax(teacher / T) || softmax(student / T)), both [N, C] logits.
 * The teacher side carries gradient only if the teacher logits require it.
 */
export function klDiv(studentLogits: Tensor, teacherLogits: Tensor, opts: { temperature?: number } = {}): Tensor {
  const T = opts.temperature ?? 1;
  if (!(T > 0)) throw new ArgumentError(`klDiv: temperature must be > 0, got ${T}`);
  if (studentLogits.ndim !== 2 || studentLogits.shape.some((d, i) => d !== teacherLogits.shape[i]) || teacherLogits.ndim !== 2) {
    throw new ShapeError(`klDiv: student ${fmtShape(studentLogits.shape)} and teacher ${fmtShape(teacherLogits.shape)} must both be [N, C]`);
  }
  const logPs = logSoftmax(studentLogits.div(T), 1);
  const logPt = logSoftmax(teacherLogits.div(T), 1);
  const kl = sum(mul(exp(logPt), sub(logPt, logPs)), 1);
  return mean(kl).mul(T * T);
}

/** Inverted dropout: zero each element with probability p and scale the rest by 1 / (1 - p). Seeded. */
export function dropout(x: Tensor, opts: { p?: number; training?: boolean; generator?: Generator } = {}): Tensor {
  const p = opts.p ?? 0.5;
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`dropout: p must be in [0, 1], got ${p}`);
  if (!(opts.training ?? true) || p === 0) return x;
  if (p === 1) return mul(x, 0);
  const keep = noGrad(() => rand(x.shape, { dtype: x.dtype, generator: opts.generator ?? globalGenerator() }).ge(p));
  return mul(x, keep.mul(1 / (1 - p)));
}

export const F = {
  linear, conv2d, maxPool2d, avgPool2d, adaptiveAvgPool2d, batchNorm2d, dropout,
  softmax, logSoftmax, crossEntropy, nllLoss, mseLoss, klDiv, oneHot, pad,
  relu, relu6, sigmoid, tanh,
};
