// Any image folder as a dataset (nn/data/image-folder-splits.ts) on small folders written here with pngjs and
// jpeg-js: class order and labels, torchvision's file order (sorted os.walk), channel detection and conversion,
// evaluation sizes and pixels (centre crop of a known gradient, the no-op on N x N images, normalisation
// arithmetic), the three augmentations (shapes, seeding, the CIFAR crop being a shifted window of the padded image),
// every error with its message, checkImageFolderFits, and the image-folder entry of nn/train/setup.ts. When Debian's
// python3 has torchvision, the evaluation tensors are compared with ImageFolder + Resize + CenterCrop + ToTensor +
// Normalize; without it (the usual case), with the same pipeline stated in PIL and numpy, and the skip is reported.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { ArgumentError } from '../core/errors.js';
import {
  DataError, DataLoader, IMAGENET_MEAN, IMAGENET_STD, applySteps, checkImageFolderFits, imageFolderSplits, imageOps, readImageHeader,
  shutdownDecodePool, toGrey, type RawImage,
} from '../nn/data/index.js';
import { CMYK_JPEG_BASE64, GRAY_JPEG_BASE64 } from '../nn/data/synthetic-assets.js';
import { DATASETS, DATASET_INFO, NORMALIZATION, datasetInfoOf, evalTransform, loadDataset, trainTransform } from '../nn/train/setup.js';
import { throwsMatching } from './helpers/throws.js';

const tmp = mkdtempSync(join(tmpdir(), 'ptslab-imgfolder-'));
type Pixel = (y: number, x: number, c: number) => number;

/** A PNG of h x w with 1 (grey), 3 (RGB) or 4 (RGBA) stored channels. */
function png(file: string, h: number, w: number, channels: 1 | 3 | 4, f: Pixel): void {
  mkdirSync(dirname(file), { recursive: true });
  const data = Buffer.alloc(h * w * channels);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < channels; c++) data[(y * w + x) * channels + c] = f(y, x, c) & 255;
  const colorType = channels === 1 ? 0 : channels === 3 ? 2 : 6;
  writeFileSync(file, PNG.sync.write({ width: w, height: h, data } as unknown as PNG, { colorType, inputColorType: colorType, inputHasAlpha: channels === 4 }));
}
function jpg(file: string, h: number, w: number, f: Pixel): void {
  mkdirSync(dirname(file), { recursive: true });
  const data = Buffer.alloc(h * w * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 4; c++) data[(y * w + x) * 4 + c] = c === 3 ? 255 : f(y, x, c) & 255;
  writeFileSync(file, jpeg.encode({ data, width: w, height: h }, 95).data);
}
const put = (file: string, bytes: Uint8Array | string) => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, bytes);
};
/** Signature and IHDR only: the header claims h x w, but there is no image data (decoding would fail). */
const headerOnlyPng = (file: string, h: number, w: number) => {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'latin1');
  b.writeUInt32BE(w, 16);
  b.writeUInt32BE(h, 20);
  b[24] = 8;
  b[25] = 2;
  put(file, b);
};
const grad: Pixel = (y, x, c) => (c === 0 ? 10 * x + y : c === 1 ? 100 + 7 * y : 250 - 9 * x - 3 * y);
const noise = (seed: number): Pixel => (y, x, c) => (Math.imul(seed * 7919 + y * 131 + x * 31 + c * 17, 2654435761) >>> 24) & 255;
const throwsData = (fn: () => unknown, re: RegExp) => throwsMatching(fn, DataError, re);
const throwsArg = (fn: () => unknown, re: RegExp) => throwsMatching(fn, ArgumentError, re);
const arr = (t: { toArray(): ArrayLike<number> }) => Array.from(t.toArray());
const rel = (root: string, files: readonly string[]) => files.map((f) => relative(root, f));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.is(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
/** ToTensor (+ Normalize) of a uint8 HWC image, in float64, as the expected values. */
const tensorOf = (img: RawImage, mean?: readonly number[], std?: readonly number[]) => {
  const { height: h, width: w, channels: c } = img;
  const out: number[] = [];
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) out.push((img.data[i * c + ch] / 255 - (mean?.[ch] ?? 0)) / (std?.[ch] ?? 1));
  return out;
};
const make = (h: number, w: number, c: 1 | 3, f: Pixel): RawImage => {
  const m = imageOps.makeImage(h, w, c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) m.data[(y * w + x) * c + ch] = f(y, x, ch) & 255;
  return m;
};

// mixed: sizes differ, an RGB JPEG, a grey PNG, an RGBA PNG, nested folders, a stray text file; classes whose
// sorted order is not the obvious one ('10' < '9' < 'A' < 'a').
const mixed = join(tmp, 'mixed');
for (const s of ['train', 'val']) {
  png(join(mixed, s, '10', 'z.png'), 6, 10, 3, grad);
  png(join(mixed, s, '10', 'sub', 'b.png'), 7, 5, 3, noise(1));
  png(join(mixed, s, '10', 'sub', 't', 'd.png'), 5, 5, 3, noise(2));
  png(join(mixed, s, '10', 'sub-x', 'c.PNG'), 9, 6, 3, noise(3));
  png(join(mixed, s, '9', 'grey.png'), 8, 5, 1, noise(4));
  png(join(mixed, s, '9', 'rgba.png'), 5, 9, 4, noise(5));
  jpg(join(mixed, s, 'A', 'photo.jpg'), 9, 12, noise(6));
  put(join(mixed, s, 'A', 'notes.txt'), 'not an image');
  png(join(mixed, s, 'a', 'x.png'), 16, 16, 3, noise(7));
}
// uniform: every image 12x12 RGB.
const uni = join(tmp, 'uniform');
for (const [s, n] of [['train', 3], ['val', 2]] as const) {
  for (const c of ['cat', 'dog']) for (let k = 0; k < n; k++) png(join(uni, s, c, `${k}.png`), 12, 12, 3, noise(100 + k + (c === 'dog' ? 10 : 0) + (s === 'val' ? 50 : 0)));
}
// gradient: known pixels for the centre crop (4 x 8, 4 x 7, 4 x 9, 9 x 4, and 4 x 4 which must come through unchanged).
const gradDir = join(tmp, 'gradient');
png(join(gradDir, 'train', 'g', '0.png'), 4, 8, 3, grad);
for (const [h, w] of [[4, 8], [4, 7], [4, 9], [9, 4], [4, 4]]) png(join(gradDir, 'val', 'g', `${h}x${w}.png`), h, w, 3, grad);
// grey: a one-component JPEG first, then grey and RGB PNGs (converted to one channel).
const grey = join(tmp, 'grey');
for (const s of ['train', 'val']) {
  put(join(grey, s, 'k0', '0.jpg'), Buffer.from(GRAY_JPEG_BASE64, 'base64'));
  png(join(grey, s, 'k0', '1.png'), 12, 14, 1, noise(8));
  png(join(grey, s, 'k1', '2.png'), 13, 12, 3, (y, x, c) => [200, 100, 50][c]);
}

const ord = suite('image-folder: layout, order, channels');

ord('classes sorted by code point, labels by class, files in sorted(os.walk) order, only .jpg/.jpeg/.png', () => {
  const s = imageFolderSplits(mixed, { imageSize: 4 });
  assert.equal(s.classes, ['10', '9', 'A', 'a']);
  assert.equal(rel(join(mixed, 'train'), s.train.files), ['10/z.png', '10/sub/b.png', '10/sub-x/c.PNG', '10/sub/t/d.png', '9/grey.png', '9/rgba.png', 'A/photo.jpg', 'a/x.png']);
  assert.equal(Array.from(s.train.labels), [0, 0, 0, 0, 1, 1, 2, 3]);
  assert.equal(Array.from(s.val.labels), [0, 0, 0, 0, 1, 1, 2, 3]);
  assert.equal(s.val.label(6), 2);
  assert.equal(s.trainPlain.files, s.train.files);
  assert.is(s.channels, 3);
  assert.is(s.sourceChannels, 3);
  assert.equal([s.height, s.width, s.size], [4, 4, 4]);
  assert.is(s.normalization, null);
  assert.is(s.augment, 'none');
});

ord('image headers: size and channel count without decoding', () => {
  assert.equal(readImageHeader(join(mixed, 'train', '10', 'z.png')), { format: 'png', height: 6, width: 10, channels: 3 });
  assert.equal(readImageHeader(join(mixed, 'train', '9', 'grey.png')), { format: 'png', height: 8, width: 5, channels: 1 });
  assert.equal(readImageHeader(join(mixed, 'train', '9', 'rgba.png')), { format: 'png', height: 5, width: 9, channels: 3 });
  assert.equal(readImageHeader(join(mixed, 'train', 'A', 'photo.jpg')), { format: 'jpeg', height: 9, width: 12, channels: 3 });
  assert.equal(readImageHeader(join(grey, 'train', 'k0', '0.jpg')), { format: 'jpeg', height: 30, width: 40, channels: 1 });
  put(join(tmp, 'cmyk.jpg'), Buffer.from(CMYK_JPEG_BASE64, 'base64'));
  assert.equal(readImageHeader(join(tmp, 'cmyk.jpg')), { format: 'jpeg', height: 12, width: 16, channels: 3 }); // decoded to RGB
  // a frame header behind a 70 kB APP segment: the header is read past the first 64 KiB chunk
  const big = Buffer.from(jpeg.encode({ data: Buffer.alloc(5 * 7 * 4, 128), width: 7, height: 5 }, 90).data);
  const app = Buffer.alloc(4 + 65533);
  app.writeUInt16BE(0xffe3, 0);
  app.writeUInt16BE(65535, 2);
  put(join(tmp, 'bigapp.jpg'), Buffer.concat([big.subarray(0, 2), app, app, big.subarray(2)]));
  assert.equal(readImageHeader(join(tmp, 'bigapp.jpg')), { format: 'jpeg', height: 5, width: 7, channels: 3 });
});

ord('channels: a grey first image gives 1 channel (RGB converted as PIL convert("L")); channels: 3 repeats grey', () => {
  const s = imageFolderSplits(grey, { imageSize: 12 });
  assert.is(s.channels, 1);
  assert.is(s.sourceChannels, 1);
  const rgbAsGrey = s.val.get(2).image;
  assert.equal(rgbAsGrey.shape, [1, 12, 12]);
  // (200 * 19595 + 100 * 38470 + 50 * 7471 + 32768) >> 16 = 124; PIL's 0.299 R + 0.587 G + 0.114 B = 124.2
  assert.ok(arr(rgbAsGrey).every((v) => Math.abs(v - 124 / 255) < 1e-7));
  assert.equal(Array.from(toGrey(make(1, 2, 3, (y, x, c) => (x ? [255, 255, 255] : [0, 1, 2])[c])).data), [1, 255]);
  const pngGrey = s.val.get(1).image;
  const raw = s.val.raw(1); // the decoder's RGB, channels repeated
  const want = imageOps.centerCrop(imageOps.resizeShortSide(toGrey(raw), 12), 12, 12);
  assert.equal(arr(pngGrey), tensorOf(want).map(Math.fround));
  const three = imageFolderSplits(grey, { imageSize: 12, channels: 3 });
  assert.is(three.channels, 3);
  assert.is(three.sourceChannels, 1);
  const t = arr(three.val.get(1).image);
  assert.equal(t.slice(0, 144), t.slice(144, 288));
  assert.equal(t.slice(0, 144), arr(pngGrey));
  assert.is(imageFolderSplits(mixed, { imageSize: 4, channels: 1 }).val.get(0).image.shape[0], 1);
});

ord('RGBA drops alpha; the stray .txt is not a sample', () => {
  const s = imageFolderSplits(mixed, { imageSize: 5 });
  const rgba = s.val.raw(5);
  assert.is(rgba.channels, 3);
  const f = noise(5);
  assert.equal([rgba.data[0], rgba.data[1], rgba.data[2]], [f(0, 0, 0), f(0, 0, 1), f(0, 0, 2)]);
  assert.is(s.val.length, 8);
});

const ev = suite('image-folder: evaluation transform');

ev('centre crop of a known gradient: offsets round((W - N) / 2) half to even, values, shapes', () => {
  const mean = [0.5, 0.25, 0.125];
  const std = [0.5, 0.25, 2];
  const s = imageFolderSplits(gradDir, { imageSize: 4, mean, std });
  assert.equal(rel(join(gradDir, 'val'), s.val.files), ['g/4x4.png', 'g/4x7.png', 'g/4x8.png', 'g/4x9.png', 'g/9x4.png']);
  // [top, left] of the 4 x 4 window: 4x8 -> (0, 2); 4x7 -> round(1.5) = 2; 4x9 -> round(2.5) = 2; 9x4 -> (2, 0)
  const offsets = [[0, 0], [0, 2], [0, 2], [0, 2], [2, 0]];
  s.val.files.forEach((_, i) => {
    const t = s.val.get(i).image;
    assert.equal(t.shape, [3, 4, 4]);
    const [top, left] = offsets[i];
    const want: number[] = [];
    for (let c = 0; c < 3; c++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) want.push((grad(y + top, x + left, c) / 255 - mean[c]) / std[c]);
    assert.ok(maxDiff(arr(t), want) < 1e-6, s.val.files[i]);
  });
  // one value by hand: 4x8, channel 2, y 1, x 0 -> source (1, 2): 250 - 18 - 3 = 229; (229 / 255 - 0.125) / 2
  assert.ok(Math.abs(arr(s.val.get(2).image)[2 * 16 + 4] - (229 / 255 - 0.125) / 2) < 1e-7);
});

ev('an image already N x N comes through unchanged (only ToTensor + Normalize)', () => {
  const s = imageFolderSplits(mixed, { imageSize: 16, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] });
  const x = s.val.get(7).image; // a/x.png, 16 x 16
  assert.equal(x.shape, [3, 16, 16]);
  assert.ok(maxDiff(arr(x), tensorOf(s.val.raw(7), IMAGENET_MEAN, IMAGENET_STD)) < 1e-6);
  const g = imageFolderSplits(gradDir, { imageSize: 4 }).val;
  assert.equal(arr(g.get(0).image), tensorOf(g.raw(0)).map(Math.fround));
});

ev('imageSize resizes the short side (Pillow bilinear) then centre-crops; every sample N x N', () => {
  const s = imageFolderSplits(mixed, { imageSize: 4 });
  for (let i = 0; i < s.val.length; i++) assert.equal(s.val.get(i).image.shape, [3, 4, 4]);
  const raw = s.val.raw(0); // 6 x 10 -> 4 x 6 -> crop columns 1..4
  const want = imageOps.centerCrop(imageOps.resize(raw, 4, 6), 4, 4);
  assert.equal(arr(s.val.get(0).image), tensorOf(want).map(Math.fround));
});

ev('no imageSize: plain ToTensor at the common size; the worker pool gives the same tensors', async () => {
  const s = imageFolderSplits(uni, { mean: [0.4, 0.5, 0.6], std: [0.2, 0.3, 0.4] });
  assert.equal([s.height, s.width, s.size, s.channels], [12, 12, 12, 3]);
  assert.equal(s.classes, ['cat', 'dog']);
  assert.equal(s.val.length, 4);
  assert.equal(s.train.length, 6);
  const direct = s.val.get(3).image;
  assert.ok(maxDiff(arr(direct), tensorOf(s.val.raw(3), [0.4, 0.5, 0.6], [0.2, 0.3, 0.4])) < 1e-6);
  const batches = [];
  for await (const b of new DataLoader(s.val, { batchSize: 4 })) batches.push(b);
  assert.is(batches.length, 1);
  assert.equal(batches[0].images.shape, [4, 3, 12, 12]);
  assert.equal(Array.from(batches[0].labels), [0, 0, 1, 1]);
  assert.equal(arr(batches[0].images).slice(3 * 432), arr(direct));
});

const aug = suite('image-folder: augmentation');

/** Is `out` a window of the zero-padded image, possibly flipped (the CIFAR augmentation's only freedom)? */
function cifarWindow(src: RawImage, out: RawImage, padding: number): { top: number; left: number; flip: boolean } | null {
  const padded = imageOps.pad(src, padding);
  for (const flip of [false, true]) {
    for (let top = 0; top <= 2 * padding; top++) {
      for (let left = 0; left <= 2 * padding; left++) {
        let w = imageOps.crop(padded, top, left, out.height, out.width);
        if (flip) w = imageOps.hflip(w);
        if (w.data.every((v, i) => v === out.data[i])) return { top, left, flip };
      }
    }
  }
  return null;
}

aug("'cifar': pad 4, random crop of the image's side, flip; seeded; trainPlain and val unaugmented", () => {
  const s = imageFolderSplits(uni, { augment: 'cifar' });
  assert.equal(s.transforms.train.steps, [{ op: 'randomCrop', size: 12, padding: 4 }, { op: 'randomHorizontalFlip' }]);
  assert.equal(s.transforms.eval.steps, []);
  const raw = s.train.raw(1);
  const seen = new Set<string>();
  for (let seed = 0; seed < 12; seed++) {
    const a = s.train.get(1, seed).image;
    assert.equal(a.shape, [3, 12, 12]);
    assert.equal(arr(a), arr(s.train.get(1, seed).image), 'same seed, same pixels');
    const w = cifarWindow(raw, applySteps(raw, s.transforms.train, seed), 4);
    assert.ok(w, `seed ${seed}: a window of the padded image`);
    seen.add(JSON.stringify(w));
  }
  assert.ok(seen.size > 3, 'different seeds, different windows');
  assert.equal(arr(s.trainPlain.get(1, 5).image), tensorOf(raw).map(Math.fround));
  const sized = imageFolderSplits(mixed, { augment: 'cifar', imageSize: 8 });
  assert.equal(sized.transforms.train.steps.map((t) => t.op), ['resize', 'centerCrop', 'randomCrop', 'randomHorizontalFlip']);
  for (let i = 0; i < sized.train.length; i++) assert.equal(sized.train.get(i, 3).image.shape, [3, 8, 8]);
});

aug("'imagenet': RandomResizedCrop(N) + flip on the loaded image; seeded; normalised", () => {
  const mean = [0.5, 0.5, 0.5];
  const std = [0.25, 0.25, 0.25];
  const s = imageFolderSplits(mixed, { augment: 'imagenet', imageSize: 8, mean, std });
  assert.equal(s.transforms.train.steps, [{ op: 'randomResizedCrop', size: 8 }, { op: 'randomHorizontalFlip' }]);
  assert.equal(s.transforms.train.normalize, { mean, std });
  for (let i = 0; i < s.train.length; i++) {
    const a = s.train.get(i, 11).image;
    assert.equal(a.shape, [3, 8, 8]);
    assert.equal(arr(a), arr(s.train.get(i, 11).image));
    assert.ok(arr(a).every((v) => v >= -2 - 1e-6 && v <= 2 + 1e-6));
  }
  const differs = [1, 2, 3, 4].some((seed) => maxDiff(arr(s.train.get(7, 0).image), arr(s.train.get(7, seed).image)) > 0);
  assert.ok(differs);
  assert.equal(s.val.get(0).image.shape, [3, 8, 8]);
  const u = imageFolderSplits(uni, { augment: 'imagenet' });
  assert.equal(u.transforms.train.steps[0], { op: 'randomResizedCrop', size: 12 });
  assert.equal(u.train.get(0, 1).image.shape, [3, 12, 12]);
  const g = imageFolderSplits(grey, { augment: 'imagenet', imageSize: 10 });
  assert.equal(g.transforms.train.steps.map((t) => t.op), ['toGrey', 'randomResizedCrop', 'randomHorizontalFlip']);
  assert.equal(g.train.get(2, 4).image.shape, [1, 10, 10]);
});

aug("'none' (the default): train is the evaluation transform", () => {
  const s = imageFolderSplits(mixed, { imageSize: 6 });
  assert.equal(s.transforms.train, s.transforms.eval);
  assert.equal(arr(s.train.get(3, 99).image), arr(s.trainPlain.get(3, 0).image));
});

const err = suite('image-folder: errors');

err('missing folders, differing class sets, empty folders, torchvision-only files: DataError before decoding', () => {
  throwsData(() => imageFolderSplits(join(tmp, 'nope')), /nope: image-folder dataset folder not found \(expected .*nope\/train\/<class>\/<images>/);
  const noVal = join(tmp, 'noval');
  png(join(noVal, 'train', 'a', '0.png'), 4, 4, 3, grad);
  throwsData(() => imageFolderSplits(noVal), /noval: no val\/ folder/);
  const noTrain = join(tmp, 'notrain');
  png(join(noTrain, 'val', 'a', '0.png'), 4, 4, 3, grad);
  throwsData(() => imageFolderSplits(noTrain), /notrain: no train\/ folder/);
  const diff = join(tmp, 'diffclasses');
  for (const c of ['ant', 'bee', 'cat']) put(join(diff, 'train', c, '0.png'), 'corrupt: never decoded');
  for (const c of ['ant', 'bee', 'dog', 'eel']) put(join(diff, 'val', c, '0.png'), 'corrupt');
  throwsData(() => imageFolderSplits(diff), /diffclasses: train\/ and val\/ have different class folders \(only in train\/: cat; only in val\/: dog, eel\)/);
  const empty = join(tmp, 'empty');
  mkdirSync(join(empty, 'train'), { recursive: true });
  png(join(empty, 'val', 'a', '0.png'), 4, 4, 3, grad);
  throwsData(() => imageFolderSplits(empty), /empty\/train: empty: no class folders/);
  const emptyClass = join(tmp, 'emptyclass');
  for (const s of ['train', 'val']) png(join(emptyClass, s, 'a', '0.png'), 4, 4, 3, grad);
  put(join(emptyClass, 'val', 'b', 'readme.txt'), 'x');
  mkdirSync(join(emptyClass, 'train', 'b'), { recursive: true });
  throwsData(() => imageFolderSplits(emptyClass), /emptyclass\/train\/b: class folder has no \.jpg\/\.jpeg\/\.png files/);
  const bmp = join(tmp, 'bmp');
  for (const s of ['train', 'val']) png(join(bmp, s, 'a', '0.png'), 4, 4, 3, grad);
  put(join(bmp, 'val', 'a', 'odd.BMP'), 'BM');
  throwsData(() => imageFolderSplits(bmp), /val\/a\/odd\.BMP: torchvision's ImageFolder would read this file but ptslab decodes only \.jpg\/\.jpeg\/\.png/);
  const notImage = join(tmp, 'notimage');
  for (const s of ['train', 'val']) png(join(notImage, s, 'a', '0.png'), 4, 4, 3, grad);
  put(join(notImage, 'val', 'a', '1.png'), 'GIF89a...');
  throwsData(() => imageFolderSplits(notImage), /val\/a\/1\.png: not a JPEG or PNG file \(first bytes 47494638\)/);
});

err('without imageSize, the first image of another size is named with both sizes (from headers only)', () => {
  throwsData(() => imageFolderSplits(mixed), /train\/10\/sub\/b\.png: 7x5 \(height x width\), but .*train\/10\/z\.png is 6x10; without imageSize every image must have the same size/);
  const sizes = join(tmp, 'sizes');
  for (const s of ['train', 'val']) png(join(sizes, s, 'a', '0.png'), 8, 8, 3, grad);
  headerOnlyPng(join(sizes, 'val', 'a', '1.png'), 8, 9); // no pixel data: decoding it would fail
  throwsData(() => imageFolderSplits(sizes), /val\/a\/1\.png: 8x9 \(height x width\), but .*train\/a\/0\.png is 8x8/);
});

err('options: mean/std count against the channel count (both numbers), a zero std, pairing, imageSize, augment, channels', () => {
  throwsArg(() => imageFolderSplits(grey, { imageSize: 8, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] }), /mean and std have 3 values but the samples have 1 channel \(the first image, .*k0\/0\.jpg, has 1\); give one value per channel/);
  throwsArg(() => imageFolderSplits(mixed, { imageSize: 8, mean: [0.5], std: [0.5] }), /mean and std have 1 values but the samples have 3 channels/);
  throwsArg(() => imageFolderSplits(mixed, { imageSize: 8, channels: 1, mean: [0.1, 0.2, 0.3], std: [1, 1, 1] }), /have 3 values but the samples have 1 channel \(channels: 1\)/);
  throwsArg(() => imageFolderSplits(mixed, { mean: [0.5, 0.5, 0.5], std: [0.2, 0, 0.2] }), /std\[1\] is 0 \(Normalize divides by it\); std = \[0\.2, 0, 0\.2\]/);
  throwsArg(() => imageFolderSplits(mixed, { mean: [0.5, 0.5] }), /give mean and std together \(got only mean\)/);
  throwsArg(() => imageFolderSplits(mixed, { mean: [0.5, 0.5], std: [0.5] }), /mean has 2 values but std has 1/);
  throwsArg(() => imageFolderSplits(mixed, { mean: [0.5, NaN, 0.5], std: [1, 1, 1] }), /mean must be a non-empty list of finite numbers/);
  throwsArg(() => imageFolderSplits(mixed, { imageSize: 0 }), /imageSize must be a positive integer \(the input side\), got 0/);
  throwsArg(() => imageFolderSplits(mixed, { imageSize: 2.5 }), /got 2\.5/);
  throwsArg(() => imageFolderSplits(mixed, { imageSize: 4, augment: 'autoaugment' as never }), /augment must be one of none, cifar, imagenet, got 'autoaugment'/);
  throwsArg(() => imageFolderSplits(mixed, { imageSize: 4, channels: 2 as never }), /channels must be 1 or 3, got 2/);
  // option errors come before the folder is looked at
  throwsArg(() => imageFolderSplits(join(tmp, 'nope'), { imageSize: -1 }), /imageSize/);
  // the mean/std check needs only the first image's header: this one has no pixel data at all
  const headerOnly = join(tmp, 'headeronly');
  for (const s of ['train', 'val']) headerOnlyPng(join(headerOnly, s, 'a', '0.png'), 5, 5);
  throwsArg(() => imageFolderSplits(headerOnly, { mean: [0.5], std: [0.5] }), /have 1 values but the samples have 3 channels/);
  const wide = join(tmp, 'wide');
  for (const s of ['train', 'val']) png(join(wide, s, 'a', '0.png'), 6, 8, 3, grad);
  throwsArg(() => imageFolderSplits(wide, { augment: 'cifar' }), /augment 'cifar' crops squares but the images are 6x8 \(height x width\); pass imageSize/);
  const w = imageFolderSplits(wide);
  assert.equal([w.height, w.width, w.size], [6, 8, 8]);
});

err('checkImageFolderFits names both numbers', () => {
  const s = imageFolderSplits(mixed, { imageSize: 4 });
  checkImageFolderFits(s, { numClasses: 4, inChannels: 3 });
  throwsArg(() => checkImageFolderFits(s, { numClasses: 10, inChannels: 3 }), /mixed has 4 classes, the model's head has 10$/);
  throwsArg(() => checkImageFolderFits(s, { numClasses: 4, inChannels: 1 }), /mixed gives 3-channel images, the model's first conv takes 1 \(pass channels: 1 to convert the images\)$/);
  throwsArg(() => checkImageFolderFits({ dir: 'DIR', classes: ['a', 'b', 'c', 'd', 'e', 'f', 'g'], channels: 1 }, { numClasses: 10, inChannels: 3 }), /^image-folder does not fit the model: DIR has 7 classes, the model's head has 10; DIR gives 1-channel images, the model's first conv takes 3/);
  checkImageFolderFits(s, {});
});

const st = suite('image-folder in nn/train/setup');

st('DATASETS, DATASET_INFO, NORMALIZATION, datasetInfoOf; loadDataset splits and options', () => {
  assert.ok((DATASETS as readonly string[]).includes('image-folder'));
  assert.equal(DATASET_INFO['image-folder'], { numClasses: 0, channels: 0, size: 0, needsDir: true, fromFolder: true });
  assert.is(NORMALIZATION['image-folder'], null);
  const s = imageFolderSplits(grey, { imageSize: 12 });
  assert.equal(datasetInfoOf(s), { numClasses: 2, channels: 1, size: 12, needsDir: true, fromFolder: true });
  throwsArg(() => loadDataset('image-folder', 'train'), /dataset 'image-folder' needs --data-dir/);
  const o = { dataDir: mixed, imageSize: 8, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
  const test = loadDataset('image-folder', 'test', o) as unknown as { root: string; transform: unknown };
  assert.is(test.root, join(mixed, 'val'));
  const plain = loadDataset('image-folder', 'train', { ...o, augment: false }) as unknown as { root: string; transform: unknown };
  assert.is(plain.root, join(mixed, 'train'));
  assert.equal(plain.transform, test.transform);
  const dflt = loadDataset('image-folder', 'train', o) as unknown as { transform: unknown };
  assert.equal(dflt.transform, test.transform, "true: no standard augmentation, 'none'");
  const a = loadDataset('image-folder', 'train', { ...o, augment: 'imagenet' });
  assert.equal(a.get(0, 2).image.shape, [3, 8, 8]);
  assert.equal((a as unknown as { transform: { steps: { op: string }[] } }).transform.steps[0].op, 'randomResizedCrop');
  throwsArg(() => loadDataset('image-folder', 'train', { ...o, augment: 'mixup' as never }), /augment must be true, false or one of none, cifar, imagenet, got 'mixup'/);
  throwsArg(() => loadDataset('cifar10', 'train', { dataDir: tmp, augment: 'cifar' }), /loadDataset\('cifar10'\): augment 'cifar' is for image-folder only/);
  throwsArg(() => loadDataset('mnist', 'test', { mean: [0.1], std: [0.3] }), /loadDataset\('mnist'\): mean, std are for image-folder only/);
  throwsArg(() => trainTransform('image-folder'), /trainTransform\('image-folder'\): .*use imageFolderSplits/);
  throwsArg(() => evalTransform('image-folder'), /evalTransform\('image-folder'\)/);
  assert.equal(evalTransform('cifar10').steps, []);
});

// ---- against torchvision (or its PIL path) -------------------------------------------------------------------
const PY = `
import json, os, sys
import numpy as np
from PIL import Image
spec = json.loads(sys.argv[1])
try:
    import torchvision
    from torchvision import datasets, transforms as T
    engine = 'torchvision ' + torchvision.__version__
except Exception:
    torchvision = None
    import PIL
    engine = 'PIL ' + PIL.__version__
N, mode = spec['size'], spec['mode']
mean = np.array(spec['mean'], np.float32)[:, None, None]
std = np.array(spec['std'], np.float32)[:, None, None]
load = lambda p: Image.open(p).convert(mode)
res = []
for root in spec['roots']:
    if torchvision:
        tf = T.Compose([T.Resize(N), T.CenterCrop(N), T.ToTensor(), T.Normalize(spec['mean'], spec['std'])])
        ds = datasets.ImageFolder(root, transform=tf, loader=load)
        files, labels, classes = [p for p, _ in ds.samples], [l for _, l in ds.samples], ds.classes
        tensors = [ds[i][0].numpy().ravel().tolist() for i in range(len(ds))]
    else:
        # torchvision's find_classes / make_dataset and its PIL path of Resize(int), CenterCrop, ToTensor, Normalize
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
        files, labels, tensors = [], [], []
        for k, c in enumerate(classes):
            for r, _, fnames in sorted(os.walk(os.path.join(root, c), followlinks=True)):
                for f in sorted(fnames):
                    if f.lower().endswith(('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')):
                        files.append(os.path.join(r, f)); labels.append(k)
        for p in files:
            im = load(p)
            w, h = im.size
            short, long = (w, h) if w <= h else (h, w)
            ns, nl = N, int(N * long / short)
            nw, nh = (ns, nl) if w <= h else (nl, ns)
            if (nw, nh) != (w, h):
                im = im.resize((nw, nh), Image.BILINEAR)
            top, left = int(round((nh - N) / 2.0)), int(round((nw - N) / 2.0))
            im = im.crop((left, top, left + N, top + N))
            a = np.asarray(im, dtype=np.uint8).astype(np.float32) / np.float32(255)
            a = (a[:, :, None] if a.ndim == 2 else a).transpose(2, 0, 1)
            tensors.append(((a - mean) / std).ravel().tolist())
    res.append(dict(root=root, classes=classes, files=files, labels=labels, tensors=tensors))
print(json.dumps(dict(engine=engine, results=res)))
`;

const python = '/usr/bin/python3';
const hasPil = existsSync(python) && spawnSync(python, ['-c', 'import PIL, numpy'], { encoding: 'utf8' }).status === 0;
const hasTorchvision = hasPil && spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status === 0;
const tv = suite('image-folder: against torchvision');

// PNGs only (no JPEG decoder differences): RGB, grey and RGBA, up- and downscaled, odd offsets, nested folders.
const tvDir = join(tmp, 'tv');
for (const s of ['train', 'val']) {
  const o = s === 'val' ? 40 : 0;
  png(join(tvDir, s, 'b', 'one.png'), 20, 13, 3, noise(o + 1));
  png(join(tvDir, s, 'b', 'deep', 'x.png'), 5, 7, 3, noise(o + 2));
  png(join(tvDir, s, 'b', 'deep-er', 'y.png'), 33, 50, 4, noise(o + 3));
  png(join(tvDir, s, 'a', 'g.png'), 11, 9, 1, noise(o + 4));
  png(join(tvDir, s, 'a', 'same.png'), 8, 8, 3, noise(o + 5));
  png(join(tvDir, s, 'C', 'grad.png'), 9, 30, 3, grad);
}

for (const [mode, channels, mean, std] of [['RGB', 3, [...IMAGENET_MEAN], [...IMAGENET_STD]], ['L', 1, [0.45], [0.27]]] as const) {
  tv(`evaluation tensors equal ImageFolder + Resize(8) + CenterCrop(8) + ToTensor + Normalize (convert('${mode}')) to 1e-6`, () => {
    if (!hasPil) {
      console.log(`  skip: ${python} with PIL and numpy is not available`);
      return;
    }
    const roots = [join(tvDir, 'train'), join(tvDir, 'val')];
    const r = spawnSync(python, ['-c', PY, JSON.stringify({ roots, size: 8, mode, mean, std })], { encoding: 'utf8', timeout: 120_000 });
    assert.is(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { engine: string; results: { classes: string[]; files: string[]; labels: number[]; tensors: number[][] }[] };
    if (!hasTorchvision) console.log(`  skip: torchvision is not installed for ${python}; compared with its PIL path instead (${got.engine})`);
    const s = imageFolderSplits(tvDir, { imageSize: 8, channels, mean, std, pool: null });
    for (const [k, ds] of [s.trainPlain, s.val].entries()) {
      const ref = got.results[k];
      assert.equal(s.classes, ref.classes);
      assert.equal(ds.files, ref.files);
      assert.equal(Array.from(ds.labels), ref.labels);
      ds.files.forEach((f, i) => {
        const t = ds.get(i).image;
        assert.equal(t.shape, [channels, 8, 8]);
        const d = maxDiff(arr(t), ref.tensors[i]);
        assert.ok(d <= 1e-6, `${f}: max |ptslab - ${got.engine}| = ${d}`);
      });
    }
  });
}

tv.after(async () => {
  await shutdownDecodePool();
  rmSync(tmp, { recursive: true, force: true });
});

ord.run();
ev.run();
aug.run();
err.run();
st.run();
tv.run();
