// The public gradcheck and ptslab/testing: gradcheck passes correct ops and catches a wrong backward written with
// record, naming the input, element, values, tolerance and the wrong Jacobian entry; raiseException: false; misuse
// errors; inputs and .grad restored; the arbitraries draw what they promise; and the README example (a softplus op
// checked with checkGradProperty) runs as written from the repository root.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ArgumentError, AutogradError, Generator, GradcheckError, PtslabError, noGrad, ones, randn, record, tensor, type Tensor,
} from '../core/index.js';
import { arbBroadcastPair, arbShape, arbTensor, checkGradProperty, gradcheck as gradcheckFromTesting } from '../testing.js';
import { gradcheck } from '../core/gradcheck.js';

const x64 = (shape: number[], seed: number) => randn(shape, { dtype: 'float64', generator: new Generator(seed) }).requiresGrad_();
const map = (x: Tensor, f: (v: number) => number) => tensor(x.toArray().map(f), x.shape, { dtype: x.dtype });
const close = (a: number, b: number, tol = 1e-8) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

/** sin as a researcher would add it: forward on the values, backward d sin = cos (or a wrong rule). */
const sinWith = (rule: (x: Tensor, g: Tensor) => Tensor) => (x: Tensor) => record('sin', map(x, Math.sin), [x], (g) => [rule(x, g)]);
const sin = sinWith((x, g) => g.mul(map(x, Math.cos)));
const sinWrongSign = sinWith((x, g) => g.mul(map(x, (v) => -Math.cos(v))));
/** Right everywhere but element 4 (= [1, 1] of a [2, 3] input), whose gradient is off by 1. */
const sinOffAt4 = sinWith((x, g) => g.mul(map(x, Math.cos)).add(tensor([0, 0, 0, 0, 1, 0], x.shape, { dtype: 'float64' })));

function catchError<E extends Error>(fn: () => unknown, cls: new (...a: any[]) => E): E {
  try {
    fn();
  } catch (e) {
    assert.instance(e, cls);
    return e as E;
  }
  assert.unreachable(`expected a ${cls.name}`);
  throw new Error('unreachable');
}
const mentions = (e: Error, ...parts: string[]) => {
  for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" should mention "${p}"`);
};

const gc = suite('gradcheck');

gc('passes correct ops: broadcasting, several outputs, a user op with the right backward', () => {
  const a = x64([2, 3], 1);
  const b = x64([3], 2);
  assert.is(gradcheck((a, b) => a.mul(b).tanh().add(b.exp()), [a, b]), true);
  assert.is(gradcheck((a, b) => [a.mul(b), a.exp().sum(0), b.sigmoid()], [a, b]), true);
  assert.is(gradcheck(sin, [a]), true);
  assert.is(gradcheckFromTesting, gradcheck, 'ptslab/testing re-exports the same function');
});

gc('catches a wrong backward written with record (d sin = -cos): input, shape, element, values, tolerance', () => {
  const x = x64([2, 3], 3);
  const e = catchError(() => gradcheck(sinWrongSign, [x]), GradcheckError);
  assert.instance(e, PtslabError);
  assert.is(e.input, 0);
  assert.equal(e.shape, [2, 3]);
  assert.equal(e.index, [0, 0]); // every element is wrong; the first is reported
  close(e.analytic, -e.numeric, 1e-6); // R_0 * (-cos x_0) against R_0 * cos x_0
  assert.ok(Math.abs(e.numeric) > 1e-3);
  close(e.tolerance, 1e-5 + 1e-3 * Math.abs(e.numeric), 1e-12);
  // The Jacobian entry d sin(x_0) / d x_0: -cos x_0 from backward, cos x_0 by differences.
  const x0 = x.toArray()[0];
  assert.is(e.jacobian!.output, 0);
  assert.equal(e.jacobian!.outputIndex, [0, 0]);
  close(e.jacobian!.analytic, -Math.cos(x0), 1e-12);
  close(e.jacobian!.numeric, Math.cos(x0), 1e-7);
  mentions(e, 'input 0 (shape [2, 3]) element [0, 0]', 'analytic', 'numeric', 'tolerance', '6 of 6 elements', 'd output element [0, 0] / d input 0 element [0, 0]');
});

gc('an error in one element names that element and the output element whose derivative is wrong', () => {
  const x = x64([2, 3], 4);
  const e = catchError(() => gradcheck(sinOffAt4, [x]), GradcheckError);
  assert.equal(e.index, [1, 1]);
  close(e.analytic - e.numeric, 1, 1e-6);
  assert.equal(e.jacobian, { output: 0, outputIndex: [0, 0], analytic: e.jacobian!.analytic, numeric: e.jacobian!.numeric });
  close(e.jacobian!.analytic, 1, 1e-12); // the added 1 reaches x[1, 1] from every output element; the first is [0, 0]
  close(e.jacobian!.numeric, 0, 1e-9);
  mentions(e, 'element [1, 1]', '1 of 6 elements of input 0 differ');
});

gc('with several inputs and outputs, names the input and the output', () => {
  const a = x64([3], 5);
  const b = x64([2, 3], 6);
  const e = catchError(() => gradcheck((a, b) => [a.mul(2), sinOffAt4(b)], [a, b]), GradcheckError);
  assert.is(e.input, 1);
  assert.equal(e.shape, [2, 3]);
  assert.equal(e.index, [1, 1]);
  assert.is(e.jacobian!.output, 1);
  mentions(e, 'input 1 (shape [2, 3])', 'd output 1 element [0, 0] / d input 1 element [1, 1]');
});

gc('raiseException: false returns false on a mismatch and true on a match', () => {
  const x = x64([4], 7);
  assert.is(gradcheck(sinWrongSign, [x], { raiseException: false }), false);
  assert.is(gradcheck(sin, [x], { raiseException: false }), true);
  // The tolerances decide: an error of 1 in one element passes with atol 2.
  assert.is(gradcheck(sinOffAt4, [x64([2, 3], 8)], { atol: 2, raiseException: false }), true);
});

gc('misuse throws whatever raiseException says: float32, non-leaf, nothing to check, an output no input reaches, noGrad', () => {
  const f32 = ones([2, 3], { requiresGrad: true });
  const e = catchError(() => gradcheck((x) => x.mul(2), [f32], { raiseException: false }), ArgumentError);
  mentions(e, 'input 0', '[2, 3]', 'float32', 'expected float64');
  mentions(catchError(() => gradcheck((x) => x.exp(), [x64([2], 1).mul(2)]), ArgumentError), 'input 0', "'mul'", 'leaf');
  const constant = tensor([1, 2], undefined, { dtype: 'float64' });
  mentions(catchError(() => gradcheck((x) => x.exp(), [constant]), ArgumentError), 'none of the 1 inputs requires grad');
  mentions(catchError(() => gradcheck((x) => x.detach().mul(2), [x64([2], 1)]), AutogradError), 'output 0', '[2]', 'does not require grad');
  mentions(catchError(() => noGrad(() => gradcheck((x) => x.exp(), [x64([2], 1)])), ArgumentError), 'noGrad');
  mentions(catchError(() => gradcheck((x) => x.exp(), [x64([1, 3], 1).detach().expand([2, 3]).requiresGrad_()]), ArgumentError), 'overlapping');
  const s = x64([4], 1);
  mentions(catchError(() => gradcheck((a, b) => a.add(b), [s, s.detach().requiresGrad_()]), ArgumentError), 'input 1', 'shares storage with input 0');
  mentions(catchError(() => gradcheck((x) => x, [x64([2], 1)], { eps: 0 }), ArgumentError), 'eps');
});

gc('an input that gets no gradient counts as zero, as in torch', () => {
  const a = x64([3], 9);
  const unused = x64([2], 10);
  assert.is(gradcheck((a) => a.exp(), [a, unused]), true);
  assert.is(unused.grad, null);
  // The value depends on b but the op records only a: b gets no gradient while its numeric one is not zero.
  const b = x64([3], 11);
  const leaky = (a: Tensor, b: Tensor) => record('leaky', a.detach().add(b.detach()), [a], (g) => [g]);
  const e = catchError(() => gradcheck(leaky, [a, b]), GradcheckError);
  assert.is(e.input, 1);
  assert.is(e.analytic, 0);
  mentions(e, 'Input 1 got no gradient', 'counts as zero');
});

gc("a wrongly shaped gradient from record: the engine's AutogradError names the op and propagates", () => {
  const x = x64([2, 3], 12);
  const bad = (x: Tensor) => record('badShape', x.detach().mul(2), [x], (g) => [g.sum(0)]);
  mentions(catchError(() => gradcheck(bad, [x], { raiseException: false }), AutogradError), 'badShape', '[3]', '[2, 3]');
});

gc('restores perturbed values and every .grad, after a pass, a failure, and an fn that throws', () => {
  const x = x64([2, 3], 13);
  const w = x64([3], 14); // a closed-over parameter: its .grad must not collect the check's gradients
  const before = Array.from(x.toArray());
  const g0 = tensor([1, 2, 3, 4, 5, 6], [2, 3], { dtype: 'float64' });
  x.grad = g0;
  gradcheck((x) => x.mul(w).tanh(), [x]);
  catchError(() => gradcheck((x) => sinWrongSign(x).mul(w), [x]), GradcheckError);
  let calls = 0;
  const boom = (x: Tensor) => {
    if (++calls === 3) throw new Error('boom');
    return x.exp();
  };
  assert.throws(() => gradcheck(boom, [x]), /boom/);
  assert.equal(Array.from(x.toArray()), before);
  assert.is(x.grad, g0);
  assert.equal(Array.from(g0.toArray()), [1, 2, 3, 4, 5, 6]);
  assert.is(w.grad, null);
});

gc.run();

const testing = suite('ptslab/testing');

testing('arbShape draws shapes within its bounds (property)', () => {
  const opts = fc.record({ minDims: fc.nat(3), moreDims: fc.nat(3), minDim: fc.nat(2), moreDim: fc.nat(3) });
  fc.assert(
    fc.property(opts.chain((o) => fc.tuple(fc.constant(o), arbShape({ minDims: o.minDims, maxDims: o.minDims + o.moreDims, minDim: o.minDim, maxDim: o.minDim + o.moreDim }))), ([o, s]) => {
      assert.ok(s.length >= o.minDims && s.length <= o.minDims + o.moreDims, `${s.length} dims`);
      assert.ok(s.every((d) => Number.isInteger(d) && d >= o.minDim && d <= o.minDim + o.moreDim), `[${s}]`);
    }),
    { numRuns: 200, seed: 1 },
  );
  const lengths = new Set(fc.sample(arbShape(), { numRuns: 200, seed: 2 }).map((s) => s.length));
  assert.equal([...lengths].sort(), [0, 1, 2, 3], 'the defaults draw 0 to 3 dims');
});

testing('arbBroadcastPair draws shapes that broadcast, to the larger one (property)', () => {
  fc.assert(
    fc.property(arbBroadcastPair({ maxDims: 4 }), ([a, b]) => {
      const n = Math.max(a.length, b.length);
      const pad = (s: number[]) => [...Array(n - s.length).fill(1), ...s];
      const big = pad(a).map((d, i) => Math.max(d, pad(b)[i]));
      pad(a).forEach((d, i) => assert.ok(d === pad(b)[i] || d === 1 || pad(b)[i] === 1, `[${a}] vs [${b}]`));
      assert.equal(ones(a).add(ones(b)).shape, big);
      assert.ok(sameAs(a, big) || sameAs(b, big), 'one of the two is the broadcast shape');
    }),
    { numRuns: 200, seed: 3 },
  );
});
const sameAs = (s: number[], big: number[]) => s.length === big.length && s.every((d, i) => d === big[i]);

testing('arbTensor gives float64 leaves that require grad, of the drawn shape, within a range (property)', () => {
  fc.assert(
    fc.property(arbShape().chain((s) => fc.tuple(fc.constant(s), arbTensor(s, { range: [0.5, 2] }), arbTensor(fc.constant(s)))), ([s, u, n]) => {
      for (const t of [u, n]) {
        assert.equal(t.shape, s);
        assert.is(t.dtype, 'float64');
        assert.ok(t.requiresGrad && t.isLeaf && t.grad === null);
      }
      assert.ok(Array.from(u.toArray()).every((v) => v >= 0.5 && v <= 2));
    }),
    { numRuns: 100, seed: 4 },
  );
  // Values are spread even for the small seeds fast-check favours: no first element stuck near 0.
  const firsts = fc.sample(arbTensor([1]), { numRuns: 200, seed: 5 }).map((t) => Math.abs(t.item()));
  assert.ok(firsts.filter((v) => v < 1e-3).length <= 2, 'first values near 0');
  assert.ok(firsts.filter((v) => v > 1).length > 40, 'first values spread like a standard normal');
});

testing('bad options are ArgumentErrors naming the option', () => {
  mentions(catchError(() => arbShape({ minDims: 3, maxDims: 1 }), ArgumentError), 'arbShape', 'minDims 3', 'maxDims 1');
  mentions(catchError(() => arbShape({ maxDim: 1.5 }), ArgumentError), 'maxDim 1.5');
  mentions(catchError(() => arbTensor([2], { range: [1, 1] }), ArgumentError), 'arbTensor', 'range', '[1, 1]');
});

testing('checkGradProperty passes a correct op and reports a wrong one with its counterexample', () => {
  checkGradProperty(sin, [arbTensor(arbShape())], { runs: 30, seed: 6 });
  checkGradProperty((a, b) => a.mul(b).sigmoid(), arbBroadcastPair().chain(([sa, sb]) => fc.tuple(arbTensor(sa), arbTensor(sb))), { runs: 30, seed: 7 });
  const e = catchError(() => checkGradProperty(sinWrongSign, [arbTensor(arbShape({ minDims: 1 }))], { runs: 30, seed: 8 }), Error);
  mentions(e, 'Counterexample', 'float64 leaf [1]', 'gradcheck: input 0 (shape [1]) element [0]'); // shrunk to one element
});

// The README example, verbatim: run from the repository root, where 'ptslab' resolves to this package by name.
const README_EXAMPLE = `import { record, tensor } from 'ptslab';
import { arbShape, arbTensor, checkGradProperty } from 'ptslab/testing';

// softplus(x) = log(1 + e^x), computed stably as max(x, 0) + log1p(e^-|x|).
// Its derivative is the logistic sigmoid: d softplus / dx = 1 / (1 + e^-x).
function softplus(x) {
  const y = x.toArray().map((v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))));
  return record('softplus', tensor(y, x.shape, { dtype: x.dtype }), [x], (g) => [g.mul(x.sigmoid())]);
}

// 50 random shapes of up to 3 dims, values in [-5, 5]: gradcheck on each (float64, reference backend).
checkGradProperty(softplus, [arbTensor(arbShape({ maxDims: 3 }), { range: [-5, 5] })], { runs: 50, seed: 1 });
console.log('softplus: gradient checked on 50 random shapes');
`;

testing('a user-defined softplus via record, checked on random shapes; a wrong rule is caught', () => {
  const softplus = (x: Tensor, rule = (x: Tensor) => x.sigmoid()) => {
    const y = x.toArray().map((v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))));
    return record('softplus', tensor(y, x.shape, { dtype: x.dtype }), [x], (g) => [g.mul(rule(x))]);
  };
  checkGradProperty((x) => softplus(x), [arbTensor(arbShape({ maxDims: 3 }), { range: [-5, 5] })], { runs: 50, seed: 1 });
  // Values: softplus(0) = log 2, softplus(-50) ~ e^-50, softplus(50) = 50, with no overflow at 800.
  assert.equal(Array.from(softplus(tensor([0, -50, 50, 800], undefined, { dtype: 'float64' })).toArray()), [Math.LN2, Math.log1p(Math.exp(-50)), 50, 800]);
  // d softplus = sigmoid(-x) is a plausible slip; it is caught.
  assert.throws(() => checkGradProperty((x) => softplus(x, (x) => x.neg().sigmoid()), [arbTensor(arbShape())], { runs: 20, seed: 2 }), /gradcheck: input 0/);
});

testing('the README example runs as written from the repository root (ES module importing ptslab and ptslab/testing)', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', README_EXAMPLE], { cwd: root, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'softplus: gradient checked on 50 random shapes\n');
  const lines = README_EXAMPLE.trimEnd().split('\n');
  assert.ok(lines.length < 20, `${lines.length} lines`);
});

testing.run();
