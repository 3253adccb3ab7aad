// A state_dict that does not fit: StateDictError's message counts the missing keys, unexpected keys and shape
// mismatches and names the first 5 of each (then '...'), its fields keep the full lists; architectureOf names the
// known architecture a set of keys belongs to (resnet20 is not resnet56), or null.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { zeros, type Tensor } from '../core/index.js';
import { Linear, Sequential, StateDictError, models } from '../nn/index.js';
import { architectureOf } from '../nn/train/index.js';

const linears = (n: number) => new Sequential(...Array.from({ length: n }, () => new Linear(1, 1)));

function errorOf(f: () => unknown): StateDictError {
  try {
    f();
  } catch (e) {
    assert.instance(e, StateDictError);
    return e as StateDictError;
  }
  throw new Error('expected a StateDictError');
}

test('the message gives the counts and the first 5 keys, then "..."; exactly 5 are listed without it', () => {
  const net = linears(4);
  const record: Record<string, Tensor> = { '0.weight': zeros([1, 2]), a: zeros([1]), b: zeros([1]), c: zeros([1]), d: zeros([1]), e: zeros([1]) };
  const err = errorOf(() => net.loadStateDict(record));
  assert.is(
    err.message,
    'loadStateDict into Sequential: missing keys (7): 0.bias, 1.weight, 1.bias, 2.weight, 2.bias, ... (2 more). ' +
      'unexpected keys (5): a, b, c, d, e. shape mismatches (1): 0.weight: checkpoint [1, 2], model [1, 1]',
  );
  assert.equal([...err.missingKeys], ['0.bias', '1.weight', '1.bias', '2.weight', '2.bias', '3.weight', '3.bias']);
  assert.equal([...err.unexpectedKeys], ['a', 'b', 'c', 'd', 'e']);
  assert.equal([...err.shapeMismatches], ['0.weight: checkpoint [1, 2], model [1, 1]']);
});

test('shape mismatches: the first 5 in the message, all on the error', () => {
  const net = linears(7);
  const record = Object.fromEntries(Object.keys(net.stateDict()).map((k) => [k, zeros([2])]));
  const err = errorOf(() => net.loadStateDict(record));
  assert.is(
    err.message,
    'loadStateDict into Sequential: shape mismatches (14): 0.weight: checkpoint [2], model [1, 1]; 0.bias: checkpoint [2], model [1]; ' +
      '1.weight: checkpoint [2], model [1, 1]; 1.bias: checkpoint [2], model [1]; 2.weight: checkpoint [2], model [1, 1]; ... (9 more)',
  );
  assert.is(err.shapeMismatches.length, 14);
  assert.is(err.shapeMismatches[13], '6.bias: checkpoint [2], model [1]');
  assert.is(err.missingKeys.length + err.unexpectedKeys.length, 0);
});

test('a whole-model mismatch stays short; architectureOf names what the checkpoint is', () => {
  const r20 = models.resnet20({ numClasses: 10 });
  const r56 = models.resnet56({ numClasses: 10 });
  const r56keys = Object.keys(r56.stateDict());
  const err = errorOf(() => r20.loadStateDict(r56.stateDict()));
  const own = new Set(Object.keys(r20.stateDict()));
  const extra = r56keys.filter((k) => !own.has(k));
  assert.is(extra.length, 216, 'resnet56 has 6 more blocks per stage than resnet20: 3 * 6 * 12 keys');
  assert.equal([...err.unexpectedKeys], extra);
  assert.is(err.missingKeys.length, 0);
  assert.ok(err.message.startsWith(`loadStateDict into CifarResNet: unexpected keys (216): ${extra.slice(0, 5).join(', ')}, ... (211 more)`), err.message);
  assert.not.ok(err.message.includes(extra[5]), 'the sixth key is not listed');
  assert.ok(err.message.length < 300, `${err.message.length} characters`);
  assert.equal(architectureOf(r56keys), { arch: 'resnet56', matched: 344, total: 344, shortcut: 'B' });
});

test('architectureOf: resnet18, resnet20 (not resnet56), mobilenetv2; partial key sets; null for unrelated keys', () => {
  const r20 = Object.keys(models.resnet20({ numClasses: 10 }).stateDict());
  assert.equal(architectureOf(r20), { arch: 'resnet20', matched: 128, total: 128, shortcut: 'B' });
  const r18 = Object.keys(models.resnet18({ numClasses: 10, stemStride: 1, stemPool: false }).stateDict());
  assert.equal(architectureOf(r18), { arch: 'resnet18', matched: 122, total: 122 });
  // A pre-0.4 PyTorch checkpoint has no num_batches_tracked (20 BatchNorms in resnet18) and a new head is dropped.
  const old18 = r18.filter((k) => !k.endsWith('num_batches_tracked') && !k.startsWith('fc.'));
  assert.is(old18.length, 100);
  assert.equal(architectureOf(old18), { arch: 'resnet18', matched: 100, total: 122 });
  const mb = Object.keys(models.mobilenetV2({ numClasses: 10, widthMult: 0.25 }).stateDict());
  assert.equal(architectureOf(mb), { arch: 'mobilenetv2', matched: 314, total: 314 });
  assert.is(architectureOf(['foo.weight', 'bar.bias', 'conv1.weight', 'fc.weight']), null);
  assert.is(architectureOf(r18.map((k) => `module.${k}`)), null, 'names only: a prefix matches nothing');
  assert.is(architectureOf([]), null);
});

test.run();
