// JPEG decoding compared with Pillow's pixels (what torchvision users get): the fixtures in tests/fixtures/jpeg/,
// made by scripts/make-jpeg-fixtures.py with Debian's Pillow 9.4 on libjpeg-turbo 2.1.5 (4:2:0, 4:2:2, 4:4:4,
// progressive, Huffman-optimised, restart markers every MCU row and every few MCUs, greyscale, Adobe CMYK; odd
// sizes), each with Pillow's convert('RGB') (or mode 'L') bytes. libjpeg-turbo (wasm) must give exactly Pillow's
// bytes, on the main thread and in the decode worker pool; CMYK goes to the jpeg-js fallback, measured within 1
// level (jpeg-js's own IDCT, and its rounding of (255 - C)(255 - K) / 255). jpeg-js forced is the "before": it
// differs by tens of levels on subsampled chroma (no fancy upsampling), and the test keeps that on record.

import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeFile, decodeImage, jpegDecoderInfo } from '../nn/data/decode.js';
import { decodePool, shutdownDecodePool } from '../nn/data/pool.js';
import { toTensorOnly } from '../nn/data/transforms.js';

const FIX = new URL('../../tests/fixtures/jpeg/', import.meta.url);
interface Fixture {
  name: string;
  width: number;
  height: number;
  mode: 'RGB' | 'L' | 'CMYK';
  reference: string;
}
const manifest = JSON.parse(readFileSync(new URL('manifest.json', FIX), 'utf8')) as { fixtures: Fixture[] };
const path = (f: Fixture) => new URL(`${f.name}.jpg`, FIX).pathname;

/** Pillow's pixels as RGB HWC (grey repeated, as ptslab's decoder returns them). */
function pillowRgb(f: Fixture): Uint8Array {
  const ref = readFileSync(new URL(f.reference, FIX));
  if (f.mode !== 'L') return ref;
  const out = new Uint8Array(ref.length * 3);
  for (let i = 0; i < ref.length; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = ref[i];
  return out;
}

function diff(a: ArrayLike<number>, b: ArrayLike<number>): { mean: number; max: number } {
  assert.is(a.length, b.length);
  let s = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    s += d;
    if (d > max) max = d;
  }
  return { mean: s / a.length, max };
}

const info = jpegDecoderInfo();
const turbo = info.decoder === 'libjpeg-turbo';
const skip = (name: string) => {
  console.log(`SKIP ${name}: the libjpeg-turbo decoder is not in use (${info.reason})`);
  test.skip(name, () => {});
};

test('the fixtures cover the cases (manifest)', () => {
  const names = manifest.fixtures.map((f) => f.name);
  for (const n of ['rgb-420', 'rgb-422', 'rgb-444', 'rgb-420-progressive', 'rgb-420-restart-rows', 'rgb-422-restart-blocks', 'grey', 'cmyk']) {
    assert.ok(names.includes(n), `fixture ${n} missing: rerun scripts/make-jpeg-fixtures.py (with jpegtran installed)`);
  }
  for (const f of manifest.fixtures) {
    const b = readFileSync(path(f));
    if (/restart/.test(f.name)) assert.ok(b.includes(Buffer.from([0xff, 0xdd])) && b.includes(Buffer.from([0xff, 0xd0])), `${f.name}: DRI and RST0 present`);
    if (/progressive/.test(f.name)) assert.ok(b.includes(Buffer.from([0xff, 0xc2])), `${f.name}: SOF2`);
  }
});

if (!turbo) skip('libjpeg-turbo decodes every non-CMYK fixture exactly as Pillow');
else {
  test('libjpeg-turbo decodes every non-CMYK fixture exactly as Pillow', () => {
    let n = 0;
    for (const f of manifest.fixtures) {
      if (f.mode === 'CMYK') continue;
      const im = decodeFile(path(f));
      assert.equal([im.width, im.height, im.channels], [f.width, f.height, 3], f.name);
      const d = diff(im.data, pillowRgb(f));
      assert.is(d.max, 0, `${f.name}: max |ptslab - Pillow| = ${d.max} (mean ${d.mean})`);
      n++;
    }
    assert.ok(n >= 11);
  });
}

test('CMYK: jpeg-js fallback within 1 level of Pillow (measured: max 1, mean 0.069)', () => {
  const f = manifest.fixtures.find((x) => x.mode === 'CMYK')!;
  const im = decodeFile(path(f));
  assert.equal([im.width, im.height, im.channels], [f.width, f.height, 3]);
  const d = diff(im.data, pillowRgb(f));
  assert.ok(d.max <= 1, `max ${d.max}`);
  assert.ok(d.mean < 0.1, `mean ${d.mean}`);
});

test('before: jpeg-js differs from Pillow on subsampled chroma (the reason for the switch)', () => {
  const rows: string[] = [];
  let worst = 0;
  for (const f of manifest.fixtures) {
    const d = diff(decodeImage(readFileSync(path(f)), f.name, { jpeg: 'jpeg-js' }).data, pillowRgb(f));
    rows.push(`${f.name}: mean ${d.mean.toFixed(3)} max ${d.max}`);
    if (f.name === 'rgb-420') worst = d.max;
  }
  console.log(`jpeg-js vs Pillow: ${rows.join('; ')}`);
  assert.ok(worst >= 20, `rgb-420: jpeg-js max ${worst}`); // measured 76
});

if (!turbo) skip('the decode worker pool gives Pillow pixels too');
else {
  test('the decode worker pool gives Pillow pixels too', async () => {
    try {
      for (const f of manifest.fixtures.filter((x) => x.mode !== 'CMYK')) {
        const { data, shape } = await decodePool().run(path(f), toTensorOnly, 0);
        assert.equal(shape, [3, f.height, f.width]);
        const ref = pillowRgb(f);
        const hw = f.height * f.width;
        let max = 0;
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < hw; i++) max = Math.max(max, Math.abs(Math.round(data[c * hw + i] * 255) - ref[3 * i + c]));
        }
        assert.is(max, 0, `${f.name} in a worker: max ${max}`);
      }
    } finally {
      await shutdownDecodePool();
    }
  });
}

test.run();
