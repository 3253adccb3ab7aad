// CIFAR-10 and CIFAR-100 in their binary distribution (cifar-10-batches-bin: data_batch_1..5.bin, test_batch.bin,
// records of 1 label byte + 3072 pixel bytes; cifar-100-binary: train.bin, test.bin, records of coarse label, fine
// label, 3072 pixels; the fine label is used). Pixels are stored CHW (1024 R, 1024 G, 1024 B) and converted to HWC
// at load. The folder is the one the user names, or its cifar-10-batches-bin / cifar-100-binary child.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArrayDataset } from './array-dataset.js';
import type { Transform } from './transforms.js';
import { DataError } from './types.js';

const PIXELS = 32 * 32 * 3;

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;

export const CIFAR100_CLASSES = [
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle', 'bowl', 'boy',
  'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle', 'chair', 'chimpanzee', 'clock',
  'cloud', 'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur', 'dolphin', 'elephant', 'flatfish', 'forest',
  'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard', 'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard',
  'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain', 'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid',
  'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree', 'plain', 'plate', 'poppy', 'porcupine', 'possum',
  'rabbit', 'raccoon', 'ray', 'road', 'rocket', 'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper',
  'snail', 'snake', 'spider', 'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone',
  'television', 'tiger', 'tractor', 'train', 'trolleybus', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree',
  'wolf', 'woman', 'worm',
] as const;

function resolveDir(dir: string, child: string, probe: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`${dir}: CIFAR data folder not found`);
  if (!existsSync(join(dir, probe)) && existsSync(join(dir, child, probe))) return join(dir, child);
  return dir;
}

/** Read record files (each `prefix` label bytes + 3072 pixels), keeping label byte `labelAt`. */
function readRecords(files: string[], prefix: number, labelAt: number, nClasses: number) {
  const rec = prefix + PIXELS;
  const bufs = files.map((f) => {
    if (!existsSync(f)) throw new DataError(`${f}: CIFAR batch file not found`);
    const b = readFileSync(f);
    if (b.length === 0 || b.length % rec !== 0) {
      throw new DataError(`${f}: ${b.length} bytes is not a whole number of ${rec}-byte records (${prefix} label byte${prefix > 1 ? 's' : ''} + 3072 pixels)`);
    }
    return { f, b };
  });
  const n = bufs.reduce((a, { b }) => a + b.length / rec, 0);
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Uint8Array(n);
  let i = 0;
  for (const { f, b } of bufs) {
    for (let r = 0; r < b.length / rec; r++, i++) {
      const base = r * rec;
      const label = b[base + labelAt];
      if (label >= nClasses) throw new DataError(`${f}: record ${r} has label ${label}, expected < ${nClasses}`);
      labels[i] = label;
      const src = base + prefix;
      const dst = i * PIXELS;
      for (let p = 0; p < 1024; p++) {
        pixels[dst + 3 * p] = b[src + p];
        pixels[dst + 3 * p + 1] = b[src + 1024 + p];
        pixels[dst + 3 * p + 2] = b[src + 2048 + p];
      }
    }
  }
  return { pixels, labels };
}

export function cifar10(dir: string, split: 'train' | 'test' = 'train', opts: { transform?: Transform } = {}): ArrayDataset {
  const root = resolveDir(dir, 'cifar-10-batches-bin', 'test_batch.bin');
  const names = split === 'train' ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`) : ['test_batch.bin'];
  const { pixels, labels } = readRecords(names.map((n) => join(root, n)), 1, 0, 10);
  return new ArrayDataset(`cifar-10 ${split} (${root})`, pixels, labels, { height: 32, width: 32, channels: 3 }, CIFAR10_CLASSES, opts.transform);
}

export function cifar100(dir: string, split: 'train' | 'test' = 'train', opts: { transform?: Transform } = {}): ArrayDataset {
  const root = resolveDir(dir, 'cifar-100-binary', 'test.bin');
  const { pixels, labels } = readRecords([join(root, `${split}.bin`)], 2, 1, 100);
  return new ArrayDataset(`cifar-100 ${split} (${root})`, pixels, labels, { height: 32, width: 32, channels: 3 }, CIFAR100_CLASSES, opts.transform);
}

/** CIFAR channel statistics commonly used with Normalize (computed on the training sets). */
export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465] as const;
export const CIFAR10_STD = [0.247, 0.2435, 0.2616] as const;
