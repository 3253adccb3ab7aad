// The training-time masked weight (sparsity/masks.ts maskedWeight): on host tensors it runs as one loop forward and
// one backward; these check that it gives the composed form's values and gradients (abs, sub, steStep, mul through the
// backend's kernels) element for element, in both gradient modes and both dtypes, on random shapes with weights on
// and near the threshold; and, in detached mode (a true derivative away from the threshold), a float64
// central-difference check through the public gradcheck.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Generator, fromStorage, randn, tensor, type Tensor } from '../core/index.js';
import { gradcheck } from '../testing.js';
import { keptTensor, maskedWeight, steStep, type GradMode } from '../sparsity/masks.js';

/** The composed form maskedWeight ran before the host loop (and still runs on device tensors). */
const composed = (w: Tensor, t: Tensor, mode: GradMode): Tensor => (mode === 'ste' ? w.mul(steStep(w.abs().sub(t))) : w.mul(keptTensor(w, t)));

/** Equal as numbers, NaN equal to NaN (0 and -0 count as equal: the sign of a zero gradient is not specified). */
function sameValues(a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (!(a[i] === b[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) assert.unreachable(`${what}[${i}]: ${a[i]} against ${b[i]}`);
  }
}

const caseArb = fc.record({
  shape: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }),
  seed: fc.integer({ min: 0, max: 1e6 }),
  t: fc.double({ min: 0.001, max: 2, noNaN: true }),
  scale: fc.constantFrom(0.1, 1, 3),
  ties: fc.boolean(),
  dtype: fc.constantFrom('float32' as const, 'float64' as const),
  mode: fc.constantFrom('ste' as const, 'detached' as const),
  tShape: fc.constantFrom('scalar' as const, 'one' as const),
});

test('maskedWeight on the host equals the composed form: output, weight gradient and threshold gradient', () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const g = new Generator(c.seed);
      const base = randn(c.shape, { generator: g, std: c.scale, dtype: c.dtype });
      const tValue = c.dtype === 'float32' ? Math.fround(c.t) : c.t;
      const data = base.toArray();
      // weights exactly at +-t, at +-(t + 1) (the STE window's edge) and at 0, where the rules meet
      if (c.ties) for (let i = 0; i < data.length; i += 3) data[i] = [tValue, -tValue, tValue + 1, -(tValue + 1), 0][i % 5];
      const upstream = randn(c.shape, { generator: g, dtype: c.dtype });
      const run = (f: typeof maskedWeight | typeof composed) => {
        const w = fromStorage(c.dtype === 'float32' ? Float32Array.from(data) : Float64Array.from(data), c.shape);
        w.requiresGrad = true;
        const t = tensor(c.tShape === 'scalar' ? tValue : [tValue], c.tShape === 'scalar' ? [] : [1], { dtype: c.dtype, requiresGrad: true });
        const y = f(w, t, c.mode);
        y.mul(upstream).sum().backward();
        return { y: y.toArray(), gw: w.grad!.toArray(), gt: t.grad?.toArray() ?? null, tShape: t.grad?.shape ?? null, dtype: y.dtype };
      };
      const fused = run(maskedWeight), ref = run(composed);
      assert.is(fused.dtype, ref.dtype);
      sameValues(fused.y, ref.y, 'output');
      sameValues(fused.gw, ref.gw, 'weight gradient');
      if (c.mode === 'ste') {
        assert.equal(fused.tShape, ref.tShape, 'threshold gradient shape');
        sameValues(fused.gt!, ref.gt!, 'threshold gradient');
      } else {
        assert.is(fused.gt, null, 'detached: no threshold gradient');
        assert.is(ref.gt, null);
      }
    }),
    { numRuns: 150 },
  );
});

test('maskedWeight (detached) passes a float64 central-difference gradcheck away from the threshold', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 1e6 }), (shape, seed) => {
      const w = randn(shape, { generator: new Generator(seed), dtype: 'float64' });
      // keep every |w| at least 1e-3 from the threshold 0.5, so the step does not move under eps
      const d = w.toArray();
      for (let i = 0; i < d.length; i++) if (Math.abs(Math.abs(d[i]) - 0.5) < 1e-3) d[i] += 0.01;
      const x = fromStorage(Float64Array.from(d), shape);
      x.requiresGrad = true;
      const t = tensor(0.5, [], { dtype: 'float64' });
      return gradcheck((v) => maskedWeight(v, t, 'detached'), [x]);
    }),
    { numRuns: 50 },
  );
});

test('maskedWeight keeps exactly the weights with |w| > t, in both modes', () => {
  const w = tensor([0.5, -0.5, 0.25, -0.75, 0, 1], [6]);
  for (const mode of ['ste', 'detached'] as const) assert.equal(Array.from(maskedWeight(w, tensor(0.5), mode).toArray()), [0, 0, 0, -0.75, 0, 1]);
});

test.run();
