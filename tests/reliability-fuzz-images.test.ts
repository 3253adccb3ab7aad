// Fuzzing image files in an ImageNet-style folder (nn/data/image-folder.ts + decode.ts: JPEG via jpeg-js, PNG via
// pngjs). Seeds are small JPEGs (baseline, grey, the CMYK/YCCK fixtures) and PNGs (grey, RGB, grey+alpha, RGBA, 8 and
// 16 bits); each case mutates one (bit flips, overwrites, truncations, appended/deleted bytes), may give it an absurd
// width/height (PNG with or without a fixed-up CRC), and may name a PNG .JPEG. The file goes into <root>/<class>/ and
// is read with ImageFolder(root).raw(0): a correct load (RGB, width*height*3 bytes, the seed's size when intact) or a
// DataError naming the file. No case may allocate by a header's claim: those are refused before decoding (decode.ts).

import { test } from 'uvu';
import fc from 'fast-check';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DataError, ImageFolder } from '../nn/data/index.js';
import { FUZZ_RUNS, fuzz, mutate, mutationsArb, outcome, Tally, tmp } from './reliability-common.js';

const FIX = fileURLToPath(new URL('../../tests/fixtures/images/', import.meta.url));

interface Seed {
  kind: 'jpeg' | 'png';
  bytes: Uint8Array;
  width: number;
  height: number;
}

function crc32(b: Uint8Array): number {
  let crc = 0xffffffff;
  for (const x of b) {
    let c = (crc ^ x) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pixels(w: number, h: number, seed: number): Buffer {
  const px = Buffer.alloc(w * h * 4);
  for (let k = 0; k < px.length; k++) px[k] = (k % 4 === 3 ? 255 : (seed * 17 + k * 29) & 255);
  return px;
}

function seeds(): Seed[] {
  const out: Seed[] = [];
  for (const [w, h, q] of [[1, 1, 90], [8, 8, 75], [13, 7, 50], [16, 16, 95], [3, 20, 10]] as const) {
    out.push({ kind: 'jpeg', bytes: new Uint8Array(jpeg.encode({ width: w, height: h, data: pixels(w, h, w + h) }, q).data), width: w, height: h });
  }
  for (const f of ['gray.jpg', 'cmyk.jpg', 'ycck.jpg']) {
    const bytes = new Uint8Array(readFileSync(FIX + f));
    const img = jpeg.decode(bytes, { useTArray: true });
    out.push({ kind: 'jpeg', bytes, width: img.width, height: img.height });
  }
  for (const [w, h, colorType, bitDepth] of [[1, 1, 2, 8], [6, 5, 0, 8], [4, 9, 4, 8], [7, 7, 6, 8], [5, 3, 2, 16], [10, 2, 6, 16]] as const) {
    const png = new PNG({ width: w, height: h, colorType, inputColorType: 6, bitDepth, inputHasAlpha: true } as never);
    png.data = pixels(w, h, w * h);
    out.push({ kind: 'png', bytes: new Uint8Array(PNG.sync.write(png, { colorType, bitDepth, inputColorType: 6, inputHasAlpha: true } as never)), width: w, height: h });
  }
  return out;
}

/** Offsets of a JPEG's SOFn height field, by walking the markers. */
function sofOffset(b: Uint8Array): number {
  let i = 2;
  while (i + 3 < b.length) {
    const m = b[i + 1];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return i + 5;
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  return -1;
}

type SizeHit = { kind: 'none' } | { kind: 'size'; width: number; height: number; fixCrc: boolean } | { kind: 'pngField'; at: 24 | 25 | 26 | 27 | 28; value: number; fixCrc: boolean };
const big = fc.oneof(fc.constantFrom(0, 1, 65535, 30000, 10000, 4096, 2 ** 31 - 1, 0xffffffff), fc.integer({ min: 0, max: 70000 }));
const sizeHitArb: fc.Arbitrary<SizeHit> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('size' as const), width: big, height: big, fixCrc: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pngField' as const), at: fc.constantFrom(24 as const, 25 as const, 26 as const, 27 as const, 28 as const), value: fc.integer({ min: 0, max: 255 }), fixCrc: fc.boolean() }) },
);

function hitSize(s: Seed, h: SizeHit): Uint8Array {
  const b = s.bytes.slice();
  const dv = new DataView(b.buffer);
  if (h.kind === 'size' && s.kind === 'jpeg') {
    const at = sofOffset(b);
    if (at > 0 && at + 4 <= b.length) {
      dv.setUint16(at, h.height & 0xffff);
      dv.setUint16(at + 2, h.width & 0xffff);
    }
  } else if (h.kind !== 'none' && s.kind === 'png') {
    if (h.kind === 'size') {
      dv.setUint32(16, h.width >>> 0);
      dv.setUint32(20, h.height >>> 0);
    } else b[h.at] = h.value;
    if (h.fixCrc) dv.setUint32(29, crc32(b.subarray(12, 29)));
  }
  return b;
}

test(`JPEG/PNG files in an ImageNet-style folder: ${FUZZ_RUNS} fuzzed files through ImageFolder.raw`, () => {
  const pool = seeds();
  const root = tmp('images');
  const tally = new Tally('JPEG/PNG image folder (ImageFolder.raw)');
  let n = 0;
  fuzz([fc.nat(pool.length - 1), sizeHitArb, mutationsArb, fc.constantFrom('.JPEG', '.jpg', '.png')], (which, hit, ms, ext) => {
    const s = pool[which];
    const bytes = mutate(hitSize(s, hit), ms);
    const dir = join(root, `case-${n++}`);
    mkdirSync(join(dir, 'n01440764'), { recursive: true });
    const file = join(dir, 'n01440764', `img${ext}`);
    writeFileSync(file, bytes);
    const intact = hit.kind === 'none' && ms.length === 0;
    const t0 = performance.now();
    const r = outcome(tally, file, () => new ImageFolder(dir, { pool: null }).raw(0), (img) => {
      if (img.channels !== 3 || !(img.width >= 1 && img.height >= 1) || img.data.length !== img.width * img.height * 3) return false;
      if (intact && (img.width !== s.width || img.height !== s.height)) return false;
    }, DataError);
    // Keep slow cases for inspection (the machine is shared, so slow is reported, not failed, below CASE_LIMIT_MS).
    if (performance.now() - t0 > 1000) {
      const keep = join(tmpdir(), `ptslab-slow-case-${n}${ext}`);
      copyFileSync(file, keep);
      console.log(`  slow case (${(performance.now() - t0).toFixed(0)} ms): kept as ${keep}`);
    }
    rmSync(dir, { recursive: true, force: true });
    return r;
  });
  rmSync(root, { recursive: true, force: true });
  tally.done(100, 100);
});

test.run();
