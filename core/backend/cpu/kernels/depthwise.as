// Depthwise convolution kernels (groups = channels = output channels), one plane at a time over a zero-padded copy
// in the calling thread's scratch.

import { madd } from './common';

/**
 * Copy plane x [H, W] into a zero-padded scratch [Hp, Wp] with x at (ph, pw); rows/cols outside are zero. Returns
 * nothing; the caller addresses scratch with row stride Wp.
 */
function padPlane(x: usize, H: i32, W: i32, ph: i32, pw: i32, Hp: i32, Wp: i32, s: usize): void {
  memory.fill(s, 0, <usize>(Hp * Wp) << 2);
  for (let r = 0; r < Hp; r++) {
    const ih = r - ph;
    if (<u32>ih >= <u32>H) continue;
    const c0 = pw > 0 ? pw : 0;
    const iw0 = c0 - pw;
    let n = W - iw0;
    if (c0 + n > Wp) n = Wp - c0;
    if (n > 0) memory.copy(s + (<usize>(r * Wp + c0) << 2), x + (<usize>(ih * W + iw0) << 2), <usize>n << 2);
  }
}

/**
 * One depthwise plane: out[oh, ow] = bias + sum w[kh, kw] * x[oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] (zero outside);
 * flip != 0 uses w[KH-1-kh, KW-1-kw] (the stride-1 backward-input case). ph, pw >= 0. scratch holds the padded plane.
 */
export function dwPlane(
  x: usize, H: i32, W: i32, w: usize, KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32,
  OH: i32, OW: i32, out: usize, bias: f32, flip: i32, scratch: usize,
): void {
  const Hp = (OH - 1) * sh + (KH - 1) * dh + 1;
  const Wp = (OW - 1) * sw + (KW - 1) * dw + 1 + 8;
  padPlane(x, H, W, ph, pw, Hp, Wp, scratch);
  const nk = KH * KW;
  if (KH == 3 && KW == 3 && sw <= 2) {
    dw3x3(scratch, Wp, w, sh, sw, dh, dw, OH, OW, out, bias, flip);
    return;
  }
  for (let oh = 0; oh < OH; oh++) {
    const o = out + (<usize>(oh * OW) << 2);
    let ow = 0;
    if (sw == 1) {
      for (; ow + 4 <= OW; ow += 4) {
        let acc = f32x4.splat(bias);
        for (let kh = 0; kh < KH; kh++) {
          const row = scratch + (<usize>((oh * sh + kh * dh) * Wp + ow) << 2);
          for (let kw = 0; kw < KW; kw++) {
            const t = kh * KW + kw;
            const wv = load<f32>(w + (<usize>(flip ? nk - 1 - t : t) << 2));
            acc = madd(f32x4.splat(wv), v128.load(row + (<usize>(kw * dw) << 2)), acc);
          }
        }
        v128.store(o + (<usize>ow << 2), acc);
      }
    }
    for (; ow < OW; ow++) {
      let acc: f32 = bias;
      for (let kh = 0; kh < KH; kh++) {
        const row = scratch + (<usize>((oh * sh + kh * dh) * Wp + ow * sw) << 2);
        for (let kw = 0; kw < KW; kw++) {
          const t = kh * KW + kw;
          acc += load<f32>(w + (<usize>(flip ? nk - 1 - t : t) << 2)) * load<f32>(row + (<usize>(kw * dw) << 2));
        }
      }
      store<f32>(o + (<usize>ow << 2), acc);
    }
  }
}

/** Input vector for 4 outputs starting at column ow of a padded row: stride 1 plain, stride 2 the even lanes. */
@inline function tap(row: usize, ow: i32, sw: i32, off: i32): v128 {
  if (sw == 1) return v128.load(row + (<usize>(ow + off) << 2));
  const q = row + (<usize>(2 * ow + off) << 2);
  return v128.shuffle<f32>(v128.load(q), v128.load(q, 16), 0, 2, 4, 6);
}

/** 3x3 depthwise plane over a padded input (row stride Wp), weights held in registers; stride 1 or 2 in width. */
function dw3x3(s: usize, Wp: i32, w: usize, sh: i32, sw: i32, dh: i32, dw: i32, OH: i32, OW: i32, out: usize, bias: f32, flip: i32): void {
  const f = flip ? 8 : 0;
  const w0 = f32x4.splat(load<f32>(w + (<usize>abs(f - 0) << 2))), w1 = f32x4.splat(load<f32>(w + (<usize>abs(f - 1) << 2)));
  const w2 = f32x4.splat(load<f32>(w + (<usize>abs(f - 2) << 2))), w3 = f32x4.splat(load<f32>(w + (<usize>abs(f - 3) << 2)));
  const w4 = f32x4.splat(load<f32>(w + (<usize>abs(f - 4) << 2))), w5 = f32x4.splat(load<f32>(w + (<usize>abs(f - 5) << 2)));
  const w6 = f32x4.splat(load<f32>(w + (<usize>abs(f - 6) << 2))), w7 = f32x4.splat(load<f32>(w + (<usize>abs(f - 7) << 2)));
  const w8 = f32x4.splat(load<f32>(w + (<usize>abs(f - 8) << 2)));
  const b = f32x4.splat(bias);
  const d1 = dw, d2 = 2 * dw;
  for (let oh = 0; oh < OH; oh++) {
    const r0 = s + (<usize>(oh * sh * Wp) << 2);
    const r1 = r0 + (<usize>(dh * Wp) << 2), r2 = r1 + (<usize>(dh * Wp) << 2);
    const o = out + (<usize>(oh * OW) << 2);
    let ow = 0;
    for (; ow + 4 <= OW; ow += 4) {
      let acc = madd(w0, tap(r0, ow, sw, 0), b);
      acc = madd(w1, tap(r0, ow, sw, d1), acc);
      acc = madd(w2, tap(r0, ow, sw, d2), acc);
      acc = madd(w3, tap(r1, ow, sw, 0), acc);
      acc = madd(w4, tap(r1, ow, sw, d1), acc);
      acc = madd(w5, tap(r1, ow, sw, d2), acc);
      acc = madd(w6, tap(r2, ow, sw, 0), acc);
      acc = madd(w7, tap(r2, ow, sw, d1), acc);
      acc = madd(w8, tap(r2, ow, sw, d2), acc);
      v128.store(o + (<usize>ow << 2), acc);
    }
    for (; ow < OW; ow++) {
      let a: f32 = bias;
      for (let t = 0; t < 9; t++) {
        const row = t < 3 ? r0 : t < 6 ? r1 : r2;
        a += load<f32>(w + (<usize>abs(f - t) << 2)) * load<f32>(row + (<usize>(ow * sw + (t % 3) * dw) << 2));
      }
      store<f32>(o + (<usize>ow << 2), a);
    }
  }
}

/** Depthwise backward-input for any stride: scatter gy * w into a padded scratch, then copy its interior to gx. */
export function dwPlaneBackInput(
  gy: usize, OH: i32, OW: i32, w: usize, KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32,
  H: i32, W: i32, gx: usize, scratch: usize,
): void {
  const Hp = max((OH - 1) * sh + (KH - 1) * dh + 1, H + ph);
  const Wp = max((OW - 1) * sw + (KW - 1) * dw + 1, W + pw);
  memory.fill(scratch, 0, <usize>(Hp * Wp) << 2);
  for (let oh = 0; oh < OH; oh++) {
    for (let ow = 0; ow < OW; ow++) {
      const g = load<f32>(gy + (<usize>(oh * OW + ow) << 2));
      for (let kh = 0; kh < KH; kh++) {
        const row = scratch + (<usize>((oh * sh + kh * dh) * Wp + ow * sw) << 2);
        for (let kw = 0; kw < KW; kw++) {
          const q = row + (<usize>(kw * dw) << 2);
          store<f32>(q, load<f32>(q) + g * load<f32>(w + (<usize>(kh * KW + kw) << 2)));
        }
      }
    }
  }
  for (let ih = 0; ih < H; ih++) {
    memory.copy(gx + (<usize>(ih * W) << 2), scratch + (<usize>((ih + ph) * Wp + pw) << 2), <usize>W << 2);
  }
}

/** Depthwise weight gradient of one plane, added into gw[KH * KW]: gw[kh, kw] += sum gy[oh, ow] * x[tap]. */
export function dwPlaneBackWeight(
  gy: usize, OH: i32, OW: i32, x: usize, H: i32, W: i32, KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32,
  dh: i32, dw: i32, gw: usize, scratch: usize,
): void {
  const Hp = (OH - 1) * sh + (KH - 1) * dh + 1;
  const Wp = (OW - 1) * sw + (KW - 1) * dw + 1 + 8;
  padPlane(x, H, W, ph, pw, Hp, Wp, scratch);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      let acc = f32x4.splat(0);
      let s: f32 = 0;
      for (let oh = 0; oh < OH; oh++) {
        const g = gy + (<usize>(oh * OW) << 2);
        const row = scratch + (<usize>((oh * sh + kh * dh) * Wp + kw * dw) << 2);
        let ow = 0;
        if (sw == 1) {
          for (; ow + 4 <= OW; ow += 4) {
            acc = madd(v128.load(g + (<usize>ow << 2)), v128.load(row + (<usize>ow << 2)), acc);
          }
        } else if (sw == 2) {
          for (; ow + 4 <= OW; ow += 4) {
            const q = row + (<usize>ow << 3);
            const xv = v128.shuffle<f32>(v128.load(q), v128.load(q, 16), 0, 2, 4, 6);
            acc = madd(v128.load(g + (<usize>ow << 2)), xv, acc);
          }
        }
        for (; ow < OW; ow++) s += load<f32>(g + (<usize>ow << 2)) * load<f32>(row + (<usize>(ow * sw) << 2));
      }
      s += f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
      const q = gw + (<usize>(kh * KW + kw) << 2);
      store<f32>(q, load<f32>(q) + s);
    }
  }
}
