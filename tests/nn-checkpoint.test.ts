// Checkpoint readers against files PyTorch wrote (tests/fixtures/torch/): torch.save zip and legacy formats, wrapped
// state_dicts and 'module.' prefixes, strided views and every storage dtype, format detection by content, and the
// unpickler refusing os.system / builtins.eval. The state_dict loads into the equivalent ptslab module with strict.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { convertCheckpoint } from '../scripts/commands/convert.js';
import {
  Tensor, loadCheckpoint, loadTorchCheckpoint, parseCheckpoint, detectFormat, CheckpointError,
  Sequential, Conv2d, BatchNorm2d, ReLU, Flatten, Linear, init, loadSafetensors,
} from '../index.js';

const FIX = fileURLToPath(new URL('../../tests/fixtures/torch/', import.meta.url));
const values = JSON.parse(readFileSync(FIX + 'tiny-values.json', 'utf8')) as Record<string, { shape: number[]; values: number[] }>;
const TINY_KEYS = ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked', '4.weight', '4.bias'];

function expectValues(record: Record<string, Tensor>, keys: string[], what: string): void {
  assert.equal(Object.keys(record), keys, `${what}: keys`);
  for (const k of keys) {
    assert.equal([...record[k].shape], values[k].shape, `${what}: ${k} shape`);
    const got = Array.from(record[k].toArray());
    const want = values[k].values;
    // float32 values survive exactly; float64 / int64 tensors come back as float64.
    got.forEach((v, i) => assert.ok(v === want[i] || Math.abs(v - want[i]) <= 1e-7 * Math.abs(want[i]), `${what}: ${k}[${i}] = ${v}, torch has ${want[i]}`));
  }
}

for (const file of ['tiny.pth', 'tiny-legacy.pth', 'tiny-wrapped.pth', 'tiny-module-prefix.pth']) {
  test(`${file}: the state_dict PyTorch saved, unwrapped`, () => {
    expectValues(loadCheckpoint(FIX + file), TINY_KEYS, file);
  });
}

test('dtypes.pth: strided views and offsets into a shared storage, float16, bfloat16, float64, int64, nn.Parameter', () => {
  const r = loadTorchCheckpoint(FIX + 'dtypes.pth');
  expectValues(r, ['transposed', 'sliced', 'half', 'double', 'long', 'bfloat', 'parameter'], 'dtypes.pth');
  assert.is(r.double.dtype, 'float64');
  assert.is(r.half.dtype, 'float32');
});

test('the tiny state_dict loads into the equivalent ptslab model with strict = true', () => {
  const net = init.skipInit(() => new Sequential(new Conv2d(2, 3, 3, { padding: 1 }), new BatchNorm2d(3), new ReLU(), new Flatten(), new Linear(48, 5)));
  net.loadStateDict(loadCheckpoint(FIX + 'tiny.pth'), { strict: true });
  assert.is(net.stateDict()['1.num_batches_tracked'].item(), 1);
  assert.ok(Math.abs(net.stateDict()['0.weight'].toArray()[1] - values['0.weight'].values[1]) < 1e-9);
});

test('the format is decided by content, not by the file name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-ckpt-'));
  try {
    copyFileSync(FIX + 'tiny.pth', join(dir, 'looks-like.safetensors'));
    copyFileSync(FIX + 'resnet20.safetensors', join(dir, 'looks-like.pth'));
    expectValues(loadCheckpoint(join(dir, 'looks-like.safetensors')), TINY_KEYS, 'renamed .pth');
    assert.is(Object.keys(loadCheckpoint(join(dir, 'looks-like.pth'))).length, 128);
  } finally {
    rmSync(dir, { recursive: true });
  }
  assert.is(detectFormat(readFileSync(FIX + 'tiny.pth')), 'torch-zip');
  assert.is(detectFormat(readFileSync(FIX + 'tiny-legacy.pth')), 'torch-legacy');
  assert.is(detectFormat(readFileSync(FIX + 'resnet20.safetensors')), 'safetensors');
  assert.throws(() => parseCheckpoint(new TextEncoder().encode('hello, world'), 'greeting.txt'), (e: Error) => e instanceof CheckpointError && /greeting\.txt/.test(e.message));
});

function rejects(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, CheckpointError);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable('expected a CheckpointError');
}

test('malicious pickles are refused: os.system in a zip checkpoint, builtins.eval in a legacy one', () => {
  rejects(() => loadCheckpoint(FIX + 'malicious-os-system.pth'), /malicious-os-system\.pth.*refuses global '(posix|os)\.system'/);
  rejects(() => loadCheckpoint(FIX + 'malicious-eval-legacy.pth'), /refuses global '(__builtin__|builtins)\.eval'/);
  assert.not.ok(existsSync('/tmp/ptslab-pwned'));
});

/** A torch-style zip whose data.pkl is the given pickle bytes. */
const zipWith = (pkl: number[]) => zipSync({ 'archive/data.pkl': new Uint8Array(pkl), 'archive/version': new TextEncoder().encode('3\n') }, { level: 0 });
const ascii = (s: string) => [...new TextEncoder().encode(s)];

test('protocol-4 STACK_GLOBAL references are checked too; REDUCE of a non-callable is refused', () => {
  // PROTO 4, SHORT_BINUNICODE 'os', SHORT_BINUNICODE 'system', STACK_GLOBAL, ...
  const stackGlobal = [0x80, 4, 0x8c, 2, ...ascii('os'), 0x8c, 6, ...ascii('system'), 0x93, 0x8c, 2, ...ascii('ls'), 0x85, 0x52, 0x2e];
  rejects(() => parseCheckpoint(zipWith(stackGlobal), 'evil.pth'), /evil\.pth.*refuses global 'os\.system'/);
  // A storage type is allowed as a value but can never be called.
  const callStorage = [0x80, 2, 0x63, ...ascii('torch\nFloatStorage\n'), 0x29, 0x52, 0x2e];
  rejects(() => parseCheckpoint(zipWith(callStorage), 'odd.pth'), /REDUCE of torch\.FloatStorage is not allowed/);
  // Non-tensor values where a state_dict is expected.
  const dictOfInt = [0x80, 2, 0x7d, 0x58, 1, 0, 0, 0, ...ascii('a'), 0x4b, 3, 0x73, 0x2e];
  rejects(() => parseCheckpoint(zipWith(dictOfInt), 'ints.pth'), /entry 'a' is not a tensor/);
  rejects(() => parseCheckpoint(zipWith([0x80, 2, 0x7d]), 'cut.pth'), /truncated/);
});

test('corrupted torch files fail with CheckpointError naming the file', () => {
  const bytes = readFileSync(FIX + 'tiny.pth');
  rejects(() => parseCheckpoint(bytes.subarray(0, bytes.length >> 1), 'half.pth'), /half\.pth/);
  const legacy = readFileSync(FIX + 'tiny-legacy.pth');
  rejects(() => parseCheckpoint(legacy.subarray(0, legacy.length - 100), 'legacy-cut.pth'), /legacy-cut\.pth/);
});

test('ptslab convert: .pth (zip and legacy) to .safetensors, verified, I64 num_batches_tracked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-convert-'));
  try {
    for (const src of ['tiny.pth', 'tiny-legacy.pth']) {
      const out = join(dir, `${src}.safetensors`);
      assert.equal(convertCheckpoint(FIX + src, out), { tensors: 9, elements: 315 });
      expectValues(loadSafetensors(out), TINY_KEYS, `converted ${src}`);
      assert.match(readFileSync(out).toString('latin1', 0, 2000), /"1\.num_batches_tracked":\{"dtype":"I64"/);
    }
    assert.throws(() => convertCheckpoint(FIX + 'tiny.pth', join(dir, 'back.bin')), (e: Error) => e instanceof CheckpointError && /must be a \.safetensors file or a torch\.save file/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test.run();
