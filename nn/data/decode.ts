// Image file decoding to RGB uint8 HWC, chosen by the file's magic bytes rather than its name (ImageNet has PNG
// files named .JPEG). JPEG: libjpeg-turbo 3 compiled to WebAssembly (npm @cornerstonejs/codec-libjpeg-turbo-8bit,
// TurboJPEG with default flags: integer "islow" IDCT, fancy chroma upsampling), i.e. what Pillow (and so
// torchvision) gets from libjpeg-turbo: pixels equal byte for byte on baseline, progressive, restart-marker, 4:2:0,
// 4:2:2, 4:4:4 and greyscale files (tests/data-jpeg-pillow.test.ts); 1-component grey is repeated to RGB. The wasm
// module is compiled synchronously on first use, once per thread (so in each decode worker too). jpeg-js is the
// fallback only where that decoder cannot: 4-component Adobe CMYK/YCCK (TurboJPEG cannot convert it to RGB; jpeg-js
// gives R = (255 - C)(255 - K) / 255 as PIL does, within 1 level of Pillow), files libjpeg-turbo rejects or flags
// with a corrupt-data warning (a truncated file, extraneous bytes: jpeg-js's best effort, not Pillow's), files
// whose frame header the size check cannot find or whose size libjpeg-turbo reads differently, and a missing or
// unloadable wasm package (jpegDecoderInfo() says why). PTSLAB_JPEG_DECODER=jpeg-js (or the `jpeg` option) forces
// jpeg-js, for comparison. PNG with pngjs (alpha dropped, as PIL's convert('RGB')). Anything else,
// or a file every decoder rejects, is a DataError naming the file; so is a header claiming more pixels than the
// file's bytes can encode, checked before any decoder allocates anything.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
 * `components` is the frame's component count (4: CMYK/YCCK).
 */
function jpegSize(b: Uint8Array): { width: number; height: number; components: number } | null {
  const at = (i: number) => ({ height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8], components: b[i + 9] ?? 0 });
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
  let best: { width: number; height: number; components: number } | null = null;
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

/** Which JPEG decoder decodeImage uses by default, and why when it is not libjpeg-turbo. */
export type JpegDecoderName = 'libjpeg-turbo' | 'jpeg-js';

interface TurboModule {
  JPEGDecoder: new () => TurboDecoder;
  HEAPU8: Uint8Array;
  HEAPU32: Uint32Array;
}
interface TurboDecoder {
  getEncodedBuffer(n: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  readHeader(): void;
  decode(): void;
  getFrameInfo(): { width: number; height: number; componentCount: number; bitsPerSample: number };
  delete(): void;
}

// Minimal typings of the WebAssembly JS API (this project's lib setting has no WebAssembly declarations).
interface WasmInstance {
  exports: unknown;
}
const WA = (globalThis as unknown as {
  WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (m: object, imports: object) => WasmInstance };
}).WebAssembly;

const TURBO_PACKAGE = '@cornerstonejs/codec-libjpeg-turbo-8bit';
let turbo: { module: TurboModule; decoder: TurboDecoder } | null = null;
let turboError: string | null = null;

/**
 * The emscripten module, instantiated synchronously (its factory is asynchronous, but with an instantiateWasm hook
 * that instantiates at once the runtime starts before the factory returns) and cached per thread; null, with
 * turboError set, when the package cannot be loaded.
 */
function loadTurbo(): { module: TurboModule; decoder: TurboDecoder } | null {
  if (turbo || turboError) return turbo;
  try {
    const require = createRequire(import.meta.url);
    const factory = require(`${TURBO_PACKAGE}/decodewasmjs`) as (m: object) => Promise<unknown>;
    const wasm = new WA.Module(readFileSync(require.resolve(`${TURBO_PACKAGE}/decodewasm`)));
    const m: Record<string, unknown> = {
      instantiateWasm(imports: object, done: (i: WasmInstance, m: object) => void) {
        const inst = new WA.Instance(wasm, imports);
        done(inst, wasm);
        return inst.exports;
      },
      print: () => {},
      printErr: () => {},
    };
    factory(m).catch(() => {}); // the promise settles later; errors surface below as a missing JPEGDecoder
    const module = m as unknown as TurboModule;
    if (typeof module.JPEGDecoder !== 'function') throw new Error('the module did not initialise synchronously');
    turbo = { module, decoder: new module.JPEGDecoder() };
  } catch (e) {
    turboError = `${TURBO_PACKAGE} unavailable: ${(e as Error).message}`;
  }
  return turbo;
}

/** The default JPEG decoder in this thread (loading libjpeg-turbo if need be) and, for jpeg-js, the reason. */
export function jpegDecoderInfo(): { decoder: JpegDecoderName; reason?: string } {
  if (process.env.PTSLAB_JPEG_DECODER === 'jpeg-js') return { decoder: 'jpeg-js', reason: 'PTSLAB_JPEG_DECODER=jpeg-js' };
  return loadTurbo() ? { decoder: 'libjpeg-turbo' } : { decoder: 'jpeg-js', reason: turboError ?? undefined };
}

/** libjpeg-turbo's RGB (or grey, repeated) pixels, or a string saying why it could not decode them. */
function decodeTurbo(bytes: Uint8Array, size: { width: number; height: number }): RawImage | string {
  const t = loadTurbo();
  if (!t) return turboError ?? 'libjpeg-turbo unavailable';
  const { module, decoder } = t;
  try {
    decoder.getEncodedBuffer(bytes.length).set(bytes);
    // libjpeg-turbo's own reading of the frame header must be the one checked against the limits before it
    // allocates the output.
    decoder.readHeader();
    const h = decoder.getFrameInfo();
    if (h.width !== size.width || h.height !== size.height) {
      decoder.getEncodedBuffer(0);
      return `libjpeg-turbo: its header reads ${h.width}x${h.height}, the frame header walk found ${size.width}x${size.height}`;
    }
    decoder.decode();
  } catch (e) {
    // A C++ exception: its value is a pointer to the thrown const char* (the wrapper's message).
    let msg = String(e);
    if (typeof e !== 'number') turbo = null; // a JS error (an emscripten abort): start a fresh instance next time
    else {
      const p = module.HEAPU32[e >> 2];
      let end = p;
      while (end < module.HEAPU8.length && module.HEAPU8[end] && end - p < 200) end++;
      msg = Buffer.from(module.HEAPU8.subarray(p, end)).toString('latin1').replace(/^~+|\s+$/g, '');
    }
    try {
      if (turbo) decoder.getEncodedBuffer(0);
    } catch {
      turbo = null;
    }
    return `libjpeg-turbo: ${msg}`;
  }
  const info = decoder.getFrameInfo();
  const px = decoder.getDecodedBuffer();
  const { width, height } = info;
  const n = width * height;
  let data: Uint8Array;
  if (info.componentCount === 1 && px.length === n) {
    data = new Uint8Array(3 * n);
    for (let i = 0; i < n; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = px[i];
  } else if (info.componentCount === 3 && px.length === 3 * n) {
    data = px.slice();
  } else {
    return `libjpeg-turbo: inconsistent output (${width}x${height}x${info.componentCount}, ${px.length} bytes)`;
  }
  decoder.getEncodedBuffer(0); // the input's copy in wasm memory is not kept (the output buffer is reused)
  return { data, height, width, channels: 3 };
}

function decodeJpegJs(bytes: Uint8Array, file: string, turboWhy: string | null): RawImage {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxMemoryUsageInMB: 1024 });
  } catch (e) {
    throw new DataError(`${file}: corrupt or unsupported JPEG: ${(e as Error).message}${turboWhy ? ` (and ${turboWhy})` : ''}`);
  }
  if (!img.width || !img.height || img.data.length !== img.width * img.height * 3) {
    throw new DataError(`${file}: JPEG decoded to an empty or inconsistent image (${img.width}x${img.height})`);
  }
  return { data: img.data, height: img.height, width: img.width, channels: 3 };
}

export interface DecodeOptions {
  /** JPEG decoder: 'libjpeg-turbo' (default unless PTSLAB_JPEG_DECODER=jpeg-js) or 'jpeg-js'. */
  jpeg?: JpegDecoderName;
}

/** Decode JPEG or PNG bytes to RGB; `file` names the source in errors. */
export function decodeImage(bytes: Uint8Array, file: string, opts: DecodeOptions = {}): RawImage {
  const fmt = sniffFormat(bytes);
  if (fmt === 'jpeg') {
    const size = jpegSize(bytes);
    if (size) checkClaimedSize(file, 'JPEG', size.width, size.height, size.width * size.height, 1024, bytes.length);
    const which = opts.jpeg ?? (process.env.PTSLAB_JPEG_DECODER === 'jpeg-js' ? 'jpeg-js' : 'libjpeg-turbo');
    let why: string | null = null;
    // A frame header the walk above cannot find (a damaged file) goes to jpeg-js as before: libjpeg-turbo would
    // size its output from a header that was never checked against the limits.
    if (which === 'libjpeg-turbo' && size && size.components !== 4) {
      const r = decodeTurbo(bytes, size);
      if (typeof r !== 'string') return r;
      why = r;
    }
    return decodeJpegJs(bytes, file, why);
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
