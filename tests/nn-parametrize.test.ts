// Parametrizations (nn/parametrize.ts): stacks apply in registration order, handles remove exactly their entry in
// any order, withParametrizations restores what was there (on return, on a throw, after a promise), a user's
// transform survives the scoped mask POT reconstructs under, gradients reach the raw Parameter through the stack,
// the raw Parameter is what stateDict and optimizers see, and the errors name the module and parameter.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ArgumentError, Generator, noGrad, randn, tensor, type Tensor } from '../core/index.js';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, Module, Parameter, ReLU, Sequential, SGD,
  isParametrized, parametrized, registerParametrization, withParametrizations, type Parametrization,
} from '../nn/index.js';
import { pot } from '../sparsity/pot.js';

const arr = (t: Tensor) => Array.from(t.toArray());

/** A Linear(2, 2) with weight [[1, 2], [3, 4]] and bias [0.5, -0.5]. */
function lin22(): Linear {
  const l = new Linear(2, 2);
  noGrad(() => {
    l.weight.copy_(tensor([1, 2, 3, 4], [2, 2]));
    l.bias!.copy_(tensor([0.5, -0.5]));
  });
  return l;
}

const add = (c: number): Parametrization => (w) => w.add(c);
const mul = (c: number): Parametrization => (w) => w.mul(c);

test('a stack applies in registration order; forward sees it, the Parameter and stateDict keep the raw values', () => {
  const l = lin22();
  const raw = l.weight;
  assert.not.ok(isParametrized(l));
  assert.is(parametrized(l, 'weight'), raw, 'no stack: the Parameter itself');
  registerParametrization(l, 'weight', add(1));
  registerParametrization(l, 'weight', mul(2));
  assert.equal(arr(parametrized(l, 'weight')), [4, 6, 8, 10], '(w + 1) * 2, not w * 2 + 1');
  assert.ok(isParametrized(l) && isParametrized(l, 'weight'));
  assert.not.ok(isParametrized(l, 'bias'));
  // forward: x [1, 1] -> x W'^T + b = [4 + 6 + 0.5, 8 + 10 - 0.5]
  assert.equal(arr(l.call(tensor([1, 1], [1, 2]))), [10.5, 17.5]);
  assert.is(l.weight, raw);
  assert.equal(arr(l.weight), [1, 2, 3, 4]);
  assert.equal(Object.keys(l.stateDict()), ['weight', 'bias']);
  assert.equal(arr(l.stateDict().weight), [1, 2, 3, 4]);
  assert.equal(l.parameters(), [raw, l.bias]);
});

test('handles remove exactly their entry, in any order, idempotently; later registrations go last', () => {
  const l = lin22();
  const h1 = registerParametrization(l, 'weight', add(1));
  const h2 = registerParametrization(l, 'weight', mul(2));
  const h3 = registerParametrization(l, 'weight', add(10));
  assert.equal(arr(parametrized(l, 'weight')), [14, 16, 18, 20], '(w + 1) * 2 + 10');
  h2.remove();
  assert.equal(arr(parametrized(l, 'weight')), [12, 13, 14, 15], 'w + 1 + 10');
  h1.remove();
  assert.equal(arr(parametrized(l, 'weight')), [11, 12, 13, 14], 'w + 10');
  h1.remove();
  h2.remove();
  assert.equal(arr(parametrized(l, 'weight')), [11, 12, 13, 14], 'a second remove() changes nothing');
  const h4 = registerParametrization(l, 'weight', mul(3));
  assert.equal(arr(parametrized(l, 'weight')), [33, 36, 39, 42], '(w + 10) * 3');
  h3.remove();
  assert.equal(arr(parametrized(l, 'weight')), [3, 6, 9, 12], 'w * 3');
  h4.remove();
  assert.is(parametrized(l, 'weight'), l.weight);
  assert.not.ok(isParametrized(l));
});

test('withParametrizations stacks on a user transform and restores it on return and on a throw', () => {
  const l = lin22();
  registerParametrization(l, 'weight', mul(2));
  const mask = tensor([1, 0, 0, 1], [2, 2]);
  const inside = withParametrizations([[l, 'weight', (w) => w.mul(mask)]], () => arr(parametrized(l, 'weight')));
  assert.equal(inside, [2, 0, 0, 8], 'user transform first, then the mask');
  assert.equal(arr(parametrized(l, 'weight')), [2, 4, 6, 8], 'only the user transform is left');
  const boom = new Error('boom');
  try {
    withParametrizations([[l, 'weight', (w) => w.mul(mask)], [l, 'bias', mul(0)]], () => {
      assert.equal(arr(l.call(tensor([1, 1], [1, 2]))), [2, 8]);
      throw boom;
    });
    assert.unreachable('should throw');
  } catch (e) {
    assert.is(e, boom);
  }
  assert.equal(arr(parametrized(l, 'weight')), [2, 4, 6, 8]);
  assert.is(parametrized(l, 'bias'), l.bias);
  assert.ok(isParametrized(l, 'weight'));
  assert.not.ok(isParametrized(l, 'bias'));
});

test('withParametrizations awaits a returned promise before removing', async () => {
  const l = lin22();
  let during: number[] = [];
  const p = withParametrizations([[l, 'weight', add(1)]], async () => {
    await new Promise((r) => setTimeout(r, 1));
    during = arr(parametrized(l, 'weight'));
    return 'done';
  });
  assert.ok(isParametrized(l, 'weight'), 'still registered while the promise is pending');
  assert.is(await p, 'done');
  assert.equal(during, [2, 3, 4, 5]);
  assert.not.ok(isParametrized(l));
  const failing = withParametrizations([[l, 'weight', add(1)]], async () => {
    await new Promise((r) => setTimeout(r, 1));
    throw new Error('late');
  });
  try {
    await failing;
    assert.unreachable('should reject');
  } catch (e) {
    assert.is((e as Error).message, 'late');
  }
  assert.not.ok(isParametrized(l), 'removed after a rejection too');
});

test('gradients reach the raw Parameter through the stack; an optimizer step leaves masked entries alone', () => {
  const l = new Linear(3, 1);
  noGrad(() => {
    l.weight.copy_(tensor([1, 2, 3], [1, 3]));
    l.bias!.copy_(tensor([1]));
  });
  const m = tensor([1, 0, 1], [1, 3]);
  registerParametrization(l, 'weight', (w) => w.mul(m));
  registerParametrization(l, 'weight', mul(3));
  registerParametrization(l, 'bias', mul(5));
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const y = l.call(x);
  // y = 3 (x . (w * m)) + 5 b: rows 3 * (1 + 9) + 5 = 35 and 3 * (4 + 18) + 5 = 71
  assert.equal(arr(y), [35, 71]);
  y.sum().backward();
  // d/dw = 3 m * (column sums of x) = 3 * [1, 0, 1] * [5, 7, 9]
  assert.equal(arr(l.weight.grad!), [15, 0, 27]);
  assert.equal(arr(l.bias!.grad!), [10]);
  new SGD(l.parameters(), { lr: 0.1 }).step();
  assert.equal(arr(l.weight).map((v) => Math.round(v * 1e6) / 1e6), [-0.5, 2, 0.3]);
});

test('Conv2d, BatchNorm2d and a custom module read their parameters through the stack', () => {
  const conv = new Conv2d(1, 1, 1, { bias: true });
  noGrad(() => {
    conv.weight.copy_(tensor([2], [1, 1, 1, 1]));
    conv.bias!.copy_(tensor([1]));
  });
  const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
  assert.equal(arr(conv.call(x)), [3, 5, 7, 9]);
  registerParametrization(conv, 'weight', mul(0));
  registerParametrization(conv, 'bias', add(1));
  assert.equal(arr(conv.call(x)), [2, 2, 2, 2]);

  const bn = new BatchNorm2d(1).eval();
  registerParametrization(bn, 'weight', mul(3));
  registerParametrization(bn, 'bias', add(-1));
  // eval with running mean 0, var 1: y = 3 x / sqrt(1 + eps) - 1
  arr(bn.call(x)).forEach((v, i) => assert.ok(Math.abs(v - (3 * (i + 1) / Math.sqrt(1 + 1e-5) - 1)) < 1e-6, `bn ${i}: ${v}`));

  class Scale extends Module {
    readonly scale = this.registerParameter('scale', new Parameter(tensor([2])));
    protected override forward(v: Tensor): Tensor {
      return v.mul(parametrized(this, 'scale'));
    }
  }
  const s = new Scale();
  registerParametrization(s, 'scale', add(1));
  assert.equal(arr(s.call(tensor([1, 2]))), [3, 6]);
});

test('POT reconstructs under a scoped mask stacked after the user transform, which survives it', () => {
  const g = new Generator(3);
  const net = new Sequential(
    new Conv2d(1, 4, 3, { padding: 1, bias: false, generator: g }), new BatchNorm2d(4), new ReLU(),
    new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 3, { generator: g }),
  );
  const dense = new Sequential(
    new Conv2d(1, 4, 3, { padding: 1, bias: false }), new BatchNorm2d(4), new ReLU(),
    new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 3),
  );
  dense.loadStateDict(net.stateDict());
  const fc = net.at(5) as Linear;
  const inputs: Tensor[] = [];
  let last: Tensor | null = null;
  registerParametrization(fc, 'weight', (w) => {
    inputs.push(w);
    return (last = w.mul(1));
  });
  const batches = [randn([4, 1, 5, 5], { generator: g }), randn([4, 1, 5, 5], { generator: g })];
  pot(net, dense, batches, { sparsity: 0.5, reconIters: 3, weightLr: 1e-3, biasLr: 1e-3 });
  assert.ok(inputs.length > 0, 'the user transform ran during POT');
  assert.ok(inputs.every((w) => w === fc.weight), 'it stayed first: it always saw the raw Parameter');
  assert.ok(isParametrized(fc, 'weight'));
  const seen = parametrized(fc, 'weight');
  assert.is(seen, last, 'after POT the stack is the user transform alone (no mask left on top)');
  assert.not.ok(isParametrized(net.at(0)), 'the conv POT masked has no stack left');
});

test('errors: unknown, absent or descendant parameter names, a wrong shape, a failed scope registration', () => {
  const l = new Linear(2, 2, { bias: false });
  assert.throws(() => registerParametrization(l, 'nope', add(1)), (e: unknown) =>
    e instanceof ArgumentError && /Linear has no parameter 'nope'/.test(e.message) && /weight/.test(e.message));
  assert.throws(() => registerParametrization(l, 'bias', add(1)), (e: unknown) => e instanceof ArgumentError && /Linear has no parameter 'bias'/.test(e.message));
  assert.throws(() => registerParametrization(new BatchNorm2d(2, { affine: false }), 'weight', add(1)), /BatchNorm2d has no parameter 'weight' \(expected one of its own parameters: none\)/);
  const seq = new Sequential(l);
  assert.throws(() => registerParametrization(seq, '0.weight', add(1)), /Sequential has no parameter '0\.weight'/);
  assert.throws(() => parametrized(seq, 'weight'), (e: unknown) => e instanceof ArgumentError && /Sequential has no parameter 'weight'/.test(e.message));
  assert.not.ok(isParametrized(seq, 'weight'));

  const h = registerParametrization(l, 'weight', (w) => w.sum(0));
  assert.throws(() => l.call(randn([1, 2])), (e: unknown) =>
    e instanceof ArgumentError && /Linear\.weight: parametrization 0 returned shape \[2\], expected the parameter's \[2, 2\]/.test(e.message));
  h.remove();

  let called = false;
  assert.throws(() => withParametrizations([[l, 'weight', add(1)], [l, 'bias', add(1)]], () => (called = true)), /Linear has no parameter 'bias'/);
  assert.not.ok(called, 'fn is not run when an entry cannot be registered');
  assert.not.ok(isParametrized(l), 'the entries registered before the bad one are removed');
});

// Compile-time: forward is protected, call() is the public way to run a module (never executed).
void ((l: Linear, x: Tensor) => {
  // @ts-expect-error forward is protected
  l.forward(x);
});

test.run();
