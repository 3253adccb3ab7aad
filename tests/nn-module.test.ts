// Module mechanics: registration order and names, train/eval, stateDict round trip, loadStateDict's single error
// listing every missing / unexpected key and shape mismatch, forward hooks and their handles, BatchNorm's running
// statistics, and one training step lowering the loss.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  F, manualSeed, noGrad, randn, tensor, zeros, Tensor,
  Module, Parameter, Sequential, Conv2d, BatchNorm2d, ReLU, Linear, Flatten, Dropout, AdaptiveAvgPool2d, MaxPool2d, Identity,
  StateDictError, SGD, models,
} from '../index.js';

class Net extends Module {
  readonly features = this.registerModule('features', new Sequential(new Conv2d(2, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU()));
  readonly pool = this.registerModule('pool', new AdaptiveAvgPool2d(1));
  readonly head = this.registerModule('head', new Linear(4, 3));
  readonly scale = this.registerParameter('scale', new Parameter(tensor([1])));
  forward(x: Tensor): Tensor {
    return this.head.call(this.pool.call(this.features.call(x)).flatten(1)).mul(this.scale);
  }
}

test('registration: names, order (params, buffers, then children) and kinds', () => {
  const net = new Net();
  assert.equal(Object.keys(net.stateDict()), [
    'scale',
    'features.0.weight', 'features.0.bias',
    'features.1.weight', 'features.1.bias', 'features.1.running_mean', 'features.1.running_var', 'features.1.num_batches_tracked',
    'head.weight', 'head.bias',
  ]);
  assert.equal(net.namedParameters().map(([k]) => k), ['scale', 'features.0.weight', 'features.0.bias', 'features.1.weight', 'features.1.bias', 'head.weight', 'head.bias']);
  assert.equal(net.namedBuffers().map(([k]) => k), ['features.1.running_mean', 'features.1.running_var', 'features.1.num_batches_tracked']);
  assert.equal(net.namedModules().map(([k]) => k), ['', 'features', 'features.0', 'features.1', 'features.2', 'pool', 'head']);
  assert.ok(net.parameters().every((p) => p instanceof Parameter && p.requiresGrad && p.isLeaf));
  assert.is(net.numParameters(), 4 * 2 * 9 + 4 + 4 + 4 + 12 + 3 + 1);
  assert.throws(() => net.registerModule('head', new Identity()), /already registered/);
  assert.throws(() => net.registerParameter('a.b', new Parameter(zeros([1]))), /contain no '\.'/);
  assert.is(net.getSubmodule('features.1').constructor, BatchNorm2d);
  assert.throws(() => net.getSubmodule('features.7'), /no child '7'/);
});

test('train() / eval() reach every descendant; Dropout and BatchNorm follow the mode', () => {
  const net = new Sequential(new Dropout(0.5), new Sequential(new BatchNorm2d(2)));
  net.eval();
  assert.ok(net.modules().every((m) => !m.training));
  const x = randn([2, 2, 3, 3]);
  assert.equal(Array.from(net.call(x).toArray()), Array.from(noGrad(() => F.batchNorm2d(x, zeros([2]), tensor([1, 1]), null, null, { training: false })).toArray()));
  net.train();
  assert.ok(net.modules().every((m) => m.training));
});

test('stateDict shares storage; loadStateDict copies in place and round-trips', () => {
  manualSeed(1);
  const a = new Net();
  manualSeed(2);
  const b = new Net();
  const weightBefore = b.head.weight;
  b.loadStateDict(a.stateDict());
  assert.is(b.head.weight, weightBefore, 'parameters keep their identity (optimizers hold them)');
  for (const [k, t] of Object.entries(a.stateDict())) assert.equal(Array.from(b.stateDict()[k].toArray()), Array.from(t.toArray()), k);
  const sd = a.stateDict();
  sd['head.bias'].copy_(tensor([7, 8, 9]));
  assert.equal(Array.from(a.head.bias!.toArray()), [7, 8, 9], 'stateDict tensors are views of the module storage');
});

test('loadStateDict strict reports every missing key, unexpected key and shape mismatch in one error', () => {
  const net = new Net();
  const sd = { ...net.stateDict() };
  delete sd['head.bias'];
  delete sd['features.1.running_var'];
  sd['extra.weight'] = zeros([1]);
  sd['head.weight'] = zeros([3, 5]);
  const before = Array.from(net.features.at(0).stateDict().weight.toArray());
  try {
    net.loadStateDict(sd, { strict: true });
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, StateDictError);
    const err = e as StateDictError;
    assert.equal([...err.missingKeys], ['features.1.running_var', 'head.bias']);
    assert.equal([...err.unexpectedKeys], ['extra.weight']);
    assert.equal(err.shapeMismatches.length, 1);
    for (const part of ['features.1.running_var', 'head.bias', 'extra.weight', 'head.weight: checkpoint [3, 5], model [3, 4]']) {
      assert.ok(err.message.includes(part), `message lacks '${part}': ${err.message}`);
    }
  }
  assert.equal(Array.from(net.features.at(0).stateDict().weight.toArray()), before, 'nothing copied on error');
  // Non-strict: missing / unexpected are returned, shape mismatches still fail.
  delete sd['head.weight'];
  const r = net.loadStateDict(sd, { strict: false });
  assert.equal(r.missingKeys, ['features.1.running_var', 'head.weight', 'head.bias']);
  assert.equal(r.unexpectedKeys, ['extra.weight']);
  sd['head.weight'] = zeros([1]);
  assert.throws(() => net.loadStateDict(sd, { strict: false }), /shape mismatches/);
});

test('forward hooks see (module, input, output), can replace the output, and remove() detaches them', () => {
  const net = new Sequential(new Linear(2, 2), new ReLU());
  const lin = net.at(0);
  const seen: Array<[Module, Tensor, Tensor]> = [];
  const h1 = lin.registerForwardHook((m, i, o) => void seen.push([m, i, o]));
  const x = randn([3, 2]);
  const y = net.call(x);
  assert.is(seen.length, 1);
  assert.is(seen[0][0], lin);
  assert.is(seen[0][1], x);
  assert.equal(Array.from(y.toArray()), Array.from(seen[0][2].relu().toArray()));
  const h2 = net.at(1).registerForwardHook((_m, _i, o) => o.mul(0).add(5));
  assert.ok(Array.from(net.call(x).toArray()).every((v) => v === 5));
  assert.is(seen.length, 2);
  h1.remove();
  h2.remove();
  net.call(x);
  assert.is(seen.length, 2, 'removed hook not called');
  assert.not.ok(Array.from(net.call(x).toArray()).every((v) => v === 5));
});

test('BatchNorm2d: running statistics follow PyTorch (momentum, unbiased variance, cumulative when momentum is null)', () => {
  const bn = new BatchNorm2d(1, { momentum: null });
  const x1 = tensor([1, 2, 3, 4], [4, 1, 1, 1]);
  const x2 = tensor([2, 2, 4, 4], [4, 1, 1, 1]);
  bn.call(x1);
  bn.call(x2);
  const sd = bn.stateDict();
  // cumulative average of batch means (2.5, 3) and unbiased variances (5/3, 4/3)
  assert.ok(Math.abs(sd.running_mean.item() - 2.75) < 1e-6);
  assert.ok(Math.abs(sd.running_var.item() - 1.5) < 1e-6);
  assert.is(sd.num_batches_tracked.item(), 2);
  const bn2 = new BatchNorm2d(1);
  bn2.call(x1);
  assert.ok(Math.abs(bn2.stateDict().running_mean.item() - 0.25) < 1e-6);
  assert.ok(Math.abs(bn2.stateDict().running_var.item() - (0.9 + 0.1 * (5 / 3))) < 1e-6);
});

test('toString lists the modules', () => {
  const s = new Sequential(new Conv2d(3, 8, 3, { stride: 2, bias: false }), new MaxPool2d(2), new Flatten()).toString();
  assert.match(s, /Sequential\(\)\n {2}\(0\): Conv2d\(3, 8, kernelSize=3,3, stride=2,2/);
});

test('one SGD step on resnet20 lowers the training loss', () => {
  manualSeed(5);
  const model = models.resnet20({ numClasses: 4 });
  const x = randn([4, 3, 8, 8]);
  const y = [0, 1, 2, 3];
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const loss0 = F.crossEntropy(model.call(x), y);
  loss0.backward();
  opt.step();
  opt.zeroGrad();
  const loss1 = noGrad(() => F.crossEntropy(model.call(x), y));
  assert.ok(loss1.item() < loss0.item(), `loss ${loss0.item()} -> ${loss1.item()}`);
});

test.run();
