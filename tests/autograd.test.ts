// The engine and the tensor model: composite expressions (a node reused several times), fan-out accumulation,
// noGrad, detach, requiresGrad propagation, leaf gradient accumulation, views sharing storage, broadcasting
// properties, seeded creation, and the errors bad input must raise.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  ArgumentError, AutogradError, F, Generator, PtslabError, ShapeError, arange, concat, full, gradcheck, manualSeed, noGrad,
  ones, rand, randn, tensor, zeros, type Tensor,
} from '../core/index.js';
import { arbShape } from '../testing.js';
import { leaf, suiteTolerance } from './helpers/gradcheck.js';

const list = (t: Tensor) => Array.from(t.toArray());

const engine = suite('autograd engine');

engine('fan-out: a node used several times sums its gradients', () => {
  const x = tensor([2, -3], undefined, { requiresGrad: true });
  const y = x.mul(x).add(x.mul(3)).add(x.exp().mul(x)); // x^2 + 3x + x e^x
  y.sum().backward();
  const expected = [2, -3].map((v) => 2 * v + 3 + Math.exp(v) * (1 + v));
  list(x.grad!).forEach((g, i) => assert.ok(Math.abs(g - expected[i]) < 1e-4, `grad ${i}: ${g} vs ${expected[i]}`));
});

engine('composite expression with a shared subexpression matches finite differences', () => {
  const a = leaf([3, 4], 1);
  const b = leaf([4], 2);
  const ok = gradcheck((a, b) => {
    const h = a.mul(b).tanh(); // reused three times below
    return h.mul(h).sum(1).add(h.max(1)).sub(h.mean()).div(b.abs().sum().add(1));
  }, [a, b], suiteTolerance);
  assert.is(ok, true);
});

engine('leaf gradients accumulate across backward calls, as PyTorch', () => {
  const x = tensor([1, 2], undefined, { requiresGrad: true });
  x.mul(3).sum().backward();
  x.mul(3).sum().backward();
  assert.equal(list(x.grad!), [6, 6]);
});

engine('a leaf gradient never aliases another tensor (add passes g to both inputs)', () => {
  const a = tensor([1, 2], undefined, { requiresGrad: true });
  const b = tensor([3, 4], undefined, { requiresGrad: true });
  a.add(b).sum().backward();
  assert.is.not(a.grad!.data, b.grad!.data);
  a.grad!.copy_(0);
  assert.equal(list(b.grad!), [1, 1]);
});

engine('noGrad records nothing and restores recording after', () => {
  const x = tensor([1, 2], undefined, { requiresGrad: true });
  const y = noGrad(() => x.mul(2));
  assert.is(y.requiresGrad, false);
  assert.is(y.node, null);
  assert.ok(x.mul(2).requiresGrad);
  assert.throws(() => noGrad(() => { throw new Error('inner'); }), /inner/);
  assert.ok(x.mul(2).requiresGrad, 'recording is restored after an exception');
});

engine('detach cuts the graph but shares storage', () => {
  const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
  const d = x.detach();
  assert.is(d.requiresGrad, false);
  assert.is(d.data, x.data);
  const y = x.mul(d).sum(); // d is a constant: dy/dx = d
  y.backward();
  assert.equal(list(x.grad!), [1, 2, 3]);
});

engine('requiresGrad propagates only from inputs that require it', () => {
  const a = tensor([1]);
  const b = tensor([2], undefined, { requiresGrad: true });
  assert.is(a.mul(3).requiresGrad, false);
  assert.is(a.mul(b).requiresGrad, true);
  const y = a.mul(b);
  y.backward();
  assert.is(a.grad, null);
  assert.equal(list(b.grad!), [1]);
});

engine('backward with an explicit upstream gradient on a non-scalar', () => {
  const x = tensor([[1, 2], [3, 4]], undefined, { requiresGrad: true });
  x.mul(x).backward(tensor([[1, 0], [0, 2]]));
  assert.equal(x.grad!.toList(), [[2, 0], [0, 16]]);
});

engine('createGraph gives gradients that can be differentiated again', () => {
  const x = tensor([1.5], undefined, { dtype: 'float64', requiresGrad: true });
  const y = x.pow(3);
  y.backward(undefined, { createGraph: true });
  const g = x.grad!; // 3 x^2, itself a graph
  x.grad = null;
  g.backward();
  assert.ok(Math.abs(x.grad!.item() - 6 * 1.5) < 1e-12);
});

engine('deep graphs do not overflow the stack', () => {
  let x = tensor([1], undefined, { requiresGrad: true, dtype: 'float64' });
  const x0 = x;
  for (let i = 0; i < 20000; i++) x = x.mul(1.0001);
  x.sum().backward();
  assert.ok(Math.abs(x0.grad!.item() - 1.0001 ** 20000) < 1e-6);
});

engine('in-place copy_ never records and keeps storage', () => {
  const x = zeros([2, 2]);
  const data = x.data;
  x.copy_(tensor([1, 2]));
  assert.is(x.data, data);
  assert.equal(x.toList(), [[1, 2], [1, 2]]);
});

engine.run();

const errors = suite('errors name the op and the shapes');

const throwsWith = (fn: () => unknown, cls: new (...a: any[]) => Error, ...parts: string[]) => {
  try {
    fn();
  } catch (e) {
    assert.instance(e, cls);
    assert.instance(e, PtslabError);
    for (const p of parts) assert.ok((e as Error).message.includes(p), `"${(e as Error).message}" should mention "${p}"`);
    return;
  }
  assert.unreachable(`expected a ${cls.name}`);
};

errors('broadcast mismatch', () => throwsWith(() => ones([2, 3]).add(ones([4, 3])), ShapeError, 'add', '[2, 3]', '[4, 3]'));
errors('matmul inner dims', () => throwsWith(() => ones([2, 3]).matmul(ones([4, 5])), ShapeError, 'matmul', '[2, 3]', '[4, 5]'));
errors('reshape size', () => throwsWith(() => ones([2, 3]).reshape(4, 2), ShapeError, 'reshape', '[2, 3]', '[4, 2]'));
errors('concat sizes', () => throwsWith(() => concat([ones([2, 3]), ones([2, 4])], 0), ShapeError, 'concat', '[2, 3]', '[2, 4]'));
errors('axis out of range', () => throwsWith(() => ones([2, 3]).sum(2), ArgumentError, 'sum', 'axis 2'));
errors('conv2d channels vs groups', () =>
  throwsWith(() => F.conv2d(ones([1, 4, 5, 5]), ones([2, 3, 3, 3]), null, { groups: 2 }), ShapeError, 'conv2d', '[1, 4, 5, 5]', '[2, 3, 3, 3]'));
errors('conv2d negative padding', () => throwsWith(() => F.conv2d(ones([1, 1, 5, 5]), ones([1, 1, 3, 3]), null, { padding: -1 }), ArgumentError, 'conv2d', 'padding'));
errors('conv2d zero stride', () => throwsWith(() => F.conv2d(ones([1, 1, 5, 5]), ones([1, 1, 3, 3]), null, { stride: 0 }), ArgumentError, 'conv2d', 'stride'));
errors('conv2d kernel larger than input', () => throwsWith(() => F.conv2d(ones([1, 1, 2, 2]), ones([1, 1, 3, 3])), ShapeError, 'conv2d', '[1, 1, 2, 2]'));
errors('conv2d 3-D input', () => throwsWith(() => F.conv2d(ones([1, 5, 5]), ones([1, 1, 3, 3])), ShapeError, 'conv2d', '[1, 5, 5]'));
errors('pool padding over half the kernel', () => throwsWith(() => F.maxPool2d(ones([1, 1, 5, 5]), { kernelSize: 2, padding: 2 }), ArgumentError, 'maxPool2d', 'padding'));
errors('pool on 3-D input', () => throwsWith(() => F.avgPool2d(ones([1, 5, 5]), { kernelSize: 2 }), ShapeError, 'avgPool2d', '[1, 5, 5]'));
errors('batchNorm2d stats shape', () =>
  throwsWith(() => F.batchNorm2d(ones([2, 3, 2, 2]), zeros([4]), ones([4])), ShapeError, 'batchNorm2d', 'runningMean', '[2, 3, 2, 2]'));
errors('batchNorm2d training with one value per channel', () =>
  throwsWith(() => F.batchNorm2d(ones([1, 3, 1, 1]), null, null, null, null, { training: true }), ArgumentError, 'batchNorm2d', '[1, 3, 1, 1]'));
errors('backward on a non-scalar without a gradient', () =>
  throwsWith(() => ones([2, 3], { requiresGrad: true }).mul(2).backward(), AutogradError, 'backward', '[2, 3]'));
errors('backward with a wrongly shaped gradient', () =>
  throwsWith(() => ones([2, 3], { requiresGrad: true }).mul(2).backward(ones([3, 2])), AutogradError, 'backward', '[3, 2]', '[2, 3]'));
errors('backward on a tensor that does not require grad', () => throwsWith(() => ones([1]).backward(), AutogradError, 'backward'));
errors('item on a multi-element tensor', () => throwsWith(() => ones([2]).item(), ShapeError, 'item', '[2]'));
errors('tensor data vs shape', () => throwsWith(() => tensor([1, 2, 3], [2, 2]), ShapeError, 'tensor', '[2, 2]'));
errors('ragged nested array', () => throwsWith(() => tensor([[1, 2], [3]] as number[][]), ShapeError, 'tensor', 'ragged'));
errors('crossEntropy target out of range', () => throwsWith(() => F.crossEntropy(ones([2, 3]), [0, 3]), ArgumentError, 'crossEntropy', 'target 1'));
errors('crossEntropy target count', () => throwsWith(() => F.crossEntropy(ones([2, 3]), [0]), ShapeError, 'crossEntropy', '[2, 3]'));
errors('engine asserts gradient shapes (a forgotten un-broadcast fails where it happens)', async () => {
  const { record } = await import('../core/autograd.js');
  const x = ones([2, 3], { requiresGrad: true });
  const y = record('buggyOp', x.detach().mul(2), [x], (g) => [g.sum(0)]);
  throwsWith(() => y.sum().backward(), AutogradError, 'buggyOp', 'input 0', '[3]', '[2, 3]');
});

errors.run();

const props = suite('tensor properties');

const shapeArb = arbShape({ maxDims: 4 });

props('broadcasting: result shape is the elementwise max, aligned right, and values match an explicit expand', () => {
  fc.assert(
    fc.property(shapeArb, fc.array(fc.boolean(), { maxLength: 4 }), fc.nat(4), fc.integer(), (a, keep, drop, seed) => {
      const b = a.map((d, i) => (keep[i] ? d : 1)).slice(Math.min(drop, a.length));
      const x = rand(a, { generator: new Generator(seed) });
      const y = rand(b, { generator: new Generator(seed + 1) });
      const z = x.mul(y);
      assert.equal(z.shape, a);
      assert.equal(list(z), list(x.mul(y.expand(a).contiguous())));
      assert.equal(list(y.add(x)), list(x.add(y)));
    }),
    { numRuns: 100 },
  );
});

props('views: permute twice by inverse is the identity; slices and transposes read the right elements', () => {
  fc.assert(
    fc.property(arbShape({ minDims: 1, maxDims: 4 }), fc.integer(), (s, seed) => {
      const x = rand(s, { generator: new Generator(seed) });
      const perm = s.map((_, i) => i).reverse();
      assert.equal(list(x.permute(perm).permute(perm)), list(x));
      assert.is(x.permute(perm).data, x.data, 'permute is a view');
      const last = s.length - 1;
      const sl = x.slice(last, 1, undefined, 2);
      const ref = list(x).filter((_, i) => (i % s[last]) >= 1 && ((i % s[last]) - 1) % 2 === 0);
      assert.equal(list(sl), ref);
    }),
    { numRuns: 100 },
  );
});

props('reductions: sum over all axes equals the sum over axes one by one; mean = sum / n', () => {
  fc.assert(
    fc.property(arbShape({ minDims: 1, maxDims: 4 }), fc.integer(), (s, seed) => {
      const x = randn(s, { dtype: 'float64', generator: new Generator(seed) });
      let y: Tensor = x;
      for (let i = s.length - 1; i >= 0; i--) y = y.sum(i);
      assert.ok(Math.abs(y.item() - x.sum().item()) < 1e-9);
      assert.ok(Math.abs(x.mean().item() * x.size - x.sum().item()) < 1e-9);
      assert.equal(x.sum(s.map((_, i) => i), true).shape, s.map(() => 1));
    }),
    { numRuns: 100 },
  );
});

props('creation: seeded random tensors repeat under manualSeed; arange and full', () => {
  manualSeed(7);
  const a = list(randn([5]));
  const u = list(rand([5]));
  manualSeed(7);
  assert.equal(list(randn([5])), a);
  assert.equal(list(rand([5])), u);
  assert.ok(u.every((v) => v >= 0 && v < 1));
  assert.equal(list(arange(5)), [0, 1, 2, 3, 4]);
  assert.equal(list(arange(1, 2, 0.25)), [1, 1.25, 1.5, 1.75]);
  assert.equal(list(full([2], 3.5)), [3.5, 3.5]);
  assert.is(zeros([2], { dtype: 'float64' }).dtype, 'float64');
  assert.is(tensor(3).item(), 3);
  assert.equal(tensor(3).shape, []);
  // A large seeded normal sample has the right moments.
  const n = randn([20000], { dtype: 'float64', generator: new Generator(1) });
  assert.ok(Math.abs(n.mean().item()) < 0.03 && Math.abs(n.var().item() - 1) < 0.05);
});

props('float64 is kept through ops and mixed dtypes promote to float64', () => {
  const a = ones([2], { dtype: 'float64' });
  assert.is(a.add(ones([2])).dtype, 'float64');
  assert.is(ones([2]).mul(2).dtype, 'float32');
  assert.is(F.conv2d(ones([1, 1, 3, 3], { dtype: 'float64' }), ones([1, 1, 3, 3], { dtype: 'float64' })).dtype, 'float64');
});

props('argmax takes the first maximum; toList nests', () => {
  const x = tensor([[1, 5, 5], [7, 0, 7]]);
  assert.equal(x.argmax(1).toList(), [1, 0]);
  assert.equal(x.argmax(0).toList(), [1, 0, 1]);
  assert.equal(x.T.toList(), [[1, 7], [5, 0], [5, 7]]);
});

props.run();
