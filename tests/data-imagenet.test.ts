// The ImageFolder/ImageNet reader on the synthetic folder: class order, file order, labels, the awkward files (a
// one-component grey JPEG, Adobe CMYK and YCCK JPEGs compared with PIL's decode, a PNG named .JPEG), decoding in
// the worker pool equal to decoding on the main thread, and the errors for missing folders and corrupt files.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DataError, ImageFolder, decodeFile, imagenet, imagenetEval, makeSyntheticImageNet, shutdownDecodePool, sniffFormat,
  type RawImage,
} from '../nn/data/index.js';
import { CMYK_JPEG_BASE64, GRAY_JPEG_BASE64, YCCK_JPEG_BASE64 } from '../nn/data/synthetic-assets.js';
import { throwsMatching } from './helpers/throws.js';

const FIX = new URL('../../tests/fixtures/images/', import.meta.url);
const goldens = JSON.parse(readFileSync(new URL('goldens.json', FIX), 'utf8'));
const tmp = mkdtempSync(join(tmpdir(), 'ptslab-imagenet-'));
const root = join(tmp, 'synth');
const made = makeSyntheticImageNet(root, { classes: 3, perClass: 3, size: 32, seed: 5 });

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.is(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
async function rejectsData(p: Promise<unknown>, pattern: RegExp) {
  try {
    await p;
  } catch (e) {
    assert.instance(e, DataError);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a DataError matching ${pattern}`);
}
const throwsData = (fn: () => unknown, pattern: RegExp) => throwsMatching(fn, DataError, pattern);

/** Number of components in a JPEG's SOF0/SOF2 frame header, and whether it has an Adobe APP14 marker. */
function jpegLayout(b: Uint8Array): { components: number; adobe: boolean } {
  let components = -1;
  for (let i = 2; i + 9 < b.length; i++) {
    if (b[i] === 0xff && (b[i + 1] === 0xc0 || b[i + 1] === 0xc2)) {
      components = b[i + 9];
      break;
    }
  }
  return { components, adobe: Buffer.from(b).includes(Buffer.from([0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65])) };
}

const d = suite('decode');

d('the fixtures are what they claim: 1-component grey, 4-component Adobe CMYK and YCCK', () => {
  assert.equal(jpegLayout(readFileSync(new URL('gray.jpg', FIX))), { components: 1, adobe: false });
  assert.equal(jpegLayout(readFileSync(new URL('cmyk.jpg', FIX))), { components: 4, adobe: true });
  assert.equal(jpegLayout(readFileSync(new URL('ycck.jpg', FIX))), { components: 4, adobe: true });
  assert.is(readFileSync(new URL('cmyk.jpg', FIX))[17], 0); // APP14 transform byte (after 'Adobe', version, flags): 0 = CMYK
  assert.is(readFileSync(new URL('ycck.jpg', FIX))[17], 2); // 2 = YCCK
});

d('embedded assets are the committed fixtures', () => {
  for (const [name, b64] of [['gray.jpg', GRAY_JPEG_BASE64], ['cmyk.jpg', CMYK_JPEG_BASE64], ['ycck.jpg', YCCK_JPEG_BASE64]]) {
    assert.ok(readFileSync(new URL(name, FIX)).equals(Buffer.from(b64, 'base64')), name);
  }
});

d('grey, CMYK (Adobe transform 0) and YCCK (transform 2) JPEGs decode to RGB within 1 level of PIL', () => {
  for (const name of ['gray.jpg', 'cmyk.jpg', 'ycck.jpg']) {
    const g = goldens.decode[name];
    const im = decodeFile(new URL(name, FIX).pathname);
    assert.equal([im.height, im.width, im.channels], [g.height, g.width, 3], name);
    assert.ok(maxDiff(im.data, g.rgb) <= 1, `${name}: max difference ${maxDiff(im.data, g.rgb)}`);
  }
  const cmyk = decodeFile(new URL('cmyk.jpg', FIX).pathname);
  const px = (y: number, x: number) => Array.from(cmyk.data.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3));
  const want = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
  [px(2, 2), px(2, 13), px(9, 2), px(9, 13)].forEach((p, k) => assert.ok(maxDiff(p, want[k]) <= 1, `quadrant ${k}: ${p}`));
});

const f = suite('ImageFolder');

f('synthetic ImageNet: sorted classes, torchvision file order, labels, counts', () => {
  const ds = imagenet(root, 'train', { pool: null });
  assert.equal(ds.classes, ['n00000000', 'n00000001', 'n00000002']);
  assert.is(ds.length, made.trainCount);
  assert.is(made.trainCount, 9 + 4);
  const names = ds.files.map((p) => p.slice(root.length + 7));
  assert.equal(names.slice(0, 4), ['n00000000/n00000000_0.JPEG', 'n00000000/n00000000_1.JPEG', 'n00000000/n00000000_2.JPEG', 'n00000000/n00000000_gray.JPEG']);
  assert.equal(Array.from(ds.labels), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
  const val = imagenet(root, 'val', { pool: null });
  assert.is(val.length, made.valCount);
  for (let i = 0; i < ds.length; i++) {
    const r = ds.raw(i);
    assert.is(r.channels, 3);
    assert.ok(r.height >= 12 && r.width >= 16 && r.height <= 40 && r.width <= 40, `${ds.files[i]}: ${r.height}x${r.width}`);
  }
});

f('the special files: grey JPEG, CMYK, YCCK, and PNG content behind a .JPEG name', () => {
  const [gray] = made.special.gray;
  assert.is(sniffFormat(readFileSync(made.special.png[0])), 'png');
  assert.is(sniffFormat(readFileSync(gray)), 'jpeg');
  const g = decodeFile(gray);
  for (let i = 0; i < g.width * g.height; i++) assert.ok(g.data[3 * i] === g.data[3 * i + 1] && g.data[3 * i] === g.data[3 * i + 2]);
  assert.ok(maxDiff(decodeFile(made.special.cmyk[0]).data.subarray(0, 3), [255, 0, 0]) <= 1);
  assert.ok(maxDiff(decodeFile(made.special.ycck[0]).data.subarray(0, 3), [255, 0, 0]) <= 1);
  const png: RawImage = decodeFile(made.special.png[0]);
  assert.is(png.channels, 3);
  // class 2 is blue-ish: hue 240 degrees -> (0, 0, 255) stripes under noise
  let b = 0;
  let r = 0;
  for (let i = 0; i < png.width * png.height; i++) (b += png.data[3 * i + 2]), (r += png.data[3 * i]);
  assert.ok(b > 4 * r, 'PNG pixels are the painted class colour');
});

f('the generator is deterministic by seed', () => {
  const again = makeSyntheticImageNet(join(tmp, 'again'), { classes: 3, perClass: 3, size: 32, seed: 5 });
  const other = makeSyntheticImageNet(join(tmp, 'other'), { classes: 3, perClass: 3, size: 32, seed: 6 });
  const file = 'train/n00000001/n00000001_2.JPEG';
  assert.ok(readFileSync(join(root, file)).equals(readFileSync(join(again.root, file))));
  assert.not.ok(readFileSync(join(root, file)).equals(readFileSync(join(other.root, file))));
});

f('decoding in the worker pool equals decoding on the main thread', async () => {
  const t = imagenetEval(24, 28);
  const main = new ImageFolder(join(root, 'train'), { transform: t, pool: null });
  const pooled = new ImageFolder(join(root, 'train'), { transform: t });
  for (let i = 0; i < main.length; i++) {
    const a = main.get(i, 3);
    const b = await pooled.getAsync(i, 3);
    assert.equal(b.image.shape, [3, 24, 24]);
    assert.is(b.label, a.label);
    assert.equal(Array.from(b.image.toArray()), Array.from(a.image.toArray()), main.files[i]);
  }
});

f('missing folders, empty classes, corrupt and non-image files are DataErrors naming the path', async () => {
  throwsData(() => imagenet(join(tmp, 'nowhere')), /nowhere: ImageNet folder not found/);
  throwsData(() => imagenet(root, 'test' as 'val'), /synth\/test: ImageNet test folder not found/);
  const bad = join(tmp, 'bad');
  mkdirSync(join(bad, 'a'), { recursive: true });
  mkdirSync(join(bad, 'b'), { recursive: true });
  throwsData(() => new ImageFolder(bad), /bad\/a: class folder has no/);
  const good = readFileSync(join(root, 'train/n00000000/n00000000_0.JPEG'));
  writeFileSync(join(bad, 'a', 'cut.JPEG'), good.subarray(0, good.length >> 1));
  writeFileSync(join(bad, 'b', 'text.JPEG'), 'hello');
  const ds = new ImageFolder(bad, { pool: null });
  throwsData(() => ds.get(0), /bad\/a\/cut\.JPEG: corrupt or unsupported JPEG/);
  throwsData(() => ds.get(1), /bad\/b\/text\.JPEG: not a JPEG or PNG file \(first bytes 68656c6c\)/);
  const pooled = new ImageFolder(bad);
  await rejectsData(pooled.getAsync(0, 0), /bad\/a\/cut\.JPEG: corrupt or unsupported JPEG/);
});

f.after(async () => {
  await shutdownDecodePool();
  rmSync(tmp, { recursive: true, force: true });
});
d.run();
f.run();
