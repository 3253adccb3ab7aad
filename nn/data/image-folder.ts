// ImageNet and any other dataset in torchvision's ImageFolder layout: <root>/<class>/**/<file>, class index = position
// of the folder name in the sorted list (Python's code-point order), files in torchvision's make_dataset order:
// sorted(os.walk(class_dir, followlinks=True)) visits directories in sorted path order, and each one's files sorted.
// Only the file list lives in memory; get(i) reads, decodes (decode.ts) and transforms on the calling thread,
// getAsync(i, seed) does it in the decode worker pool (pool.ts), which is what the DataLoader uses.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fromStorage } from '../../core/index.js';
import { decodeFile } from './decode.js';
import { decodePool, type DecodePool } from './pool.js';
import { toSample } from './array-dataset.js';
import { toTensorOnly, type Transform } from './transforms.js';
import { checkIndex, DataError, type Dataset, type RawImage, type Sample } from './types.js';

/** Extensions read (case-insensitive); the content decides the decoder, so a PNG named .JPEG is fine. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'] as const;

/** torchvision's other IMG_EXTENSIONS: files its ImageFolder would read and ptslab cannot decode. */
export const UNSUPPORTED_IMAGE_EXTENSIONS = ['.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'] as const;

/** The files and labels of an ImageFolder root, before any image is read. */
export interface ImageFolderListing {
  readonly classes: readonly string[];
  readonly files: readonly string[];
  readonly labels: Int32Array;
  /** Files torchvision would read but ptslab skips (UNSUPPORTED_IMAGE_EXTENSIONS), in walk order. */
  readonly unsupported: readonly string[];
}

export interface ImageFolderOptions {
  transform?: Transform;
  /** Decode pool for getAsync (default: the shared pool); null decodes on the main thread. */
  pool?: DecodePool | null;
  /** A listing of `root` made before (listImageFolder), so the folder is not walked again. */
  listing?: ImageFolderListing;
}

/** Python's str ordering (by code point), which torchvision's sorted() uses; JS's default sorts UTF-16 units. */
export function pyStrCompare(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

const hasExt = (name: string, exts: readonly string[]) => {
  const lower = name.toLowerCase();
  return exts.some((e) => lower.endsWith(e));
};

/** Is p a directory, following symbolic links (a dangling link is not). */
function isDirFollow(p: string, e: { isDirectory(): boolean; isSymbolicLink(): boolean }): boolean {
  if (e.isDirectory()) return true;
  if (!e.isSymbolicLink()) return false;
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Every directory under (and including) dir with its entries, as os.walk(followlinks=True) sees them. */
function walkDirs(dir: string, out: { dir: string; files: string[] }[]): void {
  const files: string[] = [];
  const subdirs: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (isDirFollow(p, e)) subdirs.push(p);
    else files.push(e.name);
  }
  out.push({ dir, files });
  for (const s of subdirs) walkDirs(s, out);
}

/** One class folder's image files in torchvision's order, and the torchvision-only image files met on the way. */
function classFiles(classDir: string): { files: string[]; unsupported: string[] } {
  const dirs: { dir: string; files: string[] }[] = [];
  walkDirs(classDir, dirs);
  dirs.sort((a, b) => pyStrCompare(a.dir, b.dir));
  const files: string[] = [];
  const unsupported: string[] = [];
  for (const d of dirs) {
    for (const f of d.files.sort(pyStrCompare)) {
      if (hasExt(f, IMAGE_EXTENSIONS)) files.push(join(d.dir, f));
      else if (hasExt(f, UNSUPPORTED_IMAGE_EXTENSIONS)) unsupported.push(join(d.dir, f));
    }
  }
  return { files, unsupported };
}

/** The class folder names of root, sorted as torchvision's find_classes sorts them (hidden folders included, as there). */
export function imageFolderClasses(root: string): string[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new DataError(`${root}: image folder not found`);
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => isDirFollow(join(root, e.name), e))
    .map((e) => e.name)
    .sort(pyStrCompare);
}

/**
 * Classes, files and labels of an ImageFolder root without reading any image. A root with no class folders, or a
 * class folder with no .jpg/.jpeg/.png file, is a DataError naming it (torchvision refuses those too).
 */
export function listImageFolder(root: string): ImageFolderListing {
  const classes = imageFolderClasses(root);
  if (classes.length === 0) throw new DataError(`${root}: no class folders (expected <root>/<class>/<image files>)`);
  const files: string[] = [];
  const labels: number[] = [];
  const unsupported: string[] = [];
  classes.forEach((c, k) => {
    const found = classFiles(join(root, c));
    if (found.files.length === 0) throw new DataError(`${join(root, c)}: class folder has no ${IMAGE_EXTENSIONS.join('/')} files`);
    files.push(...found.files);
    unsupported.push(...found.unsupported);
    for (let j = 0; j < found.files.length; j++) labels.push(k);
  });
  return { classes, files, labels: Int32Array.from(labels), unsupported };
}

export class ImageFolder implements Dataset {
  readonly classes: readonly string[];
  readonly files: readonly string[];
  readonly labels: Int32Array;
  /** Files torchvision would read but this reader skips (.bmp, .webp, ...); see listImageFolder. */
  readonly unsupported: readonly string[];
  readonly transform: Transform;
  private readonly pool: DecodePool | null | undefined;

  constructor(
    readonly root: string,
    opts: ImageFolderOptions = {},
  ) {
    const listing = opts.listing ?? listImageFolder(root);
    this.classes = listing.classes;
    this.files = listing.files;
    this.labels = listing.labels;
    this.unsupported = listing.unsupported;
    this.transform = opts.transform ?? toTensorOnly;
    this.pool = opts.pool;
  }

  get length(): number {
    return this.files.length;
  }

  /** The same files and labels under another transform (the folder is not walked again). */
  withTransform(transform: Transform): ImageFolder {
    return new ImageFolder(this.root, { transform, pool: this.pool, listing: this });
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
