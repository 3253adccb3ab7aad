// Elementwise ops with NumPy broadcasting. Each op computes its forward through the backend and records, in the same
// place, its backward rule written with differentiable ops. Gradients of broadcast inputs are summed back to the
// input's shape (sumTo). A plain number is a 0-d tensor of the other operand's dtype.

import { noGrad, record } from '../autograd.js';
import { backend } from '../backend/index.js';
import type { BinaryOp, UnaryOp } from '../backend/types.js';
import { promote } from '../dtype.js';
import { ArgumentError } from '../errors.js';
import { broadcastShapes } from '../shape.js';
import { Tensor, asTensor, fromStorage, type TensorLike } from '../tensor.js';
import { cast, expandView, sumTo } from './shape.js';

function operands(a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  const dt = promote(
    typeof a === 'number' ? (b as Tensor).dtype ?? 'float32' : a.dtype,
    typeof b === 'number' ? (a as Tensor).dtype ?? 'float32' : b.dtype,
  );
  const A = asTensor(a, dt);
  const B = asTensor(b, dt);
  return [A.dtype === dt ? A : cast(A, dt), B.dtype === dt ? B : cast(B, dt)];
}

function binaryRaw(op: BinaryOp, A: Tensor, B: Tensor): Tensor {
  const shape = broadcastShapes(op, A.shape, B.shape);
  return fromStorage(backend().binary(op, expandView(op, A, shape), expandView(op, B, shape)), shape);
}

const unaryRaw = (op: UnaryOp, x: Tensor): Tensor => fromStorage(backend().unary(op, x), x.shape);

export function add(a: TensorLike, b: TensorLike): Tensor {
  const [A, B] = operands(a, b);
  // d(a + b) = da + db
  return record('add', binaryRaw('add', A, B), [A, B], (g) => [sumTo(g, A.shape), sumTo(g, B.shape)]);
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  const [A, B] = operands(a, b);
  // d(a - b) = da - db
  return record('sub', binaryRaw('sub', A, B), [A, B], (g, needs) => [
    sumTo(g, A.shape),
    needs[1] ? sumTo(neg(g), B.shape) : null,
  ]);
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  const [A, B] = operands(a, b);
  // d(a b) = b da + a db
  return record('mul', binaryRaw('mul', A, B), [A, B], (g, needs) => [
    needs[0] ? sumTo(mul(g, B), A.shape) : null,
    needs[1] ? sumTo(mul(g, A), B.shape) : null,
  ]);
}

export function div(a: TensorLike, b: TensorLike): Tensor {
  const [A, B] = operands(a, b);
  const y = binaryRaw('div', A, B);
  // d(a / b) = da / b - (a / b^2) db = da / b - y db / b
  return record('div', y, [A, B], (g, needs) => {
    const gb = needs[0] || needs[1] ? div(g, B) : null;
    return [needs[0] ? sumTo(gb!, A.shape) : null, needs[1] ? sumTo(neg(mul(gb!, y)), B.shape) : null];
  });
}

export function pow(a: TensorLike, b: TensorLike): Tensor {
  const [A, B] = operands(a, b);
  const y = binaryRaw('pow', A, B);
  // d(a^b) = b a^(b-1) da + a^b ln(a) db
  return record('pow', y, [A, B], (g, needs) => [
    needs[0] ? sumTo(mul(g, mul(B, pow(A, sub(B, 1)))), A.shape) : null,
    needs[1] ? sumTo(mul(g, mul(y, log(A))), B.shape) : null,
  ]);
}

/** PyTorch's rule: the larger input gets the gradient; at a tie each gets half. */
function extremum(op: 'maximum' | 'minimum', a: TensorLike, b: TensorLike): Tensor {
  const [A, B] = operands(a, b);
  return record(op, binaryRaw(op, A, B), [A, B], (g) => {
    const win = binaryRaw(op === 'maximum' ? 'gt' : 'lt', A, B);
    const tie = binaryRaw('eq', A, B);
    const wa = add(win, mul(tie, 0.5)); // weight of a: 1 if a wins, 1/2 at a tie, else 0
    return [sumTo(mul(g, wa), A.shape), sumTo(mul(g, sub(1, wa)), B.shape)];
  });
}

export const maximum = (a: TensorLike, b: TensorLike): Tensor => extremum('maximum', a, b);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => extremum('minimum', a, b);

// Comparisons give 0/1 tensors and have no gradient.
const compare = (op: BinaryOp) => (a: TensorLike, b: TensorLike): Tensor => binaryRaw(op, ...operands(a, b));
export const gt = compare('gt');
export const ge = compare('ge');
export const lt = compare('lt');
export const le = compare('le');
export const eq = compare('eq');

export function neg(x: Tensor): Tensor {
  // d(-x) = -dx
  return record('neg', unaryRaw('neg', x), [x], (g) => [neg(g)]);
}

export function exp(x: Tensor): Tensor {
  const y = unaryRaw('exp', x);
  // d(exp x) = exp(x) dx
  return record('exp', y, [x], (g) => [mul(g, y)]);
}

export function log(x: Tensor): Tensor {
  // d(log x) = dx / x
  return record('log', unaryRaw('log', x), [x], (g) => [div(g, x)]);
}

export function sqrt(x: Tensor): Tensor {
  const y = unaryRaw('sqrt', x);
  // d(sqrt x) = dx / (2 sqrt x)
  return record('sqrt', y, [x], (g) => [div(g, mul(y, 2))]);
}

export function abs(x: Tensor): Tensor {
  // d|x| = sign(x) dx (0 at 0, as PyTorch)
  return record('abs', unaryRaw('abs', x), [x], (g) => [mul(g, sign(x))]);
}

/** sign(x) in {-1, 0, 1}; no gradient (it is 0 almost everywhere). */
export const sign = (x: Tensor): Tensor => unaryRaw('sign', x);

export function sigmoid(x: Tensor): Tensor {
  const y = unaryRaw('sigmoid', x);
  // d sigmoid(x) = y (1 - y) dx
  return record('sigmoid', y, [x], (g) => [mul(g, mul(y, sub(1, y)))]);
}

export function tanh(x: Tensor): Tensor {
  const y = unaryRaw('tanh', x);
  // d tanh(x) = (1 - y^2) dx
  return record('tanh', y, [x], (g) => [mul(g, sub(1, mul(y, y)))]);
}

export function relu(x: Tensor): Tensor {
  // d relu(x) = [x > 0] dx (0 at 0), as PyTorch's threshold_backward on the output: y != 0 exactly where x > 0 (or x
  // is NaN, whose gradient PyTorch passes too). One where instead of a mask and a product: half the full-size passes
  // (measured 1.6x to 2.2x faster on the cpu backend).
  const y = unaryRaw('relu', x);
  return record('relu', y, [x], (g) => [where(y, g, 0)]);
}

export function relu6(x: Tensor): Tensor {
  // d relu6(x) = [0 < x < 6] dx (PyTorch's hardtanh rule: open interval). y = clamp(x, 0, 6) is 0 or 6 exactly where
  // x is outside, so the gradient is g where y != 0 and y - 6 != 0 (and where x is NaN, as PyTorch's
  // hardtanh_backward): three full-size passes instead of four (measured 1.2x to 1.4x faster).
  const y = fromStorage(backend().clamp(x, 0, 6), x.shape);
  return record('relu6', y, [x], (g) => [where(y, where(noGrad(() => sub(y, 6)), g, 0), 0)]);
}

/** Clamp to [min, max] (either bound optional). */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  const lo = min ?? -Infinity;
  const hi = max ?? Infinity;
  if (Number.isNaN(lo) || Number.isNaN(hi) || lo > hi) {
    throw new ArgumentError(`clamp: need min <= max, got min=${min}, max=${max}`);
  }
  // d clamp(x) = [min <= x <= max] dx (PyTorch's rule: closed interval)
  const y = fromStorage(backend().clamp(x, lo, hi), x.shape);
  return record('clamp', y, [x], (g) => [mul(g, mul(ge(x, lo), le(x, hi)))]);
}

/** cond != 0 ? a : b, all three broadcast together. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [A, B] = operands(a, b);
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, A.shape), B.shape);
  const y = fromStorage(
    backend().where(expandView('where', cond, shape), expandView('where', A, shape), expandView('where', B, shape)),
    shape,
  );
  // d where(c, a, b) = c da + (1 - c) db
  return record('where', y, [A, B], (g, needs) => {
    const zero = asTensor(0, g.dtype);
    return [
      needs[0] ? sumTo(where(cond, g, zero), A.shape) : null,
      needs[1] ? sumTo(where(cond, zero, g), B.shape) : null,
    ];
  });
}

export const elementwiseOps = {
  add, sub, mul, div, pow, maximum, minimum, gt, ge, lt, le, eq,
  neg, exp, log, sqrt, abs, sign, sigmoid, tanh, relu, relu6, clamp, where,
};
