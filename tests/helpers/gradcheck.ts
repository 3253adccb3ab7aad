// Gradient checking: analytic gradients from backward() against central finite differences, in float64 on the
// reference backend. A non-scalar output is contracted with a fixed random tensor R (L = sum(out * R)), so every
// output element's gradient is checked, not just their sum.

import * as assert from 'uvu/assert';
import { Generator, Tensor, noGrad, randn, tensor, withBackend } from '../../core/index.js';

export interface GradCheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
}

/** Count of property cases run by all suites in this process (printed at the end of each suite). */
export const caseCount = { value: 0 };

/** A float64 leaf of the given shape with values from a seeded normal (or uniform in [lo, hi]). */
export function leaf(shape: readonly number[], seed: number, range?: [number, number]): Tensor {
  const g = new Generator(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, () => (range ? range[0] + (range[1] - range[0]) * g.uniform() : g.normal()));
  return tensor(v, shape, { dtype: 'float64', requiresGrad: true });
}

/**
 * Check d fn(...inputs) / d inputs for every input that requires grad. Throws (uvu assertion) naming the input, the
 * element index, and both values.
 */
export function gradCheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradCheckOptions = {}): void {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  withBackend('reference', () => {
    for (const x of inputs) {
      if (x.requiresGrad) {
        assert.is(x.dtype, 'float64', 'gradCheck inputs must be float64');
        x.grad = null;
      }
    }
    const out = fn(...inputs);
    assert.ok(out.requiresGrad, 'output should require grad');
    const R = noGrad(() => randn(out.shape, { dtype: 'float64', generator: new Generator(12345) }));
    out.mul(R).sum().backward();
    const loss = () => noGrad(() => fn(...inputs).mul(R).sum().item());
    inputs.forEach((x, k) => {
      if (!x.requiresGrad) return;
      assert.ok(x.grad !== null, `input ${k} got no gradient`);
      const analytic = x.grad!.toArray();
      assert.equal(x.grad!.shape, x.shape, `gradient shape of input ${k}`);
      // Perturb through the tensor's own storage (inputs are contiguous leaves).
      for (let i = 0; i < x.size; i++) {
        const orig = x.data[x.offset + i];
        x.data[x.offset + i] = orig + eps;
        const up = loss();
        x.data[x.offset + i] = orig - eps;
        const down = loss();
        x.data[x.offset + i] = orig;
        const numeric = (up - down) / (2 * eps);
        const a = analytic[i];
        if (!(Math.abs(a - numeric) <= atol + rtol * Math.abs(numeric))) {
          assert.unreachable(`input ${k} ${fmt(x.shape)} element ${i}: analytic ${a} vs numeric ${numeric}`);
        }
      }
    });
  });
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;
