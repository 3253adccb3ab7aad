// Small helpers nn/ shares: the core symbols it uses, a shape formatter, and the contiguous-data access optimizers
// and initialisers use to update a tensor's storage in place.

import { Tensor, noGrad, type Storage } from '../core/index.js';

export { Tensor, noGrad };

export const fmtShapeOf = (t: { shape: readonly number[] }): string => `[${t.shape.join(', ')}]`;

/** The storage and offset of a contiguous tensor, or a contiguous copy (offset 0) of a strided one. */
export function flatData(t: Tensor): { data: Storage; offset: number } {
  if (t.isContiguous) return { data: t.data, offset: t.offset };
  return { data: t.toArray(), offset: 0 };
}
