// safetensors: round trip (values, order, metadata, I64 num_batches_tracked, 8-byte space padding), reading every
// dtype from hand-made files, each validation error (truncation, absurd header length, overlapping / out-of-range
// offsets, unknown dtype, shape vs byte length) as a CheckpointError naming file and tensor, and fast-check fuzzing of
// headers and bytes (and of torch.save files) that must never escape as anything but a CheckpointError.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, tensor, randn, manualSeed, saveSafetensors, loadSafetensors, readSafetensors, parseSafetensors, serializeSafetensors, parseCheckpoint, CheckpointError } from '../index.js';

const FIX = fileURLToPath(new URL('../../tests/fixtures/torch/', import.meta.url));

/** A safetensors image from a header object and a data section. */
function image(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): Uint8Array {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

test('round trip: values, key order, metadata, I64 num_batches_tracked, header padded with spaces to 8 bytes', () => {
  manualSeed(0);
  const record: Record<string, Tensor> = {
    'conv.weight': randn([4, 3, 3, 3]),
    'bn.running_var': randn([4]).abs(),
    'bn.num_batches_tracked': tensor(12345, []),
    'fc.weight': randn([5, 4]).transpose(0, 1), // strided: written contiguous
    scalar: tensor(2.5, []),
  };
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-st-'));
  try {
    const path = join(dir, 'model.safetensors');
    saveSafetensors(path, record, { framework: 'ptslab', note: 'round trip' });
    const bytes = readFileSync(path);
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    assert.is((8 + n) % 8, 0, 'data starts on an 8-byte boundary');
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    assert.match(text, /^\{"__metadata__":\{"framework":"ptslab","note":"round trip"\},"conv\.weight":\{"dtype":"F32"/);
    assert.match(text, /\} {0,7}$/, 'the JSON is followed by at most 7 spaces of padding');
    const header = JSON.parse(text);
    assert.is(header['bn.num_batches_tracked'].dtype, 'I64');
    const back = readSafetensors(path);
    assert.equal(back.metadata, { framework: 'ptslab', note: 'round trip' });
    assert.equal(Object.keys(back.tensors), Object.keys(record));
    for (const [k, t] of Object.entries(record)) {
      assert.equal([...back.tensors[k].shape], [...t.shape], k);
      assert.equal(Array.from(back.tensors[k].toArray()), Array.from(t.toArray()), k);
    }
    assert.is(loadSafetensors(path)['bn.num_batches_tracked'].item(), 12345);
  } finally {
    rmSync(dir, { recursive: true });
  }
  assert.throws(() => serializeSafetensors({ num_batches_tracked: tensor(1.5, []) }), (e: Error) => e instanceof CheckpointError && /not an integer/.test(e.message));
});

test('reads the fixture PyTorch-side writer produced (metadata included)', () => {
  const f = readSafetensors(FIX + 'resnet20.safetensors');
  assert.is(f.metadata.model, 'resnet20');
  assert.is(Object.keys(f.tensors).length, 128);
  assert.is(f.tensors['bn1.num_batches_tracked'].item(), 7);
});

test('reads F16, BF16, F64, I64, I32, U8 and BOOL', () => {
  const data = new Uint8Array(64);
  const dv = new DataView(data.buffer);
  [0x3c00, 0xc000, 0x3555, 0x0001, 0x7c00].forEach((h, i) => dv.setUint16(i * 2, h, true)); // 1, -2, 0.333, 2^-24, inf
  [0x3fc0, 0xbe80].forEach((h, i) => dv.setUint16(10 + i * 2, h, true)); // bf16 1.5, -0.25
  dv.setFloat64(16, 1e-300, true);
  dv.setBigInt64(24, -(2n ** 50n), true);
  dv.setInt32(32, -7, true);
  data.set([200, 1], 36);
  const header = {
    h: { dtype: 'F16', shape: [5], data_offsets: [0, 10] },
    b: { dtype: 'BF16', shape: [2], data_offsets: [10, 14] },
    d: { dtype: 'F64', shape: [], data_offsets: [16, 24] },
    l: { dtype: 'I64', shape: [1], data_offsets: [24, 32] },
    i: { dtype: 'I32', shape: [1], data_offsets: [32, 36] },
    u: { dtype: 'U8', shape: [1], data_offsets: [36, 37] },
    o: { dtype: 'BOOL', shape: [1], data_offsets: [37, 38] },
  };
  const t = parseSafetensors(image(header, data), 'dtypes.safetensors').tensors;
  assert.equal(Array.from(t.h.toArray()), [1, -2, Math.fround(0.333251953125), 2 ** -24, Infinity]);
  assert.equal(Array.from(t.b.toArray()), [1.5, -0.25]);
  assert.is(t.d.item(), 1e-300);
  assert.is(t.l.item(), -(2 ** 50));
  assert.equal([t.i.item(), t.u.item(), t.o.item()], [-7, 200, 1]);
  const big = new Uint8Array(8);
  new DataView(big.buffer).setBigInt64(0, 2n ** 60n + 1n, true);
  assert.throws(() => parseSafetensors(image({ x: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, big), 'big.safetensors'), /'x'.*not exactly representable/);
});

const entry = (dtype: string, shape: number[], offs: number[]) => ({ dtype, shape, data_offsets: offs });

test('each malformed file is a CheckpointError naming the file and the tensor', () => {
  const good = serializeSafetensors({ w: tensor([1, 2, 3, 4], [2, 2]) });
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty', new Uint8Array(3), /too short/],
    ['truncated header', good.subarray(0, 20), /runs past the end/],
    ['truncated data', good.subarray(0, good.length - 4), /'w'.*outside/],
    ['absurd header length', (() => { const b = good.slice(); new DataView(b.buffer).setBigUint64(0, 2n ** 60n, true); return b; })(), /exceeds the 100000000-byte limit/],
    ['not JSON', image(null, new Uint8Array(0), '{"w": '), /not valid UTF-8 JSON/],
    ['array header', image([1, 2], new Uint8Array(0)), /not a JSON object/],
    ['unknown dtype', image({ w: entry('F8', [1], [0, 1]) }, new Uint8Array(1)), /'w'.*unknown dtype "F8"/],
    ['prototype dtype', image({ w: entry('constructor', [1], [0, 1]) }, new Uint8Array(1)), /'w'.*unknown dtype/],
    ['shape vs bytes', image({ w: entry('F32', [2, 3], [0, 16]) }, new Uint8Array(16)), /'w'.*needs 24 bytes but data_offsets span 16/],
    ['negative dim', image({ w: entry('F32', [-1], [0, 4]) }, new Uint8Array(4)), /'w'.*shape/],
    ['out of range', image({ w: entry('F32', [4], [0, 16]) }, new Uint8Array(8)), /'w'.*outside the 8-byte data section/],
    ['reversed', image({ w: entry('F32', [0], [8, 4]) }, new Uint8Array(8)), /'w'.*outside/],
    ['overlap', image({ a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [4, 12]) }, new Uint8Array(12)), /'a'.*'b'.*overlap/],
    ['bad metadata', image({ __metadata__: { k: 1 } }, new Uint8Array(0)), /__metadata__ value of 'k'/],
    ['proto key', image(null, new Uint8Array(4), '{"__proto__": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'), /'__proto__'/],
  ];
  for (const [what, bytes, pattern] of cases) {
    try {
      parseSafetensors(bytes, `${what}.safetensors`);
      assert.unreachable(`${what}: accepted`);
    } catch (e) {
      assert.instance(e, CheckpointError, what);
      assert.match((e as Error).message, new RegExp(`${what}\\.safetensors`), what);
      assert.match((e as Error).message, pattern, what);
    }
  }
});

/** Runs parse and accepts success or a CheckpointError; anything else (TypeError, RangeError) fails the property. */
function neverCrashes(parse: () => unknown): boolean {
  try {
    parse();
    return true;
  } catch (e) {
    if (e instanceof CheckpointError) return true;
    throw e;
  }
}

const dim = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(-1, 1.5, 2 ** 53, 1e300), fc.anything());
const entryArb = fc.record({
  dtype: fc.oneof(fc.constantFrom('F32', 'F64', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BOOL', 'F8', 'toString', '__proto__'), fc.anything()),
  shape: fc.oneof(fc.array(dim, { maxLength: 4 }), fc.anything()),
  data_offsets: fc.oneof(fc.tuple(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 80 })), fc.array(fc.oneof(fc.integer({ min: -5, max: 100 }), fc.anything()), { maxLength: 3 }), fc.anything()),
}, { requiredKeys: [] });
const headerArb = fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__metadata__', '__proto__', 'constructor')), fc.oneof(entryArb, fc.anything()), { maxKeys: 5 });

test('fuzz: random headers never escape as anything but CheckpointError (1,500 cases)', () => {
  fc.assert(
    fc.property(headerArb, fc.uint8Array({ maxLength: 80 }), fc.integer({ min: -3, max: 3 }), fc.boolean(), (header, data, lenDelta, lie) => {
      const img = image(header, data);
      if (lie) {
        const dv = new DataView(img.buffer);
        dv.setBigUint64(0, BigInt(Math.max(0, Number(dv.getBigUint64(0, true)) + lenDelta)), true);
      }
      return neverCrashes(() => parseSafetensors(img, 'fuzz.safetensors')) && neverCrashes(() => parseCheckpoint(img, 'fuzz.bin'));
    }),
    { numRuns: 1500, seed: 20240611 },
  );
});

test('fuzz: random bytes and byte flips of real files (safetensors and torch.save) never crash (1,500 cases)', () => {
  const files = ['resnet20.safetensors', 'tiny.pth', 'tiny-legacy.pth', 'dtypes.pth'].map((f) => readFileSync(FIX + f));
  // The small files in full, and the first 4 kB of the big one, keep each case fast.
  const seeds = files.map((b) => (b.length > 8192 ? b.subarray(0, 4096) : b));
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: seeds.length - 1 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.option(fc.nat(), { nil: undefined }),
      (which, flips, cut) => {
        const b = seeds[which].slice();
        for (const [at, v] of flips) b[at % b.length] = v;
        const img = cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
        return neverCrashes(() => parseCheckpoint(img, 'flipped.bin'));
      },
    ),
    { numRuns: 1200, seed: 7 },
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => neverCrashes(() => parseCheckpoint(b, 'random.bin'))), { numRuns: 300, seed: 8 });
});

test.run();
