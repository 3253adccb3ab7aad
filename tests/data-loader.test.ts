// DataLoader and calibrationSubset: batch shapes and counts with and without drop_last, seeded shuffling (same seed
// same order, a new permutation each epoch), augmentation fixed per sample whatever the batch size, the worker path
// (ImageFolder) equal to the main-thread path, early exit, and calibration subsets fixed by seed.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ArrayDataset, DataLoader, ImageFolder, calibrationSubset, imagenetTrain, makeSyntheticImageNet, shutdownDecodePool,
  smallImageTrain, type Batch, type Dataset,
} from '../nn/data/index.js';

/** 23 images of 4x5x1, image i filled with value i, label i % 3. */
function tiny(n = 23): ArrayDataset {
  const px = new Uint8Array(n * 20);
  for (let i = 0; i < n; i++) px.fill(i, i * 20, (i + 1) * 20);
  return new ArrayDataset('tiny', px, Uint8Array.from({ length: n }, (_, i) => i % 3), { height: 4, width: 5, channels: 1 }, ['a', 'b', 'c']);
}
async function collect(dl: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of dl) out.push(b);
  return out;
}

const l = suite('DataLoader');

l('batch shapes, labels and values; last batch kept or dropped', async () => {
  const ds = tiny();
  const keep = new DataLoader(ds, { batchSize: 5 });
  assert.is(keep.length, 5);
  const bs = await collect(keep);
  assert.equal(bs.map((b) => b.images.shape), [[5, 1, 4, 5], [5, 1, 4, 5], [5, 1, 4, 5], [5, 1, 4, 5], [3, 1, 4, 5]]);
  assert.equal(Array.from(bs[1].indices), [5, 6, 7, 8, 9]);
  assert.equal(Array.from(bs[1].labels), [2, 0, 1, 2, 0]);
  const img = bs[1].images.toArray();
  assert.ok(Math.abs(img[20 * 2 + 7] - 7 / 255) < 1e-7, 'sample 7 of batch 1 holds value 7/255');
  const drop = new DataLoader(ds, { batchSize: 5, dropLast: true });
  assert.is(drop.length, 4);
  assert.is((await collect(drop)).length, 4);
});

l('shuffle: a permutation per epoch, fixed by seed, different across epochs and seeds', async () => {
  const ds = tiny();
  const order = async (seed: number, epochs: number) => {
    const dl = new DataLoader(ds, { batchSize: 4, shuffle: true, seed });
    const out: number[][] = [];
    for (let e = 0; e < epochs; e++) out.push((await collect(dl)).flatMap((b) => Array.from(b.indices)));
    return out;
  };
  const a = await order(1, 2);
  const b = await order(1, 2);
  const c = await order(2, 1);
  assert.equal(a, b);
  assert.equal([...a[0]].sort((x, y) => x - y), Array.from({ length: 23 }, (_, i) => i));
  assert.not.equal(a[0], a[1]);
  assert.not.equal(a[0], c[0]);
  // batch images follow the order: image value = dataset index
  const dl = new DataLoader(ds, { batchSize: 6, shuffle: true, seed: 1 });
  for await (const batch of dl) batch.indices.forEach((i, k) => assert.ok(Math.abs(batch.images.toArray()[k * 20] - i / 255) < 1e-7));
});

l('augmentation depends on (seed, epoch, index) only, not on batch size or prefetch', async () => {
  const px = new Uint8Array(10 * 28 * 28);
  for (let k = 0; k < px.length; k++) px[k] = (k * 7919) % 251;
  const ds = new ArrayDataset('aug', px, new Uint8Array(10), { height: 28, width: 28, channels: 1 }, ['x'], smallImageTrain(28, { padding: 4 }));
  const byIndex = async (batchSize: number, prefetch: number) => {
    const m = new Map<number, number[]>();
    for (const b of await collect(new DataLoader(ds, { batchSize, shuffle: true, seed: 9, prefetch }))) {
      b.indices.forEach((i, k) => m.set(i, Array.from(b.images.toArray().subarray(k * 784, (k + 1) * 784))));
    }
    return m;
  };
  const a = await byIndex(3, 1);
  const b = await byIndex(4, 3);
  for (let i = 0; i < 10; i++) assert.equal(a.get(i), b.get(i), `sample ${i}`);
  const plain = Array.from(ds.withTransform({ steps: [] }).get(0).image.toArray());
  assert.ok([...a.values()].some((v) => v.join() !== plain.join()), 'the crop actually moves some images');
});

l('ImageFolder through the worker pool: same batches as the main thread; early exit is clean', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ptslab-loader-'));
  try {
    makeSyntheticImageNet(tmp, { classes: 2, perClass: 3, size: 24, seed: 2 });
    const t = imagenetTrain(16);
    const pooled = new ImageFolder(join(tmp, 'train'), { transform: t });
    const main = new ImageFolder(join(tmp, 'train'), { transform: t, pool: null });
    const a = await collect(new DataLoader(pooled, { batchSize: 3, shuffle: true, seed: 4 }));
    const b = await collect(new DataLoader(main, { batchSize: 3, shuffle: true, seed: 4 }));
    assert.is(a.length, Math.ceil(pooled.length / 3));
    a.forEach((x, k) => {
      assert.equal(x.images.shape, [x.indices.length, 3, 16, 16]);
      assert.equal(Array.from(x.indices), Array.from(b[k].indices));
      assert.equal(Array.from(x.images.toArray()), Array.from(b[k].images.toArray()));
    });
    for await (const first of new DataLoader(pooled, { batchSize: 2, prefetch: 3 })) {
      assert.is(first.images.shape[0], 2);
      break;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

const c = suite('calibrationSubset');

c('a fixed subset by seed: distinct, sorted, same seed same subset, loadable', async () => {
  const ds: Dataset = tiny(100);
  const a = calibrationSubset(ds, 16, 3);
  const b = calibrationSubset(ds, 16, 3);
  const other = calibrationSubset(ds, 16, 4);
  assert.equal(Array.from(a.indices), Array.from(b.indices));
  assert.not.equal(Array.from(a.indices), Array.from(other.indices));
  assert.is(new Set(a.indices).size, 16);
  assert.equal(Array.from(a.indices), [...a.indices].sort((x, y) => x - y));
  assert.is(a.label(0), ds.label(a.indices[0]));
  const [batch] = await collect(new DataLoader(a, { batchSize: 16 }));
  assert.equal(batch.images.shape, [16, 1, 4, 5]);
  assert.ok(Math.abs(batch.images.toArray()[20] - a.indices[1] / 255) < 1e-7);
  assert.throws(() => calibrationSubset(ds, 101), /n = 101 must be an integer in \[1, 100\]/);
});

c.after(() => shutdownDecodePool());
l.run();
c.run();
