// ImageNet and any other dataset in torchvision's ImageFolder layout: <root>/<class>/**/<file>, class index = position
// of the folder name in the sorted list, files sorted as torchvision's os.walk order gives them. Only the file list
// lives in memory; get(i) reads, decodes (decode.ts) and transforms on the calling thread, getAsync(i, seed) does it
// in the decode worker pool (pool.ts), which is what the DataLoader uses.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fromStorage } from '../../core/index.js';
import { decodeFile } from './decode.js';
import { decodePool, type DecodePool } from './pool.js';
import { toSample } from './array-dataset.js';
import { toTensorOnly, type Transform } from './transforms.js';
import { checkIndex, DataError, type Dataset, type RawImage, type Sample } from './types.js';

/** Extensions read (case-insensitive); the content decides the decoder, so a PNG named .JPEG is fine. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'] as const;

export interface ImageFolderOptions {
  transform?: Transform;
  /** Decode pool for getAsync (default: the shared pool); null decodes on the main thread. */
  pool?: DecodePool | null;
}

function walk(dir: string, out: string[]): void {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    const isDir = e.isDirectory() || (e.isSymbolicLink() && statSync(p).isDirectory());
    if (isDir) walk(p, out);
    else if ((IMAGE_EXTENSIONS as readonly string[]).includes(extname(e.name).toLowerCase())) files.push(p);
  }
  out.push(...files);
}

export class ImageFolder implements Dataset {
  readonly classes: readonly string[];
  readonly files: readonly string[];
  readonly labels: Int32Array;
  readonly transform: Transform;
  private readonly pool: DecodePool | null | undefined;

  constructor(
    readonly root: string,
    opts: ImageFolderOptions = {},
  ) {
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new DataError(`${root}: image folder not found`);
    const classes = readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() || (e.isSymbolicLink() && statSync(join(root, e.name)).isDirectory()))
      .map((e) => e.name)
      .sort();
    if (classes.length === 0) throw new DataError(`${root}: no class folders (expected <root>/<class>/<image files>)`);
    const files: string[] = [];
    const labels: number[] = [];
    classes.forEach((c, k) => {
      const found: string[] = [];
      walk(join(root, c), found);
      if (found.length === 0) throw new DataError(`${join(root, c)}: class folder has no ${IMAGE_EXTENSIONS.join('/')} files`);
      files.push(...found);
      for (let j = 0; j < found.length; j++) labels.push(k);
    });
    this.classes = classes;
    this.files = files;
    this.labels = Int32Array.from(labels);
    this.transform = opts.transform ?? toTensorOnly;
    this.pool = opts.pool;
  }

  get length(): number {
    return this.files.length;
  }

  label(i: number): number {
    checkIndex(this.root, i, this.length);
    return this.labels[i];
  }

  /** The decoded RGB image (uint8 HWC), no transform. */
  raw(i: number): RawImage {
    checkIndex(this.root, i, this.length);
    return decodeFile(this.files[i]);
  }

  get(i: number, seed = i): Sample {
    return toSample(this.raw(i), this.labels[i], this.transform, seed);
  }

  async getAsync(i: number, seed: number): Promise<Sample> {
    checkIndex(this.root, i, this.length);
    const pool = this.pool === undefined ? decodePool() : this.pool;
    if (pool === null) return this.get(i, seed);
    const { data, shape } = await pool.run(this.files[i], this.transform, seed);
    return { image: fromStorage(data, shape), label: this.labels[i] };
  }
}

/** ImageNet-style root with train/ and val/ folders in ImageFolder layout (val sorted into class folders). */
export function imagenet(root: string, split: 'train' | 'val' = 'train', opts: ImageFolderOptions = {}): ImageFolder {
  if (!existsSync(root)) throw new DataError(`${root}: ImageNet folder not found`);
  const dir = join(root, split);
  if (!existsSync(dir)) throw new DataError(`${dir}: ImageNet ${split} folder not found (expected ${root}/${split}/<wnid>/*.JPEG)`);
  return new ImageFolder(dir, opts);
}
