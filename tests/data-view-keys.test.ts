// View keys (nn/data transforms.ts draws, loader.ts Batch.keys): recording a transform's draws never changes its
// output; the recorded crop offsets and flip rebuild the view exactly; finiteViews tells random crops and flips
// from random resized crops; the DataLoader gives every sample a key on the fast path with finite views (the same
// key always the same image, over many epochs), and none with a random resized crop.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ArrayDataset, DataLoader, applySteps, finiteViews, imageOps, imagenetTrain, mixSeed, smallImageTrain, viewKey, type RawImage } from '../nn/data/index.js';

function randomImage(h: number, w: number, c: 1 | 3, seed: number): RawImage {
  const data = new Uint8Array(h * w * c);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) data[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return { data, height: h, width: w, channels: c };
}

const test = suite('view keys');

test('recording draws leaves every output unchanged (random crop + flip, random resized crop)', () => {
  const img = randomImage(12, 10, 3, 1);
  for (const t of [smallImageTrain(8, { padding: 2, flip: true }), imagenetTrain(6)]) {
    for (let i = 0; i < 40; i++) {
      const seed = mixSeed(1, 0, i);
      const draws: number[] = [];
      const a = applySteps(img, t, seed);
      const b = applySteps(img, t, seed, draws);
      assert.equal(Array.from(b.data), Array.from(a.data));
      assert.ok(draws.length > 0);
    }
  }
});

test('the draws of a random crop with padding and a flip rebuild the view', () => {
  const img = randomImage(8, 8, 1, 2);
  const t = smallImageTrain(8, { padding: 2, flip: true });
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const draws: number[] = [];
    const out = applySteps(img, t, mixSeed(0, 0, i), draws); // the loader's seeds (consecutive raw seeds draw alike)
    assert.is(draws.length, 3);
    const [top, left, flip] = draws;
    assert.ok(top >= 0 && top <= 4 && left >= 0 && left <= 4 && (flip === 0 || flip === 1), String(draws));
    let view = imageOps.crop(imageOps.pad(img, 2), top, left, 8, 8);
    if (flip) view = imageOps.hflip(view);
    assert.equal(Array.from(out.data), Array.from(view.data));
    seen.add(draws.join(','));
  }
  assert.ok(seen.size > 40, `200 seeds drew ${seen.size} of the 50 views`);
});

test('finiteViews: crops and flips yes, a random resized crop no', () => {
  assert.ok(finiteViews(smallImageTrain(28, { padding: 2 })));
  assert.ok(finiteViews({ steps: [] }));
  assert.not.ok(finiteViews(imagenetTrain(224)));
  assert.is(viewKey(17, [3, 1, 0]), '17:3,1,0');
});

test('DataLoader: a key per sample on the fast path, one image per key over epochs; none for a random resized crop', async () => {
  const n = 12;
  const px = new Uint8Array(n * 36);
  for (let i = 0; i < n; i++) px.set(randomImage(6, 6, 1, 10 + i).data, i * 36);
  const base = new ArrayDataset('toy', px, new Uint8Array(n), { height: 6, width: 6, channels: 1 }, ['a']);
  const ds = base.withTransform(smallImageTrain(6, { padding: 1, flip: true }));
  const loader = new DataLoader(ds, { batchSize: 5, shuffle: true, seed: 4 });
  const byKey = new Map<string, string>();
  let samples = 0;
  for (let epoch = 0; epoch < 30; epoch++) {
    for await (const b of loader.batches(epoch)) {
      assert.is(b.keys?.length, b.indices.length);
      const img = b.images.toArray();
      b.keys!.forEach((k, j) => {
        assert.ok(k.startsWith(`${b.indices[j]}:`), k);
        const pixels = Array.from(img.subarray(j * 36, (j + 1) * 36)).join(',');
        const before = byKey.get(k);
        if (before !== undefined) assert.is(pixels, before, `key ${k} came with two images`);
        byKey.set(k, pixels);
        samples++;
      });
    }
  }
  assert.ok(byKey.size < samples, 'views repeat over 30 epochs');
  assert.ok(new Set(byKey.values()).size === byKey.size, 'distinct keys, distinct images (random pixels)');
  const rrc = base.withTransform(imagenetTrain(4));
  for await (const b of new DataLoader(rrc, { batchSize: 4 }).batches(0)) assert.is(b.keys, undefined);
});

test.run();
