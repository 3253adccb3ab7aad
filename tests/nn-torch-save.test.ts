// The .pth writer (nn/io/torch-save.ts): the zip layout torch.save uses (data.pkl, 64-byte aligned stored storages,
// version, byteorder; deterministic bytes), float32 / float64 / int64 storages read back exactly by ptslab's own
// loadCheckpoint, its errors, and PyTorch itself as the oracle: Debian's /usr/bin/python3 torch.load()s a .pth of a
// ptslab resnet20 (weights_only=True where the torch has it), loads it strictly into the same architecture written
// in PyTorch, and its eval logits and every tensor (dtype, shape, bytes) must equal ptslab's. Without torch those
// tests are reported skipped, with the reason.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';
import { Generator, Tensor, noGrad, rand, randn, tensor, full } from '../core/index.js';
import {
  BatchNorm2d, CheckpointError, TORCH_STORAGE_ALIGNMENT, loadCheckpoint, models, parseCheckpoint, readPublishedCheckpoint,
  saveTorch, serializeTorchZip,
} from '../nn/index.js';
import { throwsMatching } from './helpers/throws.js';

// Debian's interpreter (the python3 on PATH has no torch); PTSLAB_TORCH_PYTHON points elsewhere.
const PYTHON = process.env.PTSLAB_TORCH_PYTHON ?? '/usr/bin/python3';
/** scripts/, where the PyTorch model definitions the oracle imports live. */
const SCRIPTS = fileURLToPath(new URL('../../scripts/', import.meta.url));
const probe = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
const torchWhy = probe.error ? `${PYTHON} cannot run (${probe.error.message})` : probe.status !== 0 ? `${PYTHON} has no torch (${(probe.stderr ?? '').trim().split('\n').pop()})` : null;
const torchVersion = torchWhy ? null : probe.stdout.trim();
/** A test that needs PyTorch: run it, or report it skipped with the reason. */
const torchTest = (name: string, fn: () => void) => {
  if (!torchWhy) return test(name, fn);
  console.log(`SKIPPED nn-torch-save '${name}': ${torchWhy}`);
  test.skip(`${name} (PyTorch unavailable: ${torchWhy})`, fn);
};

interface LocalEntry {
  name: string;
  method: number;
  dataOffset: number;
  size: number;
}

/** The local file headers of a zip, in file order. */
function localEntries(zip: Uint8Array): LocalEntry[] {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const out: LocalEntry[] = [];
  let at = 0;
  while (dv.getUint32(at, true) === 0x04034b50) {
    const method = dv.getUint16(at + 8, true);
    const size = dv.getUint32(at + 18, true);
    const nameLen = dv.getUint16(at + 26, true);
    const extraLen = dv.getUint16(at + 28, true);
    const name = new TextDecoder().decode(zip.subarray(at + 30, at + 30 + nameLen));
    const dataOffset = at + 30 + nameLen + extraLen;
    out.push({ name, method, dataOffset, size });
    at = dataOffset + size;
  }
  return out;
}

/** A small state_dict of every element type and shape kind the writer handles. */
function mixed(): Record<string, Tensor> {
  const g = new Generator(3);
  const m = rand([4, 5], { generator: g, low: -1, high: 1 });
  return {
    'w.weight': randn([3, 2, 2, 2], { generator: g }),
    transposed: m.transpose(0, 1), // a strided view: written contiguous
    double: tensor([1 / 3, -2.5e-300, 1e300, Math.PI], undefined, { dtype: 'float64' }),
    'bn.num_batches_tracked': full([], 7),
    big: tensor([2 ** 40 + 3, -(2 ** 33), -1, 0, 255, 256, 65536, -129], undefined, { dtype: 'float64' }),
    scalar: full([], -0.75),
    five: rand([1, 2, 1, 2, 3], { generator: g }),
    empty: full([0, 3], 0),
  };
}
const MIXED_DTYPES = { big: 'int64' } as const;

test('layout: data.pkl, byteorder, storages stored and aligned to 64 bytes, version 3; the same bytes every time', () => {
  const sd = mixed();
  const zip = serializeTorchZip(sd, { dtypes: MIXED_DTYPES });
  const entries = localEntries(zip);
  assert.equal(entries.map((e) => e.name), [
    'archive/data.pkl', 'archive/byteorder', ...Object.keys(sd).map((_, i) => `archive/data/${i}`), 'archive/version',
  ]);
  assert.ok(entries.every((e) => e.method === 0), 'every entry is stored');
  for (const e of entries.filter((x) => x.name.startsWith('archive/data/'))) {
    assert.is(e.dataOffset % TORCH_STORAGE_ALIGNMENT, 0, `${e.name} starts at ${e.dataOffset}`);
  }
  const files = unzipSync(zip);
  assert.is(new TextDecoder().decode(files['archive/version']), '3\n');
  assert.is(new TextDecoder().decode(files['archive/byteorder']), 'little');
  // Storage sizes in bytes: float32 4, float64 8, int64 8 per element.
  assert.equal(Object.keys(sd).map((_, i) => files[`archive/data/${i}`].length), [24 * 4, 20 * 4, 4 * 8, 8, 8 * 8, 4, 12 * 4, 0]);
  const pkl = new TextDecoder('latin1').decode(files['archive/data.pkl']);
  assert.is(files['archive/data.pkl'][0], 0x80);
  assert.is(files['archive/data.pkl'][1], 2, 'pickle protocol 2');
  for (const s of ['collections\nOrderedDict\n', 'torch._utils\n_rebuild_tensor_v2\n', 'torch\nFloatStorage\n', 'torch\nDoubleStorage\n', 'torch\nLongStorage\n']) {
    assert.ok(pkl.includes(s), `data.pkl names ${JSON.stringify(s)}`);
  }
  assert.equal(serializeTorchZip(sd, { dtypes: MIXED_DTYPES }), zip, 'deterministic');
  assert.is(localEntries(serializeTorchZip(sd, { archiveName: 'resnet20' }))[0].name, 'resnet20/data.pkl');
});

test('round trip through loadCheckpoint: every key, shape, value and element type exactly', () => {
  const sd = mixed();
  const back = parseCheckpoint(serializeTorchZip(sd, { dtypes: MIXED_DTYPES }), 'mixed.pth');
  assert.equal(Object.keys(back), Object.keys(sd));
  for (const [k, t] of Object.entries(sd)) {
    assert.equal([...back[k].shape], [...t.shape], `${k} shape`);
    assert.equal(Array.from(back[k].toArray()), Array.from(t.toArray()), `${k} values`);
  }
  assert.is(back.double.dtype, 'float64');
  assert.is(back['w.weight'].dtype, 'float32');
  assert.equal(Array.from(back.big.toArray()), [2 ** 40 + 3, -(2 ** 33), -1, 0, 255, 256, 65536, -129]);
  const { dtypes } = readPublishedCheckpoint(serializeTorchZip(sd, { dtypes: MIXED_DTYPES }));
  assert.equal(dtypes, {
    'w.weight': 'float32', transposed: 'float32', double: 'float64', 'bn.num_batches_tracked': 'int64', big: 'int64', scalar: 'float32', five: 'float32', empty: 'float32',
  });
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-torch-save-'));
  try {
    const net = models.resnet20({ generator: new Generator(1) });
    saveTorch(join(dir, 'r20.pth'), net.stateDict());
    const r = loadCheckpoint(join(dir, 'r20.pth'));
    const own = net.stateDict();
    assert.equal(Object.keys(r), Object.keys(own));
    let differing = 0;
    for (const k of Object.keys(own)) {
      const a = own[k].toArray();
      const b = r[k].toArray();
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differing++;
    }
    assert.is(differing, 0, 'resnet20 elements that differ after the round trip');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('errors name the tensor and what was expected', () => {
  throwsMatching(() => serializeTorchZip({ 'a.num_batches_tracked': full([], 1.5) }), CheckpointError, /'a\.num_batches_tracked' element 0 is 1\.5, not an integer, so it cannot be written as int64/);
  throwsMatching(() => serializeTorchZip({ a: full([2], 1) }, { dtypes: { b: 'int64' } }), CheckpointError, /dtypes names 'b', which is not in the state_dict/);
  throwsMatching(() => serializeTorchZip({ a: full([2], 1) }, { dtypes: { a: 'float16' as never } }), CheckpointError, /'a': dtype 'float16' is not one of float32, float64, int64/);
  throwsMatching(() => serializeTorchZip({ a: [1, 2] as unknown as Tensor }), CheckpointError, /'a' is not a Tensor/);
  throwsMatching(() => serializeTorchZip({}, { archiveName: '../x' }), CheckpointError, /archive name '\.\.\/x' must be one path segment/);
  throwsMatching(() => saveTorch(join(tmpdir(), 'no-such-dir-ptslab', 'x.pth'), {}), CheckpointError, /saveTorch .*no-such-dir-ptslab.*cannot write/);
});

// PyTorch's side: torch.load, the option-B CIFAR ResNet-20 with ptslab's keys, strict load, eval logits, and per
// tensor its dtype, shape, the sha256 of its bytes and (when small) its values.
const ORACLE = String.raw`
import hashlib, json, sys
import torch, torch.nn as nn
torch.set_num_threads(1)
path, what = sys.argv[1], sys.argv[2]
try:
    sd = torch.load(path, weights_only=True)
    mode = 'weights_only'
except TypeError:
    sd = torch.load(path)
    mode = 'plain'

sys.path.insert(0, sys.argv[-1])
from torch_cifar_resnet import CifarResNet

out = {'mode': mode, 'type': type(sd).__name__, 'keys': list(sd.keys()), 'tensors': {}}
for k, v in sd.items():
    e = {'dtype': str(v.dtype), 'shape': list(v.shape), 'sha256': hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()}
    if v.numel() <= 64:
        e['values'] = v.flatten().tolist()
    out['tensors'][k] = e
if what != 'tensors':
    shape = json.loads(sys.argv[4])
    model = CifarResNet(20)
    result = model.load_state_dict(sd, strict=True)
    out['missing'], out['unexpected'] = list(result.missing_keys), list(result.unexpected_keys)
    model.eval()
    with open(sys.argv[3], 'rb') as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(shape)
    with torch.no_grad():
        out['logits'] = model(x).flatten().tolist()
    out['state_equal'] = all(torch.equal(model.state_dict()[k], sd[k]) for k in sd)
print('RESULT ' + json.dumps(out))
`;

interface OracleResult {
  mode: string;
  type: string;
  keys: string[];
  tensors: Record<string, { dtype: string; shape: number[]; sha256: string; values?: number[] }>;
  missing?: string[];
  unexpected?: string[];
  logits?: number[];
  state_equal?: boolean;
}

function oracle(dir: string, args: string[]): OracleResult {
  writeFileSync(join(dir, 'oracle.py'), ORACLE);
  const r = spawnSync(PYTHON, [join(dir, 'oracle.py'), ...args, SCRIPTS], { encoding: 'utf8', timeout: 300_000 });
  const line = r.stdout?.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `torch oracle failed (exit ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  return JSON.parse(line!.slice('RESULT '.length)) as OracleResult;
}

const TORCH_DTYPE = { float32: 'torch.float32', float64: 'torch.float64', int64: 'torch.int64' } as const;

/** sha256 of a tensor's elements as PyTorch holds them (little-endian float32 / float64 / int64). */
function sha256(t: Tensor, dtype: keyof typeof TORCH_DTYPE): string {
  const a = t.toArray();
  const bytes = dtype === 'float32' ? new Float32Array(a) : dtype === 'float64' ? new Float64Array(a) : BigInt64Array.from(Array.from(a as ArrayLike<number>, (v: number) => BigInt(v)));
  return createHash('sha256').update(new Uint8Array(bytes.buffer)).digest('hex');
}

torchTest(`PyTorch${torchVersion ? ` ${torchVersion}` : ''} loads a ptslab resnet20 .pth strictly: eval logits within 1e-5, every tensor identical`, () => {
  const g = new Generator(2024);
  const net = models.resnet20({ generator: g });
  // Non-trivial BN statistics and a counter, so every buffer matters.
  noGrad(() => {
    for (const m of net.modules()) {
      if (!(m instanceof BatchNorm2d)) continue;
      m.weight!.copy_(rand([m.numFeatures], { generator: g, low: 0.5, high: 1.5 }));
      m.bias!.copy_(rand([m.numFeatures], { generator: g, low: -0.2, high: 0.2 }));
      m.runningMean!.copy_(rand([m.numFeatures], { generator: g, low: -0.3, high: 0.3 }));
      m.runningVar!.copy_(rand([m.numFeatures], { generator: g, low: 0.5, high: 2 }));
      m.numBatchesTracked!.copy_(123);
    }
  });
  net.eval();
  const x = randn([2, 3, 32, 32], { generator: g });
  const logits = Array.from(noGrad(() => net.call(x)).toArray());
  const sd = net.stateDict();
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-torch-oracle-'));
  try {
    saveTorch(join(dir, 'resnet20.pth'), sd);
    writeFileSync(join(dir, 'x.bin'), new Uint8Array(new Float32Array(x.toArray()).buffer));
    const r = oracle(dir, [join(dir, 'resnet20.pth'), 'model', join(dir, 'x.bin'), JSON.stringify([2, 3, 32, 32])]);
    assert.is(r.mode, 'weights_only', 'torch.load(weights_only=True) accepted the file');
    assert.is(r.type, 'OrderedDict');
    assert.equal(r.keys, Object.keys(sd));
    assert.equal(r.missing, []);
    assert.equal(r.unexpected, []);
    assert.is(r.state_equal, true, 'the PyTorch model holds exactly the loaded tensors');
    for (const [k, t] of Object.entries(sd)) {
      const dtype = k.endsWith('num_batches_tracked') ? 'int64' : 'float32';
      assert.is(r.tensors[k].dtype, TORCH_DTYPE[dtype], `${k} dtype`);
      assert.equal(r.tensors[k].shape, [...t.shape], `${k} shape`);
      assert.is(r.tensors[k].sha256, sha256(t, dtype), `${k} bytes`);
    }
    assert.equal(r.tensors['layer2.0.bn1.num_batches_tracked'].values, [123]);
    assert.is(r.logits!.length, 20);
    const worst = Math.max(...logits.map((v, i) => Math.abs(v - r.logits![i])));
    const scale = Math.max(...logits.map(Math.abs));
    console.log(`  torch ${torchVersion} (${r.mode}): ${Object.keys(sd).length} tensors identical; logits max |diff| ${worst.toExponential(2)} (largest |logit| ${scale.toFixed(3)})`);
    assert.ok(worst <= 1e-5, `logits differ by up to ${worst} from PyTorch's`);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

torchTest('PyTorch reads float64, int64 (beyond 32 bits, negative), 0-d, 5-d, empty and strided-source tensors exactly', () => {
  const sd = mixed();
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-torch-oracle-'));
  try {
    saveTorch(join(dir, 'mixed.pth'), sd, { dtypes: MIXED_DTYPES });
    const r = oracle(dir, [join(dir, 'mixed.pth'), 'tensors']);
    assert.equal(r.keys, Object.keys(sd));
    const want = { 'w.weight': 'float32', transposed: 'float32', double: 'float64', 'bn.num_batches_tracked': 'int64', big: 'int64', scalar: 'float32', five: 'float32', empty: 'float32' } as const;
    for (const [k, t] of Object.entries(sd)) {
      assert.is(r.tensors[k].dtype, TORCH_DTYPE[want[k as keyof typeof want]], `${k} dtype`);
      assert.equal(r.tensors[k].shape, [...t.shape], `${k} shape`);
      assert.is(r.tensors[k].sha256, sha256(t, want[k as keyof typeof want]), `${k} bytes`);
    }
    assert.equal(r.tensors.big.values, [2 ** 40 + 3, -(2 ** 33), -1, 0, 255, 256, 65536, -129]);
    assert.equal(r.tensors.double.values, [1 / 3, -2.5e-300, 1e300, Math.PI]);
    assert.equal(r.tensors.transposed.values, Array.from(sd.transposed.toArray()));
    assert.equal(r.tensors.scalar.values, [-0.75]);
    assert.equal(r.tensors.empty.values, []);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test.run();
