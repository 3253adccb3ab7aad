// Fuzzing the binary dataset readers (nn/data/idx.ts, nn/data/cifar.ts) with fast-check: valid files are generated,
// then mutated (bit flips, overwrites, truncations, appended and deleted bytes), given absurd header sizes and wrong
// element types, gzipped (IDX) and sometimes damaged after gzipping. Every case must end in a correct load (checked
// against the bytes) or a DataError whose message names the file or folder; never a TypeError/RangeError, never a
// slow case. FUZZ_RUNS cases per reader (1,000 in `npm test`, more under `npm run fuzz`).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cifar10, cifar100, DataError, loadIdxFolder, MNIST_CLASSES, readIdxFile } from '../nn/data/index.js';
import { FUZZ_RUNS, fuzz, mutate, mutationsArb, outcome, Tally, tmp, type Mutation } from './reliability-common.js';

const ABSURD = [0xffffffff, 0x80000000, 0x7fffffff, 1e9, 65536, 0] as const;

/** A valid unsigned-byte IDX image of the given dims; pixel k = (seed + 7k) mod 256. */
function idxBytes(dims: number[], seed: number): Uint8Array {
  const size = dims.reduce((a, b) => a * b, 1);
  const b = new Uint8Array(4 + 4 * dims.length + size);
  const dv = new DataView(b.buffer);
  b[2] = 0x08;
  b[3] = dims.length;
  dims.forEach((d, k) => dv.setUint32(4 + 4 * k, d, false));
  for (let k = 0; k < size; k++) b[4 + 4 * dims.length + k] = (seed + 7 * k) & 255;
  return b;
}

/** Header damage aimed at the fields a reader sizes its work by. */
type HeaderHit = { kind: 'dim'; k: number; value: number } | { kind: 'type'; value: number } | { kind: 'ndim'; value: number } | { kind: 'none' };
const headerHitArb: fc.Arbitrary<HeaderHit> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
  fc.record({ kind: fc.constant('dim' as const), k: fc.nat(3), value: fc.oneof(fc.constantFrom(...ABSURD), fc.nat({ max: 0xffffffff })) }),
  fc.record({ kind: fc.constant('type' as const), value: fc.constantFrom(0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x00, 0xff) }),
  fc.record({ kind: fc.constant('ndim' as const), value: fc.integer({ min: 0, max: 255 }) }),
);

function hitHeader(b: Uint8Array, h: HeaderHit): Uint8Array {
  const out = b.slice();
  const dv = new DataView(out.buffer);
  if (h.kind === 'dim' && 8 + 4 * h.k <= out.length) dv.setUint32(4 + 4 * h.k, h.value, false);
  else if (h.kind === 'type' && out.length > 2) out[2] = h.value;
  else if (h.kind === 'ndim' && out.length > 3) out[3] = h.value;
  return out;
}

const dimsArb = fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 3 });
/** How the file lands on disk: plain, gzipped, or gzipped and then damaged. */
const wrapArb = fc.oneof(fc.constant({ gzip: false, after: [] as Mutation[] }), fc.record({ gzip: fc.constant(true), after: fc.oneof(fc.constant([] as Mutation[]), mutationsArb) }));

function onDisk(b: Uint8Array, wrap: { gzip: boolean; after: Mutation[] }): Uint8Array {
  return wrap.gzip ? mutate(gzipSync(b), wrap.after) : b;
}

test(`IDX files: ${FUZZ_RUNS} fuzzed files through readIdxFile`, () => {
  const dir = tmp('idx');
  const tally = new Tally('IDX file (readIdxFile)');
  let n = 0;
  fuzz([dimsArb, fc.nat(255), headerHitArb, mutationsArb, wrapArb], (dims, seed, hit, ms, wrap) => {
    const plain = mutate(hitHeader(idxBytes(dims, seed), hit), ms);
    const file = join(dir, `case-${n++}-idx3-ubyte${wrap.gzip ? '.gz' : ''}`);
    writeFileSync(file, onDisk(plain, wrap));
    const intact = hit.kind === 'none' && ms.length === 0 && wrap.after.length === 0;
    return outcome(tally, file, () => readIdxFile(file), (r) => {
      const size = r.dims.reduce((a, b) => a * b, 1);
      if (r.data.length !== size || r.dims.length < 1) return false;
      if (intact) assert.equal([...r.dims], dims);
      // The data are the bytes after the header of the (possibly mutated) plain file.
      if (!wrap.after.length) for (let k = 0; k < Math.min(size, 16); k++) if (r.data[k] !== plain[4 + 4 * r.dims.length + k]) return false;
    }, DataError);
  });
  rmSync(dir, { recursive: true, force: true });
  tally.done(50, 50);
});

test(`IDX folders: ${FUZZ_RUNS} fuzzed image/label pairs through loadIdxFolder (MNIST layout)`, () => {
  const root = tmp('idxdir');
  const tally = new Tally('IDX folder (loadIdxFolder)');
  let n = 0;
  const pairArb = fc.record({ count: fc.integer({ min: 0, max: 4 }), side: fc.integer({ min: 0, max: 5 }), labelMax: fc.constantFrom(9, 10, 255), which: fc.constantFrom('images', 'labels', 'both'), labelDelta: fc.constantFrom(0, 0, 0, 1, -1) });
  fuzz([pairArb, fc.nat(255), headerHitArb, mutationsArb, wrapArb], (p, seed, hit, ms, wrap) => {
    const dir = join(root, `case-${n++}`);
    mkdirSync(dir);
    let images = idxBytes([p.count, p.side, p.side], seed);
    let labels = idxBytes([Math.max(0, p.count + p.labelDelta)], seed);
    for (let k = 8; k < labels.length; k++) labels[k] %= p.labelMax + 1;
    if (p.which !== 'labels') images = mutate(hitHeader(images, hit), ms);
    if (p.which !== 'images') labels = mutate(hitHeader(labels, hit), ms);
    writeFileSync(join(dir, `train-images-idx3-ubyte${wrap.gzip ? '.gz' : ''}`), onDisk(images, wrap));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), labels);
    return outcome(tally, dir, () => loadIdxFolder(dir, 'train', { classes: MNIST_CLASSES }), (ds) => {
      for (let i = 0; i < ds.length; i++) {
        const img = ds.raw(i);
        if (img.height < 1 || img.width < 1 || img.data.length !== img.height * img.width || ds.label(i) > 9) return false;
      }
    }, DataError);
  });
  rmSync(root, { recursive: true, force: true });
  tally.done(20, 50);
});

const REC = 3072;

/** CIFAR records: `prefix` label bytes then 3072 pixels (CHW); labels below `classes`, pixels from `seed`. */
function cifarBytes(records: number, prefix: number, classes: number, seed: number): Uint8Array {
  const b = new Uint8Array(records * (prefix + REC));
  for (let r = 0; r < records; r++) {
    const base = r * (prefix + REC);
    for (let k = 0; k < prefix; k++) b[base + k] = (seed + 13 * r + k) % classes;
    for (let k = 0; k < REC; k++) b[base + prefix + k] = (seed + r + 3 * k) & 255;
  }
  return b;
}

test(`CIFAR binary: ${FUZZ_RUNS} fuzzed batch files through cifar10 / cifar100`, () => {
  const root = tmp('cifar');
  const tally = new Tally('CIFAR binary (cifar10, cifar100)');
  let n = 0;
  const layoutArb = fc.record({
    variant: fc.constantFrom('cifar10', 'cifar100'),
    split: fc.constantFrom('train', 'test', 'test'),
    child: fc.boolean(),
    records: fc.integer({ min: 0, max: 3 }),
    badLabel: fc.option(fc.integer({ min: 10, max: 255 }), { nil: undefined }),
    missing: fc.boolean(),
  });
  fuzz([layoutArb, fc.nat(255), mutationsArb], (l, seed, ms) => {
    const dir = join(root, `case-${n++}`);
    const ten = l.variant === 'cifar10';
    const prefix = ten ? 1 : 2;
    const data = join(dir, l.child ? (ten ? 'cifar-10-batches-bin' : 'cifar-100-binary') : '');
    mkdirSync(data, { recursive: true });
    const names = ten ? (l.split === 'train' ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`) : ['test_batch.bin']) : [`${l.split}.bin`];
    const probe = ten ? 'test_batch.bin' : 'test.bin';
    const contents = names.map((_, i) => {
      let b = cifarBytes(l.records || 1, prefix, ten ? 10 : 100, seed + i);
      if (i === 0) {
        if (l.badLabel !== undefined && b.length) b[prefix - 1] = ten ? l.badLabel : 100 + (l.badLabel % 156);
        b = mutate(l.records === 0 ? new Uint8Array(0) : b, ms);
      }
      return b;
    });
    names.forEach((name, i) => {
      if (!(l.missing && i === names.length - 1 && names.length > 1)) writeFileSync(join(data, name), contents[i]);
    });
    if (!names.includes(probe)) writeFileSync(join(data, probe), cifarBytes(1, prefix, ten ? 10 : 100, seed));
    const load = () => (ten ? cifar10(dir, l.split as 'train' | 'test') : cifar100(dir, l.split as 'train' | 'test'));
    return outcome(tally, dir, load, (ds) => {
      const all = contents.flatMap((b) => [...b]);
      const rec = prefix + REC;
      if (ds.length !== all.length / rec) return false;
      for (let i = 0; i < ds.length; i++) {
        if (ds.label(i) !== all[i * rec + prefix - 1]) return false;
        const px = ds.raw(i).data;
        if (px.length !== REC || px[0] !== all[i * rec + prefix] || px[1] !== all[i * rec + prefix + 1024] || px[3 * 1023 + 2] !== all[i * rec + prefix + REC - 1]) return false;
      }
    }, DataError);
  });
  rmSync(root, { recursive: true, force: true });
  tally.done(50, 50);
});

test.run();
