// CIFAR ResNets of every depth 6n + 2 with both shortcuts (nn/models/cifar-resnet.ts) against PyTorch's common
// implementation (akamaster/pytorch_resnet_cifar10; fixtures in tests/fixtures/cifar-resnet/ from
// scripts/make-cifar-resnet-fixture.py): resnet20 option A with torch-initialised weights and random BN statistics in
// eval and train mode (logits and every running statistic after one forward), resnet32 / resnet110 with both
// shortcuts on formula weights, parameter and key counts per depth, option A's keys (no shortcut entries), option A's
// shortcut by value and by gradient check, depth and shortcut errors, buildModel's shortcut and architectureOf's.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import {
  ArgumentError, Tensor, gradcheck, loadSafetensors, manualSeed, models, noGrad, randn, tensor, init, type Module,
} from '../index.js';
import { ARCHS, architectureOf, buildModel } from '../nn/train/index.js';
import { throwsMatching } from './helpers/throws.js';
import { formulaValue } from './helpers/formula-weights.js';

const FIX = fileURLToPath(new URL('../../tests/fixtures/cifar-resnet/', import.meta.url));
interface Golden {
  counts: Record<string, { numParameters: number; stateDictEntries: number }>;
  'resnet20-A-keys': Array<[string, number[]]>;
  formula: Record<string, { inputShape: number[]; evalLogits: number[] }>;
}
const golden = JSON.parse(readFileSync(FIX + 'golden.json', 'utf8')) as Golden;

/** The common implementation's key -> ptslab's (its classifier is `linear`, ptslab's `fc`). */
const ptslabKey = (k: string) => (k.startsWith('linear.') ? `fc.${k.slice('linear.'.length)}` : k);

/** Assert max |got - want| <= tol and print it. */
function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): number {
  assert.is(got.length, want.length, `${name}: lengths differ`);
  let diff = 0;
  for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
  console.log(`  ${name}: max abs diff ${diff.toExponential(2)}`);
  assert.ok(diff <= tol, `${name}: max abs diff ${diff} exceeds ${tol}`);
  return diff;
}

function loadResnet20A(): { model: Module; io: Record<string, Tensor> } {
  const sd = loadSafetensors(FIX + 'resnet20-A.safetensors');
  const record: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(sd)) record[ptslabKey(k)] = t;
  const model = init.skipInit(() => models.resnet20({ shortcut: 'A', numClasses: 10 }));
  model.loadStateDict(record, { strict: true });
  return { model, io: loadSafetensors(FIX + 'resnet20-A-io.safetensors') };
}

test('resnet20 option A: eval logits as PyTorch (torch weights, random BN statistics)', () => {
  const { model, io } = loadResnet20A();
  const y = noGrad(() => model.eval().call(io.input));
  assert.equal([...y.shape], [2, 10]);
  expectClose('resnet20-A eval logits', y.toArray(), io.eval_logits.toArray());
});

test('resnet20 option A: train-mode logits and every BN running statistic after one forward as PyTorch', () => {
  const { model, io } = loadResnet20A();
  const y = noGrad(() => model.train().call(io.input));
  expectClose('resnet20-A train logits', y.toArray(), io.train_logits.toArray());
  const sd = model.stateDict();
  const after = Object.keys(io).filter((k) => k.startsWith('after.'));
  assert.is(after.length, 2 * 19, '19 BatchNorms in resnet20, mean and var each');
  let worst = 0;
  for (const k of after) {
    const key = k.slice('after.'.length);
    assert.ok(sd[key], `no ${key} in the model`);
    const got = sd[key].toArray();
    const want = io[k].toArray();
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  }
  console.log(`  resnet20-A running statistics after a train forward: max abs diff ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-5, `running statistics differ by ${worst}`);
  assert.is(sd['bn1.num_batches_tracked'].toArray()[0], 8, 'num_batches_tracked 7 + 1');
});


/** Formula weights by ptslab key, each block's bn2.weight times 0.25 (exact), as the fixture script. */
function setFormulaWeights(model: Module): void {
  const record: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(model.stateDict())) {
    const v = formulaValue(k, t.shape);
    if (k.endsWith('.bn2.weight')) for (let i = 0; i < v.length; i++) v[i] *= 0.25;
    record[k] = tensor(Array.from(v), [...t.shape]);
  }
  model.loadStateDict(record);
}

for (const [name, depth, shortcut] of [['resnet32-A', 32, 'A'], ['resnet110-A', 110, 'A'], ['resnet32-B', 32, 'B'], ['resnet110-B', 110, 'B']] as const) {
  test(`${name}: eval logits with formula weights as PyTorch's common implementation`, () => {
    const want = golden.formula[name];
    assert.ok(want, `no ${name} in golden.json`);
    const model = init.skipInit(() => models.cifarResNet(depth, { shortcut, numClasses: 10 }));
    setFormulaWeights(model);
    const x = tensor(Array.from(formulaValue('input', want.inputShape)), want.inputShape);
    const y = noGrad(() => model.eval().call(x));
    expectClose(`${name} eval logits`, y.toArray(), want.evalLogits);
  });
}

test('parameter and state_dict entry counts of every depth 8..110 with both shortcuts, as PyTorch', () => {
  for (const depth of [8, 14, 20, 32, 44, 56, 110]) {
    for (const shortcut of ['A', 'B'] as const) {
      const want = golden.counts[`${depth}${shortcut}`];
      const m = init.skipInit(() => models.cifarResNet(depth, { shortcut, numClasses: 10 }));
      assert.is(m.numParameters(), want.numParameters, `resnet${depth} ${shortcut} parameters`);
      assert.is(Object.keys(m.stateDict()).length, want.stateDictEntries, `resnet${depth} ${shortcut} state_dict entries`);
    }
  }
  // The published sizes: resnet20 0.27M, resnet32 0.46M, resnet44 0.66M, resnet56 0.85M, resnet110 1.7M (option A).
  assert.is(golden.counts['20A'].numParameters, 269_722);
  assert.is(golden.counts['32A'].numParameters, 464_154);
  assert.is(golden.counts['44A'].numParameters, 658_586);
  assert.is(golden.counts['56A'].numParameters, 853_018);
  assert.is(golden.counts['110A'].numParameters, 1_727_962);
  const named: Array<[() => Module, number]> = [
    [() => models.resnet20({ shortcut: 'A' }), 269_722], [() => models.resnet32({ shortcut: 'A' }), 464_154],
    [() => models.resnet44({ shortcut: 'A' }), 658_586], [() => models.resnet56({ shortcut: 'A' }), 853_018],
    [() => models.resnet110({ shortcut: 'A' }), 1_727_962], [() => models.resnet20(), 272_474], [() => models.resnet110(), 1_730_714],
  ];
  for (const [build, n] of named) assert.is(init.skipInit(build).numParameters(), n);
});

test("option A: keys and shapes as PyTorch's (fc for linear), no shortcut entries, shortcut modules named as there", () => {
  const m = init.skipInit(() => models.resnet20({ shortcut: 'A' }));
  const sd = Object.entries(m.stateDict()).map(([k, t]) => [k, [...t.shape]]);
  assert.equal(sd, golden['resnet20-A-keys'].map(([k, s]) => [ptslabKey(k), s]));
  const keys = sd.map(([k]) => k as string);
  assert.not.ok(keys.some((k) => k.includes('shortcut') || k.includes('downsample')), 'option A has no shortcut parameters or buffers');
  const mods = new Map(m.namedModules());
  assert.instance(mods.get('layer2.0.shortcut'), models.OptionAShortcut);
  assert.instance(mods.get('layer3.0.shortcut'), models.OptionAShortcut);
  assert.is((mods.get('layer3.0.shortcut') as InstanceType<typeof models.OptionAShortcut>).padChannels, 16);
  assert.not.instance(mods.get('layer1.0.shortcut'), models.OptionAShortcut, 'identity where the shape does not change');
  assert.not.instance(mods.get('layer2.1.shortcut'), models.OptionAShortcut);
  assert.is(m.shortcut, 'A');
  // Option B stays the default, with its downsample keys, and draws the same initial weights as before.
  const kb = Object.keys(init.skipInit(() => models.resnet20()).stateDict());
  assert.ok(kb.includes('layer2.0.downsample.0.weight') && kb.includes('layer3.0.downsample.1.running_var'));
  assert.is(kb.length - keys.length, 12, 'two projections of 1 conv weight + 5 BN entries each');
  manualSeed(11);
  const b1 = models.resnet20().stateDict();
  manualSeed(11);
  const b2 = models.resnet20({ shortcut: 'B' }).stateDict();
  for (const k of Object.keys(b1)) assert.equal(b1[k].toArray(), b2[k].toArray(), k);
});

test('option A init as the common implementation: kaiming normal fan_in on conv and linear weights, BN 1 / 0', () => {
  manualSeed(4);
  const m = models.resnet56({ shortcut: 'A' });
  const sd = m.stateDict();
  const std = (v: ArrayLike<number>) => {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < v.length; i++) { s += v[i]; s2 += v[i] * v[i]; }
    return Math.sqrt(s2 / v.length - (s / v.length) ** 2);
  };
  const conv = sd['layer3.4.conv1.weight'].toArray(); // [64, 64, 3, 3]: fan_in 576
  assert.ok(Math.abs(std(conv) / Math.sqrt(2 / 576) - 1) < 0.03, `conv std ${std(conv)}`);
  const fc = sd['fc.weight'].toArray(); // [10, 64]: kaiming normal, std sqrt(2 / 64) = 0.177 (not U(-1/8, 1/8))
  assert.ok(Math.max(...fc.map(Math.abs)) > 0.125 && Math.abs(std(fc) / Math.sqrt(2 / 64) - 1) < 0.2, `fc std ${std(fc)}`);
  assert.ok(sd['layer2.0.bn2.weight'].toArray().every((v) => v === 1) && sd['layer2.0.bn2.bias'].toArray().every((v) => v === 0));
});

test('OptionAShortcut: x[:, :, ::2, ::2] with planes / 4 zero channels each side, by value and by gradient check', () => {
  const s = new models.OptionAShortcut(8); // 4 -> 8 channels
  const x = tensor(Array.from({ length: 2 * 4 * 5 * 3 }, (_, i) => i + 1), [2, 4, 5, 3]);
  const y = s.call(x);
  assert.equal([...y.shape], [2, 8, 3, 2], 'odd sides round up as ::2 does');
  const xv = x.toArray();
  const yv = y.toArray();
  for (let n = 0; n < 2; n++) {
    for (let c = 0; c < 8; c++) {
      for (let h = 0; h < 3; h++) {
        for (let w = 0; w < 2; w++) {
          const want = c < 2 || c >= 6 ? 0 : xv[((n * 4 + (c - 2)) * 5 + 2 * h) * 3 + 2 * w];
          assert.is(yv[((n * 8 + c) * 3 + h) * 2 + w], want, `[${n}, ${c}, ${h}, ${w}]`);
        }
      }
    }
  }
  assert.is(s.parameters().length, 0);
  manualSeed(2);
  const leaf = randn([2, 4, 5, 4], { dtype: 'float64' }).requiresGrad_();
  assert.ok(gradcheck((t) => s.call(t), [leaf], { atol: 1e-6, rtol: 1e-5 }));
});

test('option A trains: a backward through resnet20 A reaches every parameter', () => {
  manualSeed(6);
  const m = models.resnet20({ shortcut: 'A', numClasses: 3 });
  const y = m.train().call(randn([2, 3, 8, 8]));
  y.mul(y).sum().backward();
  for (const [k, p] of m.namedParameters()) {
    assert.ok(p.grad, `${k} has no gradient`);
    assert.ok(p.grad!.toArray().every(Number.isFinite), `${k}: non-finite gradient`);
  }
  const g = (m.getSubmodule('conv1') as unknown as { weight: Tensor }).weight.grad!.toArray();
  assert.ok(g.some((v) => v !== 0), 'the stem gets a non-zero gradient through the shortcuts');
});

test('depth must be 6n + 2; shortcut must be A or B', () => {
  for (const d of [21, 19, 7, 2, 0, -4, 20.5, Number.NaN]) {
    throwsMatching(() => models.cifarResNet(d), ArgumentError, /CifarResNet: depth must be 6n \+ 2 with n >= 1 .*got /);
  }
  throwsMatching(() => new models.CifarResNet(21, { shortcut: 'A' }), ArgumentError, /depth must be 6n \+ 2.*got 21/);
  assert.is(models.cifarResNetBlocks(8), 1);
  assert.is(models.cifarResNetBlocks(110), 18);
  const r8 = models.cifarResNet(8, { shortcut: 'A', numClasses: 4 });
  assert.equal([...noGrad(() => r8.eval().call(randn([1, 3, 8, 8]))).shape], [1, 4]);
  throwsMatching(() => models.resnet20({ shortcut: 'C' as 'A' }), ArgumentError, /CifarResNet: shortcut must be 'A' or 'B', got "C"/);
  throwsMatching(() => models.cifarResNet(32, { shortcut: 'a' as 'A' }), ArgumentError, /shortcut must be 'A' or 'B', got "a"/);
  throwsMatching(() => new models.OptionAShortcut(2), ArgumentError, /OptionAShortcut: planes must be an integer >= 4, got 2/);
});

test('buildModel: resnet20/32/44/56/110 take shortcut; other architectures reject it', () => {
  for (const a of ['resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110'] as const) assert.ok(ARCHS.includes(a), a);
  const base = { numClasses: 10, inChannels: 3, inputSize: 32 };
  const a32 = init.skipInit(() => buildModel('resnet32', { ...base, shortcut: 'A' })) as InstanceType<typeof models.CifarResNet>;
  assert.instance(a32, models.CifarResNet);
  assert.is(a32.depth, 32);
  assert.is(a32.shortcut, 'A');
  assert.is(a32.numParameters(), golden.counts['32A'].numParameters);
  const b110 = init.skipInit(() => buildModel('resnet110', base)) as InstanceType<typeof models.CifarResNet>;
  assert.is(b110.shortcut, 'B', 'B by default');
  assert.is(b110.numParameters(), golden.counts['110B'].numParameters);
  for (const arch of ['resnet18', 'resnet50', 'mobilenetv2'] as const) {
    throwsMatching(() => buildModel(arch, { ...base, shortcut: 'A' }), ArgumentError, new RegExp(`buildModel: shortcut applies to the CIFAR ResNets .* only, got shortcut 'A' for ${arch}`));
  }
});

test('architectureOf tells option A from option B and the depths apart', () => {
  const keysOf = (build: () => Module) => Object.keys(init.skipInit(build).stateDict());
  assert.equal(architectureOf(keysOf(() => models.resnet20({ shortcut: 'A' }))), { arch: 'resnet20', matched: 116, total: 116, shortcut: 'A' });
  assert.equal(architectureOf(keysOf(() => models.resnet20())), { arch: 'resnet20', matched: 128, total: 128, shortcut: 'B' });
  assert.equal(architectureOf(keysOf(() => models.resnet32({ shortcut: 'A' }))), { arch: 'resnet32', matched: 188, total: 188, shortcut: 'A' });
  assert.equal(architectureOf(keysOf(() => models.resnet110({ shortcut: 'B' }))), { arch: 'resnet110', matched: 668, total: 668, shortcut: 'B' });
  // The common implementation's keys as they are (linear.*): still option-A resnet20, two classifier keys short.
  const theirs = golden['resnet20-A-keys'].map(([k]) => k);
  assert.equal(architectureOf(theirs), { arch: 'resnet20', matched: 114, total: 116, shortcut: 'A' });
  const r18 = keysOf(() => models.resnet18());
  assert.equal(architectureOf(r18), { arch: 'resnet18', matched: 122, total: 122 }, 'no shortcut field for other architectures');
});

test.run();
