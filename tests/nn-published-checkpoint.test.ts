// Published checkpoints (nn/io/published.ts) against files PyTorch wrote (tests/fixtures/published/, from
// scripts/make-published-checkpoint-fixture.py): the akamaster layout {'best_prec1', 'state_dict'} of an
// nn.DataParallel model without num_batches_tracked, in zip and legacy format, and {'model': ...} /
// {'net': {'state_dict': ...}} wrappers. Checks unwrapping and extras, the 'module.' strip, prefix renames (in order,
// collisions, unused rules), num_batches_tracked filled with 0, the loaded model's logits against PyTorch's, the
// strict error naming the leftover keys with rename hints, malformed rename rules, and `ptslab convert --rename`.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { ArgumentError, Tensor, full, noGrad, tensor } from '../core/index.js';
import {
  AdaptiveAvgPool2d, BatchNorm2d, CheckpointError, Conv2d, Linear, Module, ReLU, Sequential, StateDictError,
  fillBatchNormBuffers, init, loadPublished, parseRename, readPublishedCheckpoint, serializeSafetensors, serializeTorchZip, suggestRenames,
} from '../nn/index.js';
import { BasicBlock, makeStage } from '../nn/models/resnet.js';
import { convertWithReport } from '../scripts/commands/convert.js';
import { throwsMatching } from './helpers/throws.js';

const FIX = fileURLToPath(new URL('../../tests/fixtures/published/', import.meta.url));
const CLI = fileURLToPath(new URL('../scripts/cli.js', import.meta.url));
const expected = JSON.parse(readFileSync(FIX + 'expected.json', 'utf8')) as {
  logits: number[];
  tensors: Record<string, { shape: number[]; sum: number; first: number[] }>;
};
/** The akamaster keys (after 'module.'), in the order PyTorch saved them. */
const AKAMASTER_KEYS = Object.keys(expected.tensors);
const SHORTCUT_RENAMES = ['layer2.0.shortcut.=layer2.0.downsample.', 'layer3.0.shortcut.=layer3.0.downsample.'];
const ALL_RENAMES = ['linear.=fc.', ...SHORTCUT_RENAMES];

/** The fixture's network in ptslab: the tiny CIFAR ResNet-8 (4, 8, 16 channels) with torchvision / ptslab names. */
class TinyCifarResNet extends Module {
  private readonly conv1 = this.registerModule('conv1', new Conv2d(3, 4, 3, { padding: 1, bias: false }));
  private readonly bn1 = this.registerModule('bn1', new BatchNorm2d(4));
  private readonly relu = this.registerModule('relu', new ReLU());
  private readonly layers = [
    this.registerModule('layer1', makeStage(BasicBlock, 4, 4, 1, 1)),
    this.registerModule('layer2', makeStage(BasicBlock, 4, 8, 1, 2)),
    this.registerModule('layer3', makeStage(BasicBlock, 8, 16, 1, 2)),
  ];
  private readonly avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
  private readonly fc = this.registerModule('fc', new Linear(16, 10));

  protected override forward(x: Tensor): Tensor {
    let y = this.relu.call(this.bn1.call(this.conv1.call(x)));
    for (const l of this.layers) y = l.call(y);
    return this.fc.call(this.avgpool.call(y).flatten(1));
  }
}
const tiny = () => init.skipInit(() => new TinyCifarResNet());
/** akamaster name -> ptslab name. */
const ptslabName = (k: string) => k.replace('.shortcut.', '.downsample.').replace(/^linear\./, 'fc.');

/** The fixture input x[i] = ((i % 17) - 8) / 8, [2, 3, 8, 8] (exact in float32). */
const input = () => tensor(Array.from({ length: 2 * 3 * 8 * 8 }, (_, i) => ((i % 17) - 8) / 8), [2, 3, 8, 8]);

function expectLogits(model: Module, what: string): void {
  model.eval();
  const got = Array.from(noGrad(() => model.call(input())).toArray());
  const worst = Math.max(...got.map((v, i) => Math.abs(v - expected.logits[i])));
  assert.is(got.length, 20);
  assert.ok(worst <= 1e-5, `${what}: logits differ from PyTorch's by up to ${worst}`);
}

/** Every tensor of a record (named by `name`) has PyTorch's shape, first values (exact) and sum. */
function expectTensors(record: Record<string, Tensor>, name: (k: string) => string, what: string): void {
  for (const [k, e] of Object.entries(expected.tensors)) {
    const t = record[name(k)];
    assert.ok(t, `${what}: '${name(k)}' is missing`);
    assert.equal([...t.shape], e.shape, `${what}: ${k} shape`);
    const a = Array.from(t.toArray());
    assert.equal(a.slice(0, 4), e.first, `${what}: ${k} first values`);
    const sum = a.reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(sum - e.sum) <= 1e-9 * Math.max(1, Math.abs(e.sum)), `${what}: ${k} sum ${sum}, PyTorch ${e.sum}`);
  }
}

for (const file of ['akamaster-zip.th', 'akamaster-legacy.th']) {
  test(`${file}: 'state_dict' unwrapped, best_prec1 an extra, 'module.' stripped, no num_batches_tracked`, () => {
    const r = readPublishedCheckpoint(FIX + file);
    assert.is(r.format, file.includes('legacy') ? 'torch-legacy' : 'torch-zip');
    assert.equal(r.unwrapped, ['state_dict']);
    assert.equal(r.extras, { best_prec1: 91.2 });
    assert.is(r.prefixStripped, 'module.');
    assert.is(r.renamed, 0);
    assert.equal(Object.keys(r.stateDict), AKAMASTER_KEYS);
    assert.ok(!Object.keys(r.stateDict).some((k) => k.endsWith('num_batches_tracked')));
    assert.is(r.dtypes['linear.weight'], 'float32');
    expectTensors(r.stateDict, (k) => k, file);
  });

  test(`${file}: loadPublished with renames fills 9 num_batches_tracked with 0 and gives PyTorch's logits`, () => {
    const model = tiny();
    noGrad(() => (model.stateDict()['bn1.num_batches_tracked'] as Tensor).copy_(5));
    const rep = loadPublished(model, FIX + file, { rename: ALL_RENAMES });
    assert.is(rep.renamed, 12, 'linear.weight/bias and 5 keys per shortcut');
    assert.equal(rep.unusedRenames, []);
    assert.equal(rep.filled, [
      'bn1', 'layer1.0.bn1', 'layer1.0.bn2', 'layer2.0.bn1', 'layer2.0.bn2', 'layer2.0.downsample.1', 'layer3.0.bn1', 'layer3.0.bn2', 'layer3.0.downsample.1',
    ].map((m) => `${m}.num_batches_tracked`));
    assert.equal([rep.missingKeys, rep.unexpectedKeys], [[], []]);
    const sd = model.stateDict();
    for (const k of rep.filled) assert.is(sd[k].item(), 0, `${k} is filled with 0`);
    expectTensors(sd, ptslabName, `${file} loaded`);
    expectLogits(model, file);
  });
}

test("net-wrapper.pth: two wrappers deep ('net' > 'state_dict'), a tensor and an int beside them", () => {
  const r = readPublishedCheckpoint(FIX + 'net-wrapper.pth', { rename: ALL_RENAMES.map(parseRename) });
  assert.equal(r.unwrapped, ['net', 'state_dict']);
  assert.equal(r.extras, { acc: 'tensor [] float32', epoch: 7 });
  assert.is(r.prefixStripped, 'module.');
  assert.is(r.renamed, 12);
  expectTensors(r.stateDict, ptslabName, 'net-wrapper.pth');
  const model = tiny();
  assert.is(loadPublished(model, FIX + 'net-wrapper.pth', { rename: ALL_RENAMES }).filled.length, 9);
  expectLogits(model, 'net-wrapper.pth');
});

test("model-wrapper.pth: 'model' unwrapped, torchvision names and num_batches_tracked = 30 (int64) load as they are", () => {
  const r = readPublishedCheckpoint(FIX + 'model-wrapper.pth');
  assert.equal(r.unwrapped, ['model']);
  assert.equal(r.extras, { epoch: 30, arch: 'resnet8' });
  assert.is(r.prefixStripped, null);
  assert.is(r.dtypes['layer2.0.downsample.1.num_batches_tracked'], 'int64');
  assert.is(r.stateDict['layer2.0.downsample.1.num_batches_tracked'].item(), 30);
  const model = tiny();
  const rep = loadPublished(model, FIX + 'model-wrapper.pth', { rename: ['linear.=fc.'] });
  assert.equal(rep.filled, []);
  assert.equal(rep.unusedRenames, ['linear.=fc.']);
  assert.is(model.stateDict()['layer3.0.bn2.num_batches_tracked'].item(), 30);
  expectLogits(model, 'model-wrapper.pth');
});

test('strict loading stays the default: the error names the file, the leftover keys, what was done and the renames that fit', () => {
  let err: StateDictError | null = null;
  try {
    loadPublished(tiny(), FIX + 'akamaster-zip.th');
  } catch (e) {
    err = e as StateDictError;
  }
  assert.instance(err, StateDictError);
  const m = err!.message;
  assert.ok(m.startsWith(`${FIX}akamaster-zip.th: loadStateDict into TinyCifarResNet: `), m);
  assert.match(m, /missing keys \(14\): layer2\.0\.downsample\.0\.weight, layer2\.0\.downsample\.1\.weight, /);
  assert.match(m, /unexpected keys \(12\): layer2\.0\.shortcut\.0\.weight, /);
  assert.match(m, /checkpoint read with unwrapped 'state_dict', 'module\.' stripped, no renames, 7 num_batches_tracked filled/);
  assert.match(m, /Renames that would map unexpected keys onto missing ones: 'layer2\.0\.shortcut\.=layer2\.0\.downsample\.' \(5 keys\), 'layer3\.0\.shortcut\.=layer3\.0\.downsample\.' \(5 keys\), 'linear\.=fc\.' \(2 keys\)/);
  assert.equal(err!.unexpectedKeys, [...AKAMASTER_KEYS.filter((k) => k.includes('shortcut')), 'linear.weight', 'linear.bias']);
  assert.equal(err!.missingKeys.filter((k) => k.startsWith('fc.')), ['fc.weight', 'fc.bias']);
  // The shortcut BNs have no running_mean under their ptslab name, so their counters are reported missing, not filled.
  assert.ok(err!.missingKeys.includes('layer2.0.downsample.1.num_batches_tracked'));

  // Only the classifier left over: named, with its rename; an unused rule is reported.
  throwsMatching(
    () => loadPublished(tiny(), FIX + 'akamaster-legacy.th', { rename: [...SHORTCUT_RENAMES, 'classifier.=fc.'] }),
    StateDictError,
    /missing keys \(2\): fc\.weight, fc\.bias\. unexpected keys \(2\): linear\.weight, linear\.bias .*10 keys renamed by 'layer2\.0\.shortcut\.=layer2\.0\.downsample\.', 'layer3\.0\.shortcut\.=layer3\.0\.downsample\.', 'classifier\.=fc\.'.*'linear\.=fc\.' \(2 keys\)\. Rename rules that matched no key: 'classifier\.=fc\.'/,
  );
  // strict: false loads what fits and returns the leftovers.
  const model = tiny();
  const rep = loadPublished(model, FIX + 'akamaster-zip.th', { rename: SHORTCUT_RENAMES, strict: false });
  assert.equal(rep.unexpectedKeys, ['linear.weight', 'linear.bias']);
  assert.equal(rep.missingKeys, ['fc.weight', 'fc.bias']);
  assert.equal(Array.from(model.stateDict()['conv1.weight'].toArray()).slice(0, 4), expected.tensors['conv1.weight'].first);
});

test('parseRename: FROM=TO, an empty TO drops a prefix; malformed rules are ArgumentErrors saying what is expected', () => {
  assert.equal(parseRename('linear.=fc.'), ['linear.', 'fc.']);
  assert.equal(parseRename('backbone.='), ['backbone.', '']);
  throwsMatching(() => parseRename('linear.fc.'), ArgumentError, /rename rule "linear\.fc\.": has no '='; expected FROM=TO, a key prefix and its replacement \(e\.g\. 'linear\.=fc\.'\)/);
  throwsMatching(() => parseRename('a=b=c'), ArgumentError, /rename rule "a=b=c": has 2 '=' signs, not one/);
  throwsMatching(() => parseRename('=fc.'), ArgumentError, /rename rule "=fc\.": the prefix before '=' is empty/);
  throwsMatching(() => parseRename('linear. = fc.'), ArgumentError, /contains whitespace/);
  throwsMatching(() => loadPublished(tiny(), FIX + 'akamaster-zip.th', { rename: ['linear.fc.'] }), ArgumentError, /has no '='/);
  throwsMatching(() => readPublishedCheckpoint(FIX + 'akamaster-zip.th', { rename: [['', 'x']] }), ArgumentError, /rename\[0\] must be a \[from, to\] pair of strings with a non-empty from/);
});

const rec = (keys: string[]) => Object.fromEntries(keys.map((k, i) => [k, full([2], i)]));

test('renames apply in order, each to what the previous left; collisions are errors; safetensors input too', () => {
  const bytes = serializeTorchZip(rec(['module.a.x', 'module.b.y', 'module.c.z']));
  const r = readPublishedCheckpoint(bytes, { rename: [['a.', 'b.'], ['b.', 'c.'], ['q.', 'r.']] });
  assert.equal(Object.keys(r.stateDict), ['c.x', 'c.y', 'c.z']);
  assert.equal(Array.from(r.stateDict['c.x'].toArray()), [0, 0]);
  assert.equal(Array.from(r.stateDict['c.y'].toArray()), [1, 1]);
  assert.is(r.renamed, 2);
  assert.equal(r.unusedRenames, ['q.=r.']);
  assert.equal([r.unwrapped, r.extras, r.prefixStripped], [[], {}, 'module.']);
  throwsMatching(
    () => readPublishedCheckpoint(serializeTorchZip(rec(['module.a.x', 'module.c.x'])), { rename: [['a.', 'c.']], source: 'clash.pth' }),
    CheckpointError,
    /clash\.pth: keys 'module\.a\.x' and 'module\.c\.x' both become 'c\.x' \(after stripping 'module\.' and renaming\); check the rename rules/,
  );
  throwsMatching(() => readPublishedCheckpoint(serializeTorchZip(rec(['a.x', 'a.y'])), { rename: [['a.x', '']] }), CheckpointError, /key 'a\.x' becomes "", which is not a usable key/);
  // 'module.' is only stripped when every key has it.
  assert.is(readPublishedCheckpoint(serializeTorchZip(rec(['module.a', 'b']))).prefixStripped, null);
  const st = readPublishedCheckpoint(serializeSafetensors(rec(['module.fc.weight', 'module.bn.num_batches_tracked'])), { rename: [['fc.', 'head.']] });
  assert.equal([st.format, Object.keys(st.stateDict), st.renamed], ['safetensors', ['head.weight', 'bn.num_batches_tracked'], 1]);
  assert.equal(st.dtypes, { 'head.weight': 'float32', 'bn.num_batches_tracked': 'int64' });
});

/** A torch.save zip whose data.pkl is the given pickle bytes (protocol 2). */
const zipOf = (pickle: number[]) => zipSync({ 'archive/data.pkl': new Uint8Array(pickle), 'archive/version': new TextEncoder().encode('3\n') }, { level: 0 });
const uni = (s: string) => [0x58, s.length, 0, 0, 0, ...new TextEncoder().encode(s)];

test('no state_dict inside: the error lists the top-level keys (non-tensor values survive the unpickler)', () => {
  // {'epoch': 3, 'lr': 0.1, 'history': []}
  const dict = [0x80, 2, 0x7d, 0x28, ...uni('epoch'), 0x4b, 3, ...uni('lr'), 0x47, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a, ...uni('history'), 0x5d, 0x75, 0x2e];
  throwsMatching(
    () => readPublishedCheckpoint(zipOf(dict), { source: 'meta.pth' }),
    CheckpointError,
    /meta\.pth: no state_dict found: the top level has 3 keys \('epoch', 'lr', 'history'\); expected a dict of tensors, or one nested under 'state_dict' \/ 'model_state_dict' \/ 'model' \/ 'net' \/ 'module'/,
  );
  // {'model': {'epoch': 3}}: a wrapper key without tensors under it.
  throwsMatching(() => readPublishedCheckpoint(zipOf([0x80, 2, 0x7d, ...uni('model'), 0x7d, ...uni('epoch'), 0x4b, 3, 0x73, 0x73, 0x2e])), CheckpointError, /<buffer>: no state_dict found: the top level has 1 keys \('model'\)/);
  throwsMatching(() => readPublishedCheckpoint(zipOf([0x80, 2, 0x5d, 0x2e]), { source: 'list.pth' }), CheckpointError, /list\.pth: the checkpoint holds a list\/tuple of 0, not a dict/);
  throwsMatching(() => readPublishedCheckpoint(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), { source: 'junk.bin' }), CheckpointError, /junk\.bin: not a safetensors file, a torch\.save zip archive or a legacy torch\.save pickle/);
  throwsMatching(() => readPublishedCheckpoint(join(FIX, 'no-such.pth')), CheckpointError, /no-such\.pth: cannot read/);
});

test('fillBatchNormBuffers: only BatchNorm counters that are missing beside their running_mean, in place, with 0', () => {
  const model = init.skipInit(() => new Sequential(new Conv2d(1, 2, 1), new BatchNorm2d(2), new BatchNorm2d(2), new BatchNorm2d(2, { trackRunningStats: false })));
  const record: Record<string, Tensor> = {
    '1.weight': full([2], 1), '1.bias': full([2], 0), '1.running_mean': full([2], 0.5), '1.running_var': full([2], 2),
    '2.running_mean': full([2], 0), '2.num_batches_tracked': full([], 4),
  };
  assert.equal(fillBatchNormBuffers(model, record), ['1.num_batches_tracked']);
  assert.is(record['1.num_batches_tracked'].item(), 0);
  assert.equal([...record['1.num_batches_tracked'].shape], []);
  assert.is(record['2.num_batches_tracked'].item(), 4, 'a counter that is there is kept');
  assert.equal(fillBatchNormBuffers(model, {}), [], 'a BN absent from the record stays missing');
  assert.equal(fillBatchNormBuffers(init.skipInit(() => new BatchNorm2d(3)), { running_mean: full([3], 0) }), ['num_batches_tracked']);
});

test('suggestRenames: prefix pairs that map unexpected keys onto missing ones, greedily by count', () => {
  assert.equal(suggestRenames(['fc.weight', 'fc.bias', 'conv.weight'], ['linear.weight', 'linear.bias']), [{ rule: 'linear.=fc.', keys: 2 }]);
  assert.equal(suggestRenames(['conv1.weight', 'bn1.weight'], ['backbone.conv1.weight', 'backbone.bn1.weight']), [{ rule: 'backbone.=', keys: 2 }]);
  assert.equal(suggestRenames(['a.weight'], ['b.bias']), []);
});

test('ptslab convert: a published .th to .pth with --rename loads strictly; .pth -> .safetensors -> .pth gives the same bytes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-published-'));
  try {
    const out = join(dir, 'resnet8.pth');
    const r = convertWithReport(FIX + 'akamaster-legacy.th', out, { rename: ALL_RENAMES });
    assert.equal([r.tensors, r.elements, r.output, r.read.unwrapped, r.read.renamed], [47, 5382, 'pth', ['state_dict'], 12]);
    const model = tiny();
    const rep = loadPublished(model, out);
    assert.equal([rep.format, rep.unwrapped, rep.prefixStripped, rep.filled.length], ['torch-zip', [], null, 9]);
    expectLogits(model, 'converted resnet8.pth');
    convertWithReport(out, join(dir, 'resnet8.safetensors'));
    convertWithReport(join(dir, 'resnet8.safetensors'), join(dir, 'again.pth'));
    assert.equal(readFileSync(join(dir, 'again.pth')), readFileSync(out));
    // int64 stays int64 through convert (safetensors I64 -> LongStorage).
    convertWithReport(FIX + 'model-wrapper.pth', join(dir, 'tv.pth'));
    assert.is(readPublishedCheckpoint(join(dir, 'tv.pth')).dtypes['bn1.num_batches_tracked'], 'int64');
    throwsMatching(() => convertWithReport(out, join(dir, 'x.bin')), CheckpointError, /the output must be a \.safetensors file or a torch\.save file \(\.pth, \.pt, \.th\)/);

    // The command line: repeated --rename (before or after the positionals), and a malformed rule is a usage error.
    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
    const ok = cli(['convert', '--rename', 'linear.=fc.', FIX + 'akamaster-zip.th', join(dir, 'cli.pth'), '--rename', SHORTCUT_RENAMES[0], '--rename', SHORTCUT_RENAMES[1], '--rename', 'nothing.=here.']);
    assert.is(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /unwrapped 'state_dict'; left out 'best_prec1'; stripped 'module\.'; renamed 12 keys/);
    assert.match(ok.stdout, /wrote .*cli\.pth: 47 tensors, 5,382 elements; read back and verified equal/);
    assert.match(ok.stderr, /warning: --rename 'nothing\.=here\.' matched no key/);
    loadPublished(tiny(), join(dir, 'cli.pth'));
    const bad = cli(['convert', FIX + 'akamaster-zip.th', join(dir, 'bad.pth'), '--rename', 'linear.fc.']);
    assert.is(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /rename rule "linear\.fc\.": has no '='/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test.run();
