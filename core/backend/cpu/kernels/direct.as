// Direct convolution kernels (forward and weight gradient) and the ordered sum of their partial results.
// Convolution without im2col for small channel counts, where packing B costs as much as the arithmetic it feeds.
// Each image is zero-padded and split into stride phases (padPhases), so that every tap of every output pixel is a
// stride-1 read: output pixel (oh, ow) and tap k read xs[(oh * Wq + ow) + off[k]], off[k] a per-tap offset (channel,
// phase, row and column of the tap). The forward kernel runs over the flattened pixel index q = oh * Wq + ow, 8 at a
// time; lanes with ow >= OW (the Wq - OW extra columns) or q >= OH * Wq are computed and dropped. The weight gradient
// runs over the kept pixels only, one at a time, vectorised over 16 output channels of a pixel-major copy of gy.

import { madd } from './common';

/**
 * Zero-pad and phase-split C planes x [H, W] into dst: per channel, na * nb phase planes of Hq x Wq floats (the
 * phases a < na <= sh, b < nb <= sw that some tap reads), phase (a, b) holding
 * [i][j] = x[i * sh + a - ph][j * sw + b - pw] (zero outside x); ph, pw >= 0. Rows are written in address order with
 * vector stores that may run up to 3 floats past a row (the next row overwrites them), so dst needs 3 floats of slack
 * and x 3 readable floats past its end.
 */
export function padPhases(
  x: usize, C: i32, H: i32, W: i32, sh: i32, sw: i32, na: i32, nb: i32, ph: i32, pw: i32, Hq: i32, Wq: i32, dst: usize,
): void {
  const zero = f32x4.splat(0);
  const row4 = <usize>Wq << 2;
  let d = dst;
  for (let c = 0; c < C; c++) {
    const plane = x + (<usize>(c * H * W) << 2);
    for (let a = 0; a < na; a++) {
      for (let b = 0; b < nb; b++) {
        for (let i = 0; i < Hq; i++, d += row4) {
          const ih = i * sh + a - ph;
          if (<u32>ih >= <u32>H) {
            for (let j = 0; j < Wq; j += 4) v128.store(d + (<usize>j << 2), zero);
            continue;
          }
          const row = plane + (<usize>(ih * W) << 2);
          if (sw == 1) {
            // columns [0, pw) zero, [pw, pw + n) the row, [pw + n, Wq) zero
            const n = min(W, Wq - pw);
            for (let j = 0; j < pw && j < Wq; j++) store<f32>(d + (<usize>j << 2), 0);
            const dd = d + (<usize>pw << 2);
            for (let j = 0; j < n; j += 4) v128.store(dd + (<usize>j << 2), v128.load(row + (<usize>j << 2)));
            for (let j = max(pw + n, 0); j < Wq; j++) store<f32>(d + (<usize>j << 2), 0);
          } else {
            for (let j = 0; j < Wq; j++) {
              const iw = j * sw + b - pw;
              store<f32>(d + (<usize>j << 2), <u32>iw < <u32>W ? load<f32>(row + (<usize>iw << 2)) : 0);
            }
          }
        }
      }
    }
  }
}

/**
 * Forward direct convolution of one image padded by padPhases (xs), for the 4-row weight panels [p0, p1) of a
 * (packA layout [panel][K][4]): out[o][oh][ow] = sum_k a[o][k] * xs[oh * Wq + ow + off[k]], off: K byte offsets.
 * out: the image's output [O][OH][OW]; rows o >= O are dropped. tmp: 128 bytes of scratch for tiles that cross a
 * row end.
 */
export function convDirect(xs: usize, off: usize, K: i32, a: usize, p0: i32, p1: i32, O: i32, OH: i32, OW: i32, Wq: i32, out: usize, tmp: usize): void {
  const nq = OH * Wq;
  const plane = <usize>(OH * OW) << 2;
  const aps = <usize>K << 4;
  const offEnd = off + (<usize>K << 2);
  let oh = 0, ow = 0;
  for (let q0 = 0; q0 < nq; q0 += 8) {
    const xq = xs + (<usize>q0 << 2);
    const inRow = ow + 8 <= OW;
    for (let i = p0; i < p1; i++) {
      let ap = a + <usize>i * aps;
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      for (let op = off; op < offEnd; op += 4) {
        const xp = xq + <usize>load<i32>(op);
        const x0 = v128.load(xp), x1 = v128.load(xp, 16);
        let s = v128.load32_splat(ap);
        c00 = madd(s, x0, c00); c01 = madd(s, x1, c01);
        s = v128.load32_splat(ap, 4);
        c10 = madd(s, x0, c10); c11 = madd(s, x1, c11);
        s = v128.load32_splat(ap, 8);
        c20 = madd(s, x0, c20); c21 = madd(s, x1, c21);
        s = v128.load32_splat(ap, 12);
        c30 = madd(s, x0, c30); c31 = madd(s, x1, c31);
        ap += 16;
      }
      const o0 = i * 4;
      if (inRow && o0 + 4 <= O) {
        let cp = out + <usize>o0 * plane + (<usize>(oh * OW + ow) << 2);
        v128.store(cp, c00); v128.store(cp, c01, 16); cp += plane;
        v128.store(cp, c10); v128.store(cp, c11, 16); cp += plane;
        v128.store(cp, c20); v128.store(cp, c21, 16); cp += plane;
        v128.store(cp, c30); v128.store(cp, c31, 16);
        continue;
      }
      v128.store(tmp, c00); v128.store(tmp, c01, 16); v128.store(tmp, c10, 32); v128.store(tmp, c11, 48);
      v128.store(tmp, c20, 64); v128.store(tmp, c21, 80); v128.store(tmp, c30, 96); v128.store(tmp, c31, 112);
      for (let l = 0; l < 8; l++) {
        let h = oh, w = ow + l;
        while (w >= Wq) { w -= Wq; h++; }
        if (w >= OW || h >= OH) continue;
        const at = out + (<usize>(h * OW + w) << 2);
        for (let r = 0; r < 4 && o0 + r < O; r++) store<f32>(at + <usize>(o0 + r) * plane, load<f32>(tmp + (<usize>(r * 8 + l) << 2)));
      }
    }
    ow += 8;
    while (ow >= Wq) { ow -= Wq; oh++; }
  }
}

/**
 * Pixel-major copy of count planes of P floats (src, P floats apart): dst[p][j] = src[j][p], rows width floats long
 * (a multiple of 4), zero for j >= count.
 */
export function transposePlanes(src: usize, count: i32, P: i32, dst: usize, width: i32): void {
  const ps = <usize>P << 2, ds = <usize>width << 2;
  const zero = f32x4.splat(0);
  for (let j = 0; j < width; j += 4) {
    const r0 = src + <usize>j * ps;
    const n = min(4, count - j);
    let d = dst + (<usize>j << 2);
    if (n <= 0) {
      for (let q = 0; q < P; q++, d += ds) v128.store(d, zero);
      continue;
    }
    // rows past count read row j (n = 1 to 3) and are zeroed by the mask
    const r1 = n > 1 ? r0 + ps : r0, r2 = n > 2 ? r0 + 2 * ps : r0, r3 = n > 3 ? r0 + 3 * ps : r0;
    const keep = i32x4.gt_s(i32x4.splat(n), i32x4(0, 1, 2, 3));
    let q = 0;
    for (; q + 4 <= P; q += 4) {
      const o = <usize>q << 2;
      const a = v128.load(r0 + o), b = v128.load(r1 + o), c = v128.load(r2 + o), e = v128.load(r3 + o);
      const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5), t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
      const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5), t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
      v128.store(d, v128.and(v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), keep)); d += ds;
      v128.store(d, v128.and(v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), keep)); d += ds;
      v128.store(d, v128.and(v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), keep)); d += ds;
      v128.store(d, v128.and(v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), keep)); d += ds;
    }
    for (; q < P; q++, d += ds) {
      const o = <usize>q << 2;
      v128.store(d, v128.and(f32x4(load<f32>(r0 + o), load<f32>(r1 + o), load<f32>(r2 + o), load<f32>(r3 + o)), keep));
    }
  }
}

/**
 * Weight gradient by direct correlation, vectorised over output channels: gt holds N images' gy pixel-major
 * (transposePlanes, nb * 16 channels from o0 per pixel, gImg bytes per image), and for each block of 16 channels and
 * pair of taps [k0, k1) the 8 vector sums run over images, rows and columns in order. gw [O][K]; channels >= O are
 * dropped, an odd last tap is computed twice and written once.
 */
export function convDirectBackWeight(
  gt: usize, gImg: i32, nb: i32, o0: i32, O: i32, OH: i32, OW: i32, xs: usize, xImg: i32, Wq: i32, off: usize,
  k0: i32, k1: i32, N: i32, gw: usize, K: i32,
): void {
  const ps = <usize>nb << 6, skip = <usize>(Wq - OW) << 2;
  for (let bI = 0; bI < nb; bI++) {
    for (let ka = k0; ka < k1; ka += 2) {
      const kb = ka + 1 < k1 ? ka + 1 : ka;
      const offa = <usize>load<i32>(off + (<usize>ka << 2)), offb = <usize>load<i32>(off + (<usize>kb << 2));
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let n = 0; n < N; n++) {
        let g = gt + <usize>n * <usize>gImg + (<usize>bI << 6);
        let xa = xs + <usize>n * <usize>xImg + offa, xc = xs + <usize>n * <usize>xImg + offb;
        for (let oh = 0; oh < OH; oh++, xa += skip, xc += skip) {
          const end = xa + (<usize>OW << 2);
          for (; xa < end; xa += 4, xc += 4, g += ps) {
            const y0 = v128.load(g), y1 = v128.load(g, 16), y2 = v128.load(g, 32), y3 = v128.load(g, 48);
            const u = v128.load32_splat(xa);
            a0 = madd(y0, u, a0); a1 = madd(y1, u, a1);
            a2 = madd(y2, u, a2); a3 = madd(y3, u, a3);
            const v = v128.load32_splat(xc);
            b0 = madd(y0, v, b0); b1 = madd(y1, v, b1);
            b2 = madd(y2, v, b2); b3 = madd(y3, v, b3);
          }
        }
      }
      // b first: for an odd last tap (kb = ka) the a sums land last, in the same cells
      const ob = o0 + bI * 16;
      storeColumn(gw, K, kb, ob, O, b0, b1, b2, b3);
      storeColumn(gw, K, ka, ob, O, a0, a1, a2, a3);
    }
  }
}

/** gw[ob + j][k] = lane j of (v0 | v1 | v2 | v3), for ob + j < O. */
@inline function storeColumn(gw: usize, K: i32, k: i32, ob: i32, O: i32, v0: v128, v1: v128, v2: v128, v3: v128): void {
  const st = <usize>K << 2;
  const p = gw + (<usize>(ob * K + k) << 2);
  storeLanes(p, st, O - ob, v0);
  storeLanes(p + 4 * st, st, O - ob - 4, v1);
  storeLanes(p + 8 * st, st, O - ob - 8, v2);
  storeLanes(p + 12 * st, st, O - ob - 12, v3);
}

/** The first n (<= 4) lanes of v at p, p + st, p + 2 st, p + 3 st. */
@inline function storeLanes(p: usize, st: usize, n: i32, v: v128): void {
  if (n > 0) store<f32>(p, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(p + st, f32x4.extract_lane(v, 1));
  if (n > 2) store<f32>(p + 2 * st, f32x4.extract_lane(v, 2));
  if (n > 3) store<f32>(p + 3 * st, f32x4.extract_lane(v, 3));
}

/** dst[i] = the sum of src[c * stride + i] over c < count, in order, in float64, rounded once; i in [i0, i1). */
export function sumStrided(src: usize, count: i32, stride: i32, i0: i32, i1: i32, dst: usize): void {
  const st = <usize>stride << 2;
  let i = i0;
  for (; i + 2 <= i1; i += 2) {
    let p = src + (<usize>i << 2);
    let s = f64x2.splat(0);
    for (let c = 0; c < count; c++, p += st) s = f64x2.add(s, f64x2.promote_low_f32x4(v128.load64_zero(p)));
    v128.store64_lane(dst + (<usize>i << 2), f32x4.demote_f64x2_zero(s), 0);
  }
  for (; i < i1; i++) {
    let p = src + (<usize>i << 2);
    let s: f64 = 0;
    for (let c = 0; c < count; c++, p += st) s += <f64>load<f32>(p);
    store<f32>(dst + (<usize>i << 2), <f32>s);
  }
}
