// Image file decoding to RGB uint8 HWC, chosen by the file's magic bytes rather than its name (ImageNet has PNG
// files named .JPEG): JPEG with jpeg-js (baseline and progressive; 1-component grey is repeated to RGB, 4-component
// Adobe CMYK/YCCK is converted with R = (255 - C)(255 - K) / 255 as PIL does), PNG with pngjs (alpha dropped, as
// PIL's convert('RGB')). Anything else, or a file the decoder rejects, is a DataError naming the file; so is a header
// claiming more pixels than the file's bytes can encode, checked before the decoder allocates anything.

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

/** PIL's decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS): larger images are refused before decoding. */
export const MAX_IMAGE_PIXELS = 178_956_970;

const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/**
 * Width and height a JPEG's frame header (SOFn) claims. Walks the marker segments as jpeg-js does (including its
 * recovery from a length one byte too long); when the walk goes astray in a damaged file, falls back to the largest
 * claim of any SOF-like marker before the first start-of-scan, since jpeg-js resynchronises in ways a walk cannot.
 */
function jpegSize(b: Uint8Array): { width: number; height: number } | null {
  const at = (i: number) => ({ height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8] });
  let i = 2;
  while (i + 8 < b.length) {
    if (b[i] !== 0xff) {
      if (b[i - 1] === 0xff && b[i] >= 0xc0) {
        i--; // jpeg-js: "the last 0xFF byte of the previous block was eaten by the encoder"
        continue;
      }
      break;
    }
    const m = b[i + 1];
    if (m === 0xff) {
      i++; // fill byte
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      i += 2; // standalone marker
      continue;
    }
    if (m === 0xda || m === 0xd9) break; // start of scan / end of image without a frame header: damaged
    if (isSof(m)) return at(i);
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  let best: { width: number; height: number } | null = null;
  for (let k = 2; k + 8 < b.length; k++) {
    if (b[k] !== 0xff) continue;
    if (b[k + 1] === 0xda) break;
    if (isSof(b[k + 1])) {
      const c = at(k);
      if (!best || c.width * c.height > best.width * best.height) best = c;
    }
  }
  return best;
}

/**
 * Refuse, before the decoder allocates, an image whose header claims more pixels than its bytes can hold: a truncated
 * or bit-flipped header must not drive a multi-gigabyte allocation. Huffman-coded JPEG spends at least one bit per
 * 8x8 block of its full-resolution component (<= 512 pixels a byte); deflate expands at most 1032-fold. Both bounds
 * get 2x slack.
 */
function checkClaimedSize(file: string, what: string, width: number, height: number, rawBytes: number, perByte: number, fileBytes: number): void {
  const pixels = width * height;
  if (pixels > MAX_IMAGE_PIXELS) throw new DataError(`${file}: ${what} header claims ${width}x${height} pixels, over the ${MAX_IMAGE_PIXELS}-pixel limit`);
  if (rawBytes > perByte * fileBytes + (1 << 20)) {
    throw new DataError(`${file}: ${what} header claims ${width}x${height} pixels, more than a ${fileBytes}-byte file can encode (truncated or corrupt)`);
  }
}

/** Decode JPEG or PNG bytes to RGB; `file` names the source in errors. */
export function decodeImage(bytes: Uint8Array, file: string): RawImage {
  const fmt = sniffFormat(bytes);
  if (fmt === 'jpeg') {
    const size = jpegSize(bytes);
    if (size) checkClaimedSize(file, 'JPEG', size.width, size.height, size.width * size.height, 1024, bytes.length);
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
    if (bytes.length >= 26) {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const [width, height] = [dv.getUint32(16), dv.getUint32(20)];
      const channels = [1, 0, 3, 1, 2, 0, 4][bytes[25]] || 4;
      const rowBytes = Math.ceil((width * channels * Math.max(1, bytes[24])) / 8) + 1;
      checkClaimedSize(file, 'PNG', width, height, height * rowBytes, 2064, bytes.length);
    }
    let png: { width: number; height: number; data: Uint8Array };
    try {
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      throw new DataError(`${file}: corrupt PNG: ${(e as Error).message}`);
    }
    const n = png.width * png.height;
    if (!n || png.data.length < 4 * n) throw new DataError(`${file}: PNG decoded to an empty or inconsistent image (${png.width}x${png.height})`);
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
