// Models against torchvision: parameter counts, state_dict keys in order and shapes (tests/fixtures/torch/
// model-keys.json from scripts/make-torch-fixtures.py), output shapes, seeded initialisation statistics, and the
// small-input variants (stemStride / stemPool).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { manualSeed, noGrad, randn, models, init, Conv2d, Linear, BatchNorm2d, type Module } from '../index.js';

const FIX = fileURLToPath(new URL('../../tests/fixtures/torch/', import.meta.url));
const keys = JSON.parse(readFileSync(FIX + 'model-keys.json', 'utf8')) as Record<string, { numParameters: number; stateDict: Array<[string, number[]]> }>;

const cases: Array<[string, () => Module, number, number]> = [
  ['resnet18', () => models.resnet18(), 11_689_512, 122],
  ['resnet34', () => models.resnet34(), 21_797_672, 218],
  ['resnet50', () => models.resnet50(), 25_557_032, 320],
  ['mobilenet_v2', () => models.mobilenetV2(), 3_504_872, 314],
  ['mobilenet_v2_w0.5', () => models.mobilenetV2({ widthMult: 0.5 }), keys['mobilenet_v2_w0.5'].numParameters, keys['mobilenet_v2_w0.5'].stateDict.length],
  ['resnet20', () => models.resnet20({ numClasses: 10 }), keys.resnet20.numParameters, keys.resnet20.stateDict.length],
  ['resnet56', () => models.resnet56({ numClasses: 10 }), keys.resnet56.numParameters, keys.resnet56.stateDict.length],
];

for (const [name, build, params, entries] of cases) {
  test(`${name}: ${params} parameters, ${entries} state_dict entries, keys and shapes as torchvision's`, () => {
    const model = init.skipInit(build);
    assert.is(model.numParameters(), params);
    assert.is(keys[name].numParameters, params, 'fixture disagrees with the issue numbers');
    const sd = Object.entries(model.stateDict()).map(([k, t]) => [k, [...t.shape]]);
    assert.is(sd.length, entries);
    assert.equal(sd, keys[name].stateDict);
  });
}

test('resnet20 / resnet56 use option-B shortcuts named downsample.0 / downsample.1', () => {
  const k = Object.keys(models.resnet20().stateDict());
  assert.ok(k.includes('layer2.0.downsample.0.weight') && k.includes('layer2.0.downsample.1.running_var'));
  assert.not.ok(k.some((x) => x.startsWith('layer1.0.downsample')), 'no shortcut projection where shapes agree');
  assert.not.ok(k.some((x) => x.startsWith('layer4')));
});

test("option-A CIFAR ResNets: option B's keys less the downsample entries; 1-channel 28x28 and odd map sides run", () => {
  const a = init.skipInit(() => models.resnet32({ shortcut: 'A', numClasses: 10, inChannels: 1 }));
  const b = Object.keys(init.skipInit(() => models.resnet32({ numClasses: 10, inChannels: 1 })).stateDict());
  assert.equal(Object.keys(a.stateDict()), b.filter((k) => !k.includes('.downsample.')));
  manualSeed(1);
  // 28 -> 14 -> 7 and 13 -> 7 -> 4: the strided conv and x[:, :, ::2, ::2] both round odd sides up.
  for (const side of [28, 13]) assert.equal([...noGrad(() => a.eval().call(randn([2, 1, side, side]))).shape], [2, 10]);
});

test('output shapes; stemStride / stemPool give small-input variants with the same keys', () => {
  manualSeed(0);
  const x = randn([1, 1, 28, 28]);
  const r = models.resnet18({ numClasses: 10, inChannels: 1, stemStride: 1, stemPool: false });
  // A small input keeps the slow reference backend quick; with stride 1 and no pool 12x12 reaches layer4 at 2x2.
  const y = noGrad(() => r.eval().call(randn([1, 1, 12, 12])));
  assert.equal([...y.shape], [1, 10]);
  assert.equal(Object.keys(r.stateDict()), Object.keys(models.resnet18({ numClasses: 10, inChannels: 1 }).stateDict()));
  const m = models.mobilenetV2({ numClasses: 10, inChannels: 1, widthMult: 0.25, stemStride: 1 });
  assert.equal([...noGrad(() => m.eval().call(x)).shape], [1, 10]);
  const c = models.resnet20({ numClasses: 7 });
  assert.equal([...noGrad(() => c.eval().call(randn([2, 3, 16, 16]))).shape], [2, 7]);
});

/** Mean and standard deviation of a tensor's values. */
function stats(values: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < values.length; i++) {
    s += values[i];
    s2 += values[i] * values[i];
  }
  const mean = s / values.length;
  return { mean, std: Math.sqrt(s2 / values.length - mean * mean) };
}

test('initialisation as torchvision: kaiming normal fan_out convs, BN 1/0, Linear default (resnet) or N(0, 0.01) (mobilenet)', () => {
  manualSeed(3);
  const r = models.resnet56();
  const conv = r.getSubmodule('layer3.2.conv1') as Conv2d; // [64, 64, 3, 3]: std sqrt(2 / (64 * 9))
  const s = stats(conv.weight.toArray());
  assert.ok(Math.abs(s.std / Math.sqrt(2 / 576) - 1) < 0.03, `conv std ${s.std}`);
  assert.ok(Math.abs(s.mean) < 0.003);
  const bn = r.getSubmodule('layer3.2.bn1') as BatchNorm2d;
  assert.ok(bn.weight!.toArray().every((v) => v === 1) && bn.bias!.toArray().every((v) => v === 0));
  const fc = r.getSubmodule('fc') as Linear; // PyTorch default: U(-1/sqrt(64), 1/sqrt(64))
  const w = fc.weight.toArray();
  assert.ok(w.every((v) => Math.abs(v) <= 1 / 8) && Math.max(...w) > 0.1, 'fc weight is U(-1/8, 1/8)');
  const m = models.mobilenetV2({ numClasses: 100, widthMult: 0.25 });
  const lin = m.getSubmodule('classifier.1') as Linear;
  assert.ok(Math.abs(stats(lin.weight.toArray()).std / 0.01 - 1) < 0.03);
  assert.ok(lin.bias!.toArray().every((v) => v === 0));
  // Seeded: the same seed gives the same weights, another seed others.
  manualSeed(3);
  assert.equal(Array.from((models.resnet56().getSubmodule('layer3.2.conv1') as Conv2d).weight.toArray().slice(0, 8)), Array.from(conv.weight.toArray().slice(0, 8)));
});

test.run();
