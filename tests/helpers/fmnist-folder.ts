// An image folder made of real images: Fashion-MNIST images written as grey PNGs into DIR/<split>/c<label>/, so that
// tests can read the same pixels through ptslab's image-folder path, the dataset itself, and PyTorch + PIL.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { fashionMnist } from '../../nn/data/index.js';

/**
 * Write the first n images of a Fashion-MNIST split whose label is below `classes` as DIR/train|val/c<label>/<i>.png;
 * returns their indices in the split.
 */
export function writeFashionFolder(dir: string, split: 'train' | 'test', n: number, classes = 10): number[] {
  const ds = fashionMnist({ split });
  const picked: number[] = [];
  for (let i = 0; picked.length < n && i < ds.length; i++) {
    const label = ds.label(i);
    if (label >= classes) continue;
    const raw = ds.raw(i);
    const file = join(dir, split === 'train' ? 'train' : 'val', `c${label}`, `${i}.png`);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, PNG.sync.write({ width: raw.width, height: raw.height, data: Buffer.from(raw.data) } as unknown as PNG, { colorType: 0, inputColorType: 0, inputHasAlpha: false }));
    picked.push(i);
  }
  return picked;
}
