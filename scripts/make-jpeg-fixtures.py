#!/usr/bin/python3
# Writes the JPEG fixtures under tests/fixtures/jpeg/ and Pillow's decoded pixels for each, the reference that
# tests/data-jpeg-pillow.test.ts compares ptslab's decoder with. Run with Debian's Python (Pillow 9.4 on Debian's
# libjpeg62-turbo 2.1.5, numpy): `/usr/bin/python3 scripts/make-jpeg-fixtures.py`. Restart-marker variants are made
# losslessly from Pillow's files with `jpegtran -restart` (Debian libjpeg-turbo-progs), since Pillow 9.4's encoder
# has no restart option; without jpegtran those two fixtures are left out (and the test skips them, saying so).
#
# Images are small with odd sizes (37x29, 45x31: partial MCUs at the right and bottom edges) and hold a smooth
# colour gradient plus seeded noise and a sharp-edged square, so that chroma upsampling and IDCT rounding both show.
# For each NAME.jpg: NAME.rgb (Pillow's Image.open(f).convert('RGB'), raw HWC bytes) or, for greyscale files,
# NAME.gray (mode 'L' as decoded, raw bytes); manifest.json lists name, size, mode, chroma sampling and options.

import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image, features

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'jpeg')


def pattern(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / (w - 1)
    g = 255 * y / (h - 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 4.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 18, (h, w, 3))
    img[h // 4: h // 2, w // 3: w // 2] = [250, 20, 40]  # a saturated red square: sharp chroma edges
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    rgb = Image.fromarray(pattern(37, 29, 1), 'RGB')
    rgb2 = Image.fromarray(pattern(45, 31, 2), 'RGB')
    grey = rgb.convert('L')
    cmyk = rgb2.convert('CMYK')
    specs = [
        ('rgb-420', rgb, dict(quality=90, subsampling=2)),
        ('rgb-422', rgb, dict(quality=90, subsampling=1)),
        ('rgb-444', rgb, dict(quality=90, subsampling=0)),
        ('rgb-420-q50', rgb2, dict(quality=50, subsampling=2)),
        ('rgb-420-progressive', rgb2, dict(quality=85, subsampling=2, progressive=True)),
        ('rgb-444-progressive', rgb, dict(quality=75, subsampling=0, progressive=True)),
        ('rgb-420-optimized', rgb2, dict(quality=90, subsampling=2, optimize=True)),
        ('grey', grey, dict(quality=90)),
        ('grey-progressive', grey, dict(quality=80, progressive=True)),
        ('cmyk', cmyk, dict(quality=90)),
    ]
    manifest = []

    def reference(name, extra):
        path = os.path.join(OUT, name + '.jpg')
        im = Image.open(path)
        mode = im.mode
        ref = im if mode == 'L' else im.convert('RGB')
        ext = 'gray' if mode == 'L' else 'rgb'
        with open(os.path.join(OUT, f'{name}.{ext}'), 'wb') as fh:
            fh.write(ref.tobytes())
        manifest.append(dict(name=name, width=im.width, height=im.height, mode=mode, reference=f'{name}.{ext}',
                             layers=getattr(im, 'layers', None), sampling=str(getattr(im, 'layer', None)), **extra))

    for name, im, opts in specs:
        im.save(os.path.join(OUT, name + '.jpg'), 'JPEG', **opts)
        reference(name, dict(options=opts))
    jpegtran = shutil.which('jpegtran')
    if jpegtran:
        for name, src, arg in [('rgb-420-restart-rows', 'rgb-420', '1'), ('rgb-422-restart-blocks', 'rgb-422', '3B'),
                               ('grey-restart-blocks', 'grey', '5B')]:
            subprocess.run([jpegtran, '-copy', 'none', '-restart', arg, '-outfile', os.path.join(OUT, name + '.jpg'),
                            os.path.join(OUT, src + '.jpg')], check=True)
            reference(name, dict(options=dict(source=src, jpegtran_restart=arg)))
    else:
        print('jpegtran not found (Debian libjpeg-turbo-progs): restart-marker fixtures not written', file=sys.stderr)
    with open(os.path.join(OUT, 'manifest.json'), 'w') as fh:
        json.dump(dict(pillow=Image.__version__, libjpeg=features.version('jpg'), fixtures=manifest), fh, indent=1)
        fh.write('\n')
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'{len(manifest)} fixtures, {total} bytes in {OUT}')


if __name__ == '__main__':
    main()
