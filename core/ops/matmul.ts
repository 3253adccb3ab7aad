// Matrix product with torch.matmul's rules: 1-D operands are promoted (a vector on the left becomes [1, K], on the
// right [K, 1]) and the promoted dim is removed after; leading (batch) dims broadcast. The kernel sees [B, M, K] and
// [B, K, N] views.

import { record } from '../autograd.js';
import { backend } from '../backend/index.js';
import { promote } from '../dtype.js';
import { ShapeError, fmtShape } from '../errors.js';
import { broadcastShapes, numel } from '../shape.js';
import { Tensor, fromStorage } from '../tensor.js';
import { cast, expandView, reshape, sumTo } from './shape.js';

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(`matmul: both operands need at least 1 dim, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  }
  const dt = promote(a.dtype, b.dtype);
  if (a.dtype !== dt) a = cast(a, dt);
  if (b.dtype !== dt) b = cast(b, dt);
  const A = a.ndim === 1 ? reshape(a, [1, a.shape[0]]) : a;
  const B = b.ndim === 1 ? reshape(b, [b.shape[0], 1]) : b;
  const [M, K] = A.shape.slice(-2);
  const [K2, N] = B.shape.slice(-2);
  if (K !== K2) {
    throw new ShapeError(`matmul: inner dims differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} (${K} vs ${K2})`);
  }
  const batch = broadcastShapes('matmul', A.shape.slice(0, -2), B.shape.slice(0, -2));
  const nb = numel(batch);
  const flat = (x: Tensor, r: number, c: number) => {
    const v = expandView('matmul', x, [...batch, r, c]);
    // Batch dims of a broadcast view merge into one only when they are contiguous among themselves: copy if not.
    const t = new Tensor(v.data, v.shape, v.strides, v.offset);
    const merged = batch.length <= 1 ? t : fromStorage(backend().contiguous(t), v.shape);
    const s = batch.length === 0 ? [0, merged.strides[0], merged.strides[1]] : [merged.strides[0], ...merged.strides.slice(-2)];
    return { data: merged.data, shape: [nb, r, c], strides: batch.length > 1 ? [r * c, c, 1] : s, offset: merged.offset };
  };
  const out = fromStorage(backend().matmul(flat(A, M, K), flat(B, K, N)), [...batch, M, N]);
  let shape = [...batch, M, N];
  if (a.ndim === 1) shape = shape.filter((_, i) => i !== shape.length - 2);
  if (b.ndim === 1) shape = shape.slice(0, -1);
  const y = reshape(out, shape);
  // d(a @ b) = da @ b + a @ db: ga = g @ b^T, gb = a^T @ g, each summed over broadcast batch dims
  return record('matmul', y, [a, b], (g, needs) => {
    const G = reshape(g, [...batch, M, N]);
    return [
      needs[0] ? reshape(sumTo(matmul(G, B.transpose(-1, -2)), A.shape), a.shape) : null,
      needs[1] ? reshape(sumTo(matmul(A.transpose(-1, -2), G), B.shape), b.shape) : null,
    ];
  });
}

export const matmulOps = { matmul };
