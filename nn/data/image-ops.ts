// Pixel operations on uint8 HWC images (the "PIL image" stage of a torchvision pipeline): bilinear resize, crop with
// zero padding, pad, horizontal flip, conversion to RGB, and the final uint8 HWC -> float32 CHW step. Plain typed
// arrays only, no tensors, so the decode workers can import this file cheaply.
//
// Bilinear resize comes in two flavours:
// - antialias (default): Pillow's Image.resize(BILINEAR), reproduced to the bit: a triangle filter whose support
//   widens by the downscale factor, coefficients in 22-bit fixed point, a horizontal pass rounded to uint8 and then a
//   vertical pass. This is what torchvision's transforms.Resize does to PIL images, the way ImageNet checkpoints were
//   evaluated.
// - antialias: false: torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=False), i.e.
//   torchvision's Resize on uint8 tensors before v0.17: the 2x2 neighbourhood of the sample point
//   (x + 0.5) * scale - 0.5, clamped at the edges, computed in float32 as torch does and rounded half to even.

import type { RawImage } from './types.js';

const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;

export function makeImage(height: number, width: number, channels: 1 | 3, data?: Uint8Array): RawImage {
  return { data: data ?? new Uint8Array(height * width * channels), height, width, channels };
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1). */
function pilCoefficients(inSize: number, outSize: number): { bounds: Int32Array; kk: Float64Array; ksize: number } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    const w = new Float64Array(xmax);
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

const clip8 = (ss: number): number => {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** One separable pass of Pillow's resampler along rows (horizontal) or columns (vertical). */
function pilPass(src: RawImage, outH: number, outW: number, horizontal: boolean): RawImage {
  const { height: h, width: w, channels: c } = src;
  const { bounds, kk, ksize } = horizontal ? pilCoefficients(w, outW) : pilCoefficients(h, outH);
  const out = makeImage(outH, outW, c);
  const s = src.data;
  const o = out.data;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const k = horizontal ? x : y;
      const min = bounds[k * 2];
      const n = bounds[k * 2 + 1];
      for (let ch = 0; ch < c; ch++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let t = 0; t < n; t++) {
          const p = horizontal ? s[(y * w + min + t) * c + ch] : s[((min + t) * w + x) * c + ch];
          ss += p * kk[k * ksize + t];
        }
        o[(y * outW + x) * c + ch] = clip8(ss);
      }
    }
  }
  return out;
}

const roundHalfEven = (v: number): number => {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
};

/**
 * torch interpolate bilinear, align_corners=False, antialias=False, on uint8 values, in float32 arithmetic in
 * torch's order: ((p00 w0 + p01 w1) h0 + (p10 w0 + p11 w1) h1), then rounded half to even. Matches torch 1.13 to
 * within one level: values that land within a float32 ulp of .5 can round the other way.
 */
function torchBilinear(src: RawImage, outH: number, outW: number): RawImage {
  const f = Math.fround;
  const { height: h, width: w, channels: c } = src;
  const out = makeImage(outH, outW, c);
  const axis = (inSize: number, outSize: number) => {
    const lo = new Int32Array(outSize);
    const hi = new Int32Array(outSize);
    const l0 = new Float32Array(outSize);
    const l1 = new Float32Array(outSize);
    const scale = f(inSize / outSize);
    for (let i = 0; i < outSize; i++) {
      const srcPos = Math.max(f(scale * (i + 0.5) - 0.5), 0);
      lo[i] = Math.min(Math.floor(srcPos), inSize - 1);
      hi[i] = Math.min(lo[i] + 1, inSize - 1);
      l1[i] = Math.min(Math.max(f(srcPos - lo[i]), 0), 1);
      l0[i] = f(1 - l1[i]);
    }
    return { lo, hi, l0, l1 };
  };
  const ys = axis(h, outH);
  const xs = axis(w, outW);
  const s = src.data;
  for (let y = 0; y < outH; y++) {
    const y0 = ys.lo[y] * w, y1 = ys.hi[y] * w, h0 = ys.l0[y], h1 = ys.l1[y];
    for (let x = 0; x < outW; x++) {
      const x0 = xs.lo[x], x1 = xs.hi[x], w0 = xs.l0[x], w1 = xs.l1[x];
      for (let ch = 0; ch < c; ch++) {
        const top = f(f(s[(y0 + x0) * c + ch] * w0) + f(s[(y0 + x1) * c + ch] * w1));
        const bot = f(f(s[(y1 + x0) * c + ch] * w0) + f(s[(y1 + x1) * c + ch] * w1));
        const v = roundHalfEven(f(f(top * h0) + f(bot * h1)));
        out.data[(y * outW + x) * c + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

export interface ResizeOptions {
  /** Pillow-exact antialiased bilinear (true, default) or torch's plain bilinear (false). */
  antialias?: boolean;
}

/** Bilinear resize to exactly outH x outW. */
export function resize(img: RawImage, outH: number, outW: number, opts: ResizeOptions = {}): RawImage {
  if (outH === img.height && outW === img.width) return makeImage(outH, outW, img.channels, img.data.slice());
  if (opts.antialias === false) return torchBilinear(img, outH, outW);
  let cur = img;
  if (outW !== img.width) cur = pilPass(cur, cur.height, outW, true);
  if (outH !== img.height) cur = pilPass(cur, outH, outW, false);
  return cur;
}

/** torchvision's Resize(size) output size: the short side becomes `size`, the long side int(size * long / short). */
export function shortSideSize(height: number, width: number, size: number): [number, number] {
  if (width <= height) return [Math.trunc((size * height) / width), size];
  return [size, Math.trunc((size * width) / height)];
}

export function resizeShortSide(img: RawImage, size: number, opts: ResizeOptions = {}): RawImage {
  const [h, w] = shortSideSize(img.height, img.width, size);
  return resize(img, h, w, opts);
}

/** The window [top, top + h) x [left, left + w); parts outside the image are zero (torchvision pads, then crops). */
export function crop(img: RawImage, top: number, left: number, h: number, w: number): RawImage {
  const c = img.channels;
  const out = makeImage(h, w, c);
  for (let y = 0; y < h; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= img.height) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(w, img.width - left);
    if (x1 <= x0) continue;
    out.data.set(img.data.subarray((sy * img.width + left + x0) * c, (sy * img.width + left + x1) * c), (y * w + x0) * c);
  }
  return out;
}

/** Python's round(): half to even, as torchvision's center_crop uses for the offsets. */
export const pyRound = roundHalfEven;

/** torchvision center_crop: offsets int(round((H - h) / 2)), int(round((W - w) / 2)); zero padding if too small. */
export function centerCrop(img: RawImage, h: number, w: number): RawImage {
  if (h > img.height || w > img.width) {
    // torchvision pads [(w - W) // 2, (h - H) // 2, (w - W + 1) // 2, (h - H + 1) // 2] first
    const padL = w > img.width ? Math.floor((w - img.width) / 2) : 0;
    const padT = h > img.height ? Math.floor((h - img.height) / 2) : 0;
    const padR = w > img.width ? Math.floor((w - img.width + 1) / 2) : 0;
    const padB = h > img.height ? Math.floor((h - img.height + 1) / 2) : 0;
    img = crop(img, -padT, -padL, img.height + padT + padB, img.width + padL + padR);
  }
  const top = pyRound((img.height - h) / 2);
  const left = pyRound((img.width - w) / 2);
  return crop(img, top, left, h, w);
}

export function pad(img: RawImage, p: number): RawImage {
  return crop(img, -p, -p, img.height + 2 * p, img.width + 2 * p);
}

export function hflip(img: RawImage): RawImage {
  const { height: h, width: w, channels: c } = img;
  const out = makeImage(h, w, c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) out.data[(y * w + x) * c + ch] = img.data[(y * w + (w - 1 - x)) * c + ch];
    }
  }
  return out;
}

/** Grey to RGB by repeating the channel (PIL's convert('RGB') on mode L). */
export function toRgb(img: RawImage): RawImage {
  if (img.channels === 3) return img;
  const n = img.height * img.width;
  const out = makeImage(img.height, img.width, 3);
  for (let i = 0; i < n; i++) {
    const v = img.data[i];
    out.data[3 * i] = v;
    out.data[3 * i + 1] = v;
    out.data[3 * i + 2] = v;
  }
  return out;
}

/**
 * uint8 HWC -> float32 CHW in [0, 1] (torchvision ToTensor), then (x - mean[c]) / std[c] when given (Normalize).
 * Written into `out` at `offset` when given, so a batch is filled without an extra copy.
 */
export function toFloatChw(img: RawImage, norm?: { mean: readonly number[]; std: readonly number[] }, out?: Float32Array, offset = 0): Float32Array {
  const { height: h, width: w, channels: c } = img;
  const n = h * w;
  const dst = out ?? new Float32Array(c * n);
  for (let ch = 0; ch < c; ch++) {
    const m = norm ? norm.mean[ch] : 0;
    const s = norm ? norm.std[ch] : 1;
    const base = offset + ch * n;
    for (let i = 0; i < n; i++) dst[base + i] = (img.data[i * c + ch] / 255 - m) / s;
  }
  return dst;
}
