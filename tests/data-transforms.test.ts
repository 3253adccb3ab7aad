// Transforms against PIL, torch and hand-computed values: Pillow-exact antialiased bilinear resize and torch's plain
// bilinear (goldens from tests/fixtures/images/make-goldens.py), torchvision's resize sizes and centre-crop offsets,
// crop padding, flips, ToTensor/Normalize, RandomResizedCrop's ten tries and fallback, and seeded determinism.

import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Generator } from '../core/index.js';
import { applySteps, imageOps, imagenetEval, imagenetTrain, randomResizedCropParams, smallImageTrain, toSample, type RawImage } from '../nn/data/index.js';

const { centerCrop, crop, hflip, makeImage, pad, resize, shortSideSize, toFloatChw } = imageOps;

const FIX = new URL('../../tests/fixtures/images/', import.meta.url);
const goldens = JSON.parse(readFileSync(new URL('goldens.json', FIX), 'utf8'));
const img = (h: number, w: number, c: 1 | 3, f: (y: number, x: number, ch: number) => number): RawImage => {
  const m = makeImage(h, w, c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) m.data[(y * w + x) * c + ch] = f(y, x, ch);
  return m;
};

const rs = suite('resize');
const g = goldens.resize;
const src: RawImage = { data: Uint8Array.from(g.input), height: g.height, width: g.width, channels: 3 };

rs('antialiased bilinear equals Pillow Image.resize(BILINEAR) exactly (down, up, mixed, 1x1)', () => {
  for (const c of g.cases) {
    const out = resize(src, c.height, c.width);
    assert.equal([out.height, out.width], [c.height, c.width]);
    assert.equal(Array.from(out.data), c.pil, `${c.height}x${c.width}`);
  }
});

rs('antialias: false matches torch interpolate(bilinear, align_corners=False) within one level', () => {
  let exact = 0;
  let total = 0;
  for (const c of g.cases) {
    const out = resize(src, c.height, c.width, { antialias: false });
    out.data.forEach((v, i) => {
      assert.ok(Math.abs(v - c.torch[i]) <= 1, `${c.height}x${c.width} value ${i}: ${v} vs torch ${c.torch[i]}`);
      exact += v === c.torch[i] ? 1 : 0;
      total++;
    });
  }
  assert.ok(exact >= total - 4, `${total - exact} of ${total} values differ`);
});

rs('plain bilinear by hand: 1x2 [0, 100] upscaled to 1x4 is [0, 25, 75, 100]', () => {
  const out = resize(img(1, 2, 1, (_, x) => x * 100), 1, 4, { antialias: false });
  assert.equal(Array.from(out.data), [0, 25, 75, 100]);
  // Pillow: support 1 at scale 0.5, centres 0.25, 0.75, 1.25, 1.75 -> same weights here
  assert.equal(Array.from(resize(img(1, 2, 1, (_, x) => x * 100), 1, 4).data), [0, 25, 75, 100]);
});

rs('downscaling by 2 with antialias: triangle filter of support 2, by hand', () => {
  // out 0: centre 1, taps x = 0, 1, 2 at distances 0.25, 0.25, 0.75 (in output units): weights 3/7, 3/7, 1/7
  //   (10 * 3 + 30 * 3 + 50) / 7 = 24.29 -> 24
  // out 1: centre 3, taps x = 1, 2, 3: weights 1/7, 3/7, 3/7: (30 + 50 * 3 + 70 * 3) / 7 = 55.71 -> 56
  const out = resize(img(1, 4, 1, (_, x) => [10, 30, 50, 70][x]), 1, 2);
  assert.equal(Array.from(out.data), [24, 56]);
});

rs('torchvision Resize(int) sizes: short side to size, long side truncated', () => {
  assert.equal(shortSideSize(375, 500, 256), [256, 341]); // int(256 * 500 / 375) = 341
  assert.equal(shortSideSize(500, 333, 256), [384, 256]); // int(256 * 500 / 333) = 384
  assert.equal(shortSideSize(256, 256, 256), [256, 256]);
});

const cr = suite('crops and flips');

cr('centerCrop offsets use Python round (half to even), as torchvision', () => {
  const im = img(5, 6, 1, (y, x) => y * 10 + x);
  // (5 - 2) / 2 = 1.5 -> 2; (6 - 3) / 2 = 1.5 -> 2
  assert.equal(Array.from(centerCrop(im, 2, 3).data), [22, 23, 24, 32, 33, 34]);
  // (5 - 4) / 2 = 0.5 -> 0; (6 - 1) / 2 = 2.5 -> 2
  assert.equal(Array.from(centerCrop(im, 4, 1).data), [2, 12, 22, 32]);
});

cr('centerCrop larger than the image zero-pads like torchvision', () => {
  const out = centerCrop(img(1, 1, 1, () => 9), 3, 2);
  // pad left (2-1)//2 = 0, right 1, top (3-1)//2 = 1, bottom 1
  assert.equal(Array.from(out.data), [0, 0, 9, 0, 0, 0]);
});

cr('crop outside the image reads zeros; pad adds a zero border', () => {
  const im = img(2, 2, 1, (y, x) => 1 + y * 2 + x);
  assert.equal(Array.from(crop(im, -1, 1, 2, 2).data), [0, 0, 2, 0]);
  assert.equal(Array.from(pad(im, 1).data), [0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0]);
});

cr('hflip mirrors columns and keeps channel order', () => {
  const im = img(1, 2, 3, (_, x, c) => x * 10 + c);
  assert.equal(Array.from(hflip(im).data), [10, 11, 12, 0, 1, 2]);
});

cr('toFloatChw: HWC uint8 -> CHW /255, then ImageNet Normalize', () => {
  const im = img(1, 2, 3, (_, x, c) => (x === 0 ? [255, 0, 51][c] : [0, 255, 102][c]));
  assert.equal(Array.from(toFloatChw(im)), [1, 0, 0, 1, 0.2, 0.4].map(Math.fround));
  const n = toFloatChw(im, imagenetEval().normalize);
  const want = [(1 - 0.485) / 0.229, (0 - 0.485) / 0.229, (0 - 0.456) / 0.224, (1 - 0.456) / 0.224, (0.2 - 0.406) / 0.225, (0.4 - 0.406) / 0.225];
  n.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `${i}: ${v} vs ${want[i]}`));
});

const rr = suite('random transforms');

rr('RandomResizedCrop params stay inside the image with area and ratio in range (fast-check)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 1, max: 400 }), fc.integer(), (h, w, seed) => {
      const p = randomResizedCropParams(h, w, new Generator(seed));
      assert.ok(p.h >= 1 && p.w >= 1 && p.top >= 0 && p.left >= 0 && p.top + p.h <= h && p.left + p.w <= w, JSON.stringify({ h, w, p }));
    }),
    { numRuns: 300 },
  );
});

rr('RandomResizedCrop falls back to the central crop clamped to the ratio range', () => {
  // scale above 1 never fits, so all ten tries fail
  const rng = new Generator(1);
  // 100x400: ratio 4 > 4/3, so h = 100, w = round(100 * 4/3) = 133, left = (400 - 133) // 2 = 133
  assert.equal(randomResizedCropParams(100, 400, rng, [2, 3]), { top: 0, left: 133, h: 100, w: 133 });
  // 400x100: ratio 1/4 < 3/4, so w = 100, h = round(100 / (3/4)) = 133, top = 133
  assert.equal(randomResizedCropParams(400, 100, rng, [2, 3]), { top: 133, left: 0, h: 133, w: 100 });
  // 100x120: ratio inside the range: the whole image
  assert.equal(randomResizedCropParams(100, 120, rng, [2, 3]), { top: 0, left: 0, h: 100, w: 120 });
});

rr('RandomResizedCrop: a successful try draws area, ratio, top, left in that order', () => {
  for (const seed of [7, 8, 9]) {
    const a = new Generator(seed);
    let w = 0;
    let h = 0;
    let tries = 0;
    do {
      const area = 10000 * (0.08 + 0.92 * a.uniform());
      const ratio = Math.exp(Math.log(3 / 4) + (Math.log(4 / 3) - Math.log(3 / 4)) * a.uniform());
      w = Math.round(Math.sqrt(area * ratio));
      h = Math.round(Math.sqrt(area / ratio));
      tries++;
    } while ((w > 100 || h > 100) && tries < 10);
    assert.ok(w <= 100 && h <= 100);
    const top = a.int(100 - h + 1);
    const left = a.int(100 - w + 1);
    assert.equal(randomResizedCropParams(100, 100, new Generator(seed)), { top, left, h, w }, `seed ${seed}`);
  }
});

rr('presets: shapes, and the same seed gives the same augmented sample', () => {
  const im = img(40, 60, 3, (y, x, c) => (y * 7 + x * 3 + c * 50) % 256);
  const t = imagenetTrain(24);
  const a = toSample(im, 1, t, 5);
  assert.equal(a.image.shape, [3, 24, 24]);
  assert.equal(Array.from(a.image.toArray()), Array.from(toSample(im, 1, t, 5).image.toArray()));
  const seeds = new Set(Array.from({ length: 8 }, (_, s) => Array.from(toSample(im, 1, t, s).image.toArray()).slice(0, 50).join()));
  assert.ok(seeds.size > 4, 'different seeds give different crops');
  assert.equal(toSample(im, 1, imagenetEval(16, 20), 0).image.shape, [3, 16, 16]);
  const small = applySteps(img(28, 28, 1, (y, x) => y + x), smallImageTrain(28, { padding: 4 }), 3);
  assert.equal([small.height, small.width, small.channels], [28, 28, 1]);
});

rr('RandomCrop with padding picks a window of the padded image', () => {
  const im = img(4, 4, 1, () => 200);
  for (let s = 0; s < 20; s++) {
    const out = applySteps(im, { steps: [{ op: 'randomCrop', size: 4, padding: 2 }] }, s);
    const nonzero = out.data.reduce((n, v) => n + (v === 200 ? 1 : 0), 0);
    // the window overlaps the 4x4 image in (4 - |dy|) * (4 - |dx|) pixels, dy, dx in -2..2
    assert.ok([4, 6, 8, 9, 12, 16].includes(nonzero), `overlap ${nonzero}`);
  }
});

rs.run();
cr.run();
rr.run();
