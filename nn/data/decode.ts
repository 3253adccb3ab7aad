// Image file decoding to RGB uint8 HWC, chosen by the file's magic bytes rather than its name (ImageNet has PNG
// files named .JPEG): JPEG with jpeg-js (baseline and progressive; 1-component grey is repeated to RGB, 4-component
// Adobe CMYK/YCCK is converted with R = (255 - C)(255 - K) / 255 as PIL does), PNG with pngjs (alpha dropped, as
// PIL's convert('RGB')). Anything else, or a file the decoder rejects, is a DataError naming the file.

import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RawImage } from './types.js';
import { DataError } from './types.js';

export type ImageFormat = 'jpeg' | 'png' | 'unknown';

export function sniffFormat(bytes: Uint8Array): ImageFormat {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, k) => bytes[k] === b)) return 'png';
  return 'unknown';
}

/** Decode JPEG or PNG bytes to RGB; `file` names the source in errors. */
export function decodeImage(bytes: Uint8Array, file: string): RawImage {
  const fmt = sniffFormat(bytes);
  if (fmt === 'jpeg') {
    let img: { width: number; height: number; data: Uint8Array };
    try {
      img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxMemoryUsageInMB: 1024 });
    } catch (e) {
      throw new DataError(`${file}: corrupt or unsupported JPEG: ${(e as Error).message}`);
    }
    if (!img.width || !img.height || img.data.length !== img.width * img.height * 3) {
      throw new DataError(`${file}: JPEG decoded to an empty or inconsistent image (${img.width}x${img.height})`);
    }
    return { data: img.data, height: img.height, width: img.width, channels: 3 };
  }
  if (fmt === 'png') {
    let png: { width: number; height: number; data: Uint8Array };
    try {
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      throw new DataError(`${file}: corrupt PNG: ${(e as Error).message}`);
    }
    const n = png.width * png.height;
    const out = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      out[3 * i] = png.data[4 * i];
      out[3 * i + 1] = png.data[4 * i + 1];
      out[3 * i + 2] = png.data[4 * i + 2];
    }
    return { data: out, height: png.height, width: png.width, channels: 3 };
  }
  const head = Buffer.from(bytes.subarray(0, 4)).toString('hex');
  throw new DataError(`${file}: not a JPEG or PNG file (first bytes ${head || 'none: empty file'})`);
}

export function decodeFile(file: string): RawImage {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new DataError(`${file}: cannot read: ${(e as Error).message}`);
  }
  return decodeImage(bytes, file);
}
