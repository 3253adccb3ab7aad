// Small helpers nn/ shares: the core symbols it uses, a shape formatter, and the contiguous-data access optimizers
// and initialisers use to update a tensor's storage in place.

import { Tensor, hostElements, noGrad, type Storage } from '../core/index.js';

export { Tensor, noGrad };

export const fmtShapeOf = (t: { shape: readonly number[] }): string => `[${t.shape.join(', ')}]`;

/**
 * The host storage and offset of a contiguous host tensor, or a contiguous copy (offset 0) of a strided one; op names
 * the caller in the error a device tensor gets (see hostElements).
 */
export function flatData(t: Tensor, op: string): { data: Storage; offset: number } {
  if (t.isContiguous) return { data: hostElements(t, op), offset: t.offset };
  return { data: t.toArray(), offset: 0 };
}
