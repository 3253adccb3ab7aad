// The CSR form of an unstructured-sparse weight (SparseWeight, types.ts) that the inference-only sparse kernels of a
// backend take (sparseConv2d, sparseLinear). Built once per layer by nn/sparse-inference.ts; backend-independent.

import { ShapeError, fmtShape } from '../errors.js';
import type { SparseWeight } from './types.js';

/**
 * CSR of a contiguous float32 weight: [O, C, KH, KW] (a conv, groups 1) or [O, C] (a linear layer). Exact zeros are
 * dropped (a pruned weight's), everything else kept as is. label names the tensor in errors.
 */
export function sparseWeightOf(data: Float32Array, shape: readonly number[], label: string): SparseWeight {
  if (shape.length !== 4 && shape.length !== 2) throw new ShapeError(`${label}: a sparse weight is [O, C, KH, KW] or [O, C], got ${fmtShape(shape)}`);
  const [O, C] = shape, KH = shape[2] ?? 1, KW = shape[3] ?? 1, K = C * KH * KW;
  if (data.length !== O * K) throw new ShapeError(`${label}: ${data.length} values for a weight of shape ${fmtShape(shape)}`);
  const rows = new Int32Array(O + 1);
  let nnz = 0;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) nnz++;
  const taps = new Int32Array(nnz), vals = new Float32Array(nnz);
  for (let o = 0, j = 0; o < O; o++) {
    for (let k = 0, i = o * K; k < K; k++, i++) {
      if (data[i] !== 0) { taps[j] = k; vals[j] = data[i]; j++; }
    }
    rows[o + 1] = j;
  }
  return { O, C, KH, KW, rows, taps, vals };
}

/** Nonzeros over all weights of w. */
export const densityOf = (w: SparseWeight): number => w.vals.length / (w.O * w.C * w.KH * w.KW);
