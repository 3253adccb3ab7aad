// The suites' side of the public gradcheck (core/gradcheck.ts): the tolerances ptslab's own gradient checks use,
// a seeded float64 leaf for case tables that draw their shapes themselves, and the running count of property cases.

import { Generator, tensor, type GradcheckOptions, type Tensor } from '../../core/index.js';

/**
 * Tighter than torch's defaults (atol 1e-5, rtol 1e-3) that gradcheck itself uses: ptslab's ops are checked in
 * float64 on small tensors, where central differences with eps 1e-6 agree far below 1e-6, so the suites keep the
 * tolerances they had before gradcheck was public. A case that needs looser ones says why (cast).
 */
export const suiteTolerance: GradcheckOptions = { atol: 1e-6, rtol: 1e-5 };

/** Count of property cases run by all suites in this process (printed at the end of each suite). */
export const caseCount = { value: 0 };

/** A float64 leaf of the given shape with values from a seeded normal (or uniform in [lo, hi]). */
export function leaf(shape: readonly number[], seed: number, range?: readonly [number, number]): Tensor {
  const g = new Generator(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, () => (range ? range[0] + (range[1] - range[0]) * g.uniform() : g.normal()));
  return tensor(v, shape, { dtype: 'float64', requiresGrad: true });
}
