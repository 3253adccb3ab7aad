// makeSyntheticImageNet: writes a small ImageNet-format folder (<dir>/train/<wnid>/*.JPEG, <dir>/val/<wnid>/*.JPEG)
// of real JPEG files for tests and smoke runs. Each class has its own colour and stripe pattern (so a model can learn
// it) under seeded noise, at sizes around `size` with varied aspect ratios. It also plants the awkward files real
// ImageNet has: one-component greyscale JPEGs, a CMYK and a YCCK JPEG (Adobe APP14; embedded from
// synthetic-assets.ts since jpeg-js cannot write them), and a file named .JPEG whose content is PNG.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { Generator } from '../../core/index.js';
import { ArgumentError } from '../../core/errors.js';
import { CMYK_JPEG_BASE64, GRAY_JPEG_BASE64, YCCK_JPEG_BASE64 } from './synthetic-assets.js';

export interface SyntheticImageNetOptions {
  classes?: number;
  /** Ordinary JPEGs per class in train/ (default 4). */
  perClass?: number;
  /** Ordinary JPEGs per class in val/ (default max(1, perClass / 2)). */
  valPerClass?: number;
  /** Typical side length; each image's sides vary within +-25% (default 64). */
  size?: number;
  seed?: number;
  quality?: number;
}

export interface SyntheticImageNet {
  root: string;
  classes: string[];
  trainCount: number;
  valCount: number;
  /** The special files planted, by kind (paths). */
  special: { gray: string[]; cmyk: string[]; ycck: string[]; png: string[] };
}

/** Class colour: evenly spaced hues at full saturation. */
function classColour(c: number, n: number): [number, number, number] {
  const h = (c / n) * 6;
  const x = Math.round(255 * (1 - Math.abs((h % 2) - 1)));
  const table: [number, number, number][] = [[255, x, 0], [x, 255, 0], [0, 255, x], [0, x, 255], [x, 0, 255], [255, 0, x]];
  return table[Math.floor(h) % 6];
}

/** RGBA pixels of one synthetic image of class c. */
function paint(c: number, n: number, h: number, w: number, rng: Generator): Uint8Array {
  const [r, g, b] = classColour(c, n);
  const period = 4 + (c % 5) * 3;
  const vertical = c % 2 === 0;
  const phase = rng.int(period);
  const px = new Uint8Array(h * w * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const stripe = Math.floor(((vertical ? x : y) + phase) / period) % 2 === 0 ? 1 : 0.45;
      const k = (y * w + x) * 4;
      const noise = () => (rng.uniform() - 0.5) * 40;
      px[k] = Math.max(0, Math.min(255, Math.round(r * stripe + noise())));
      px[k + 1] = Math.max(0, Math.min(255, Math.round(g * stripe + noise())));
      px[k + 2] = Math.max(0, Math.min(255, Math.round(b * stripe + noise())));
      px[k + 3] = 255;
    }
  }
  return px;
}

export function makeSyntheticImageNet(dir: string, opts: SyntheticImageNetOptions = {}): SyntheticImageNet {
  const n = opts.classes ?? 3;
  const perClass = opts.perClass ?? 4;
  const valPerClass = opts.valPerClass ?? Math.max(1, Math.floor(perClass / 2));
  const size = opts.size ?? 64;
  const quality = opts.quality ?? 90;
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(perClass) || perClass < 1 || size < 8) {
    throw new ArgumentError(`makeSyntheticImageNet: need classes >= 1, perClass >= 1, size >= 8 (got ${n}, ${perClass}, ${size})`);
  }
  const rng = new Generator(opts.seed ?? 0);
  const classes = Array.from({ length: n }, (_, c) => `n${String(c).padStart(8, '0')}`);
  const special: SyntheticImageNet['special'] = { gray: [], cmyk: [], ycck: [], png: [] };
  const side = () => Math.round(size * (0.75 + 0.5 * rng.uniform()));
  let trainCount = 0;
  let valCount = 0;
  let valSeq = 1;
  for (const split of ['train', 'val'] as const) {
    for (let c = 0; c < n; c++) {
      const folder = join(dir, split, classes[c]);
      mkdirSync(folder, { recursive: true });
      const count = split === 'train' ? perClass : valPerClass;
      for (let k = 0; k < count; k++) {
        const h = side();
        const w = side();
        const file = split === 'train' ? `${classes[c]}_${k}.JPEG` : `ILSVRC2012_val_${String(valSeq++).padStart(8, '0')}.JPEG`;
        writeFileSync(join(folder, file), jpeg.encode({ data: paint(c, n, h, w, rng), width: w, height: h }, quality).data);
      }
      if (split === 'train') trainCount += count;
      else valCount += count;
    }
  }
  const plant = (split: 'train' | 'val', c: number, name: string, bytes: Uint8Array, kind: keyof SyntheticImageNet['special']) => {
    const file = join(dir, split, classes[c % n], name);
    writeFileSync(file, bytes);
    special[kind].push(file);
    if (split === 'train') trainCount++;
    else valCount++;
  };
  const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
  plant('train', 0, `${classes[0]}_gray.JPEG`, b64(GRAY_JPEG_BASE64), 'gray');
  plant('val', 1, 'ILSVRC2012_val_gray.JPEG', b64(GRAY_JPEG_BASE64), 'gray');
  plant('train', 1, `${classes[1 % n]}_cmyk.JPEG`, b64(CMYK_JPEG_BASE64), 'cmyk');
  plant('train', 2, `${classes[2 % n]}_ycck.JPEG`, b64(YCCK_JPEG_BASE64), 'ycck');
  const h = side();
  const w = side();
  const png = new PNG({ width: w, height: h });
  png.data.set(paint(2 % n, n, h, w, rng));
  plant('train', 2, `${classes[2 % n]}_png.JPEG`, new Uint8Array(PNG.sync.write(png)), 'png');
  return { root: dir, classes, trainCount, valCount, special };
}
