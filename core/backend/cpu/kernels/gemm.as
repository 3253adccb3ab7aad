// GEMM kernels (BLIS style): the 4x8 micro-kernel, packing of A and B (plain strided matrices, im2col and its
// transpose fused into packing), and col2im. A is packed in panels of MR = 4 rows, [panel][k][4]; B in panels of
// NR = 8 columns, [panel][k][8]; C is row-major with ldc a multiple of 8 and rows padded to a multiple of 4, so the
// micro-kernel never handles edges (padding rows/columns are packed as zeros and stripped by the caller).

import { madd } from './common';

/** C[mp*4, np*8] (+)= A[mp panels, kc] * B[np panels, kc]; aps = bytes between A panels; acc != 0 adds to C. */
export function gemm(ap: usize, aps: usize, bp: usize, kc: i32, mp: i32, np: i32, c: usize, ldc: i32, acc: i32): void {
  const ldcb = <usize>ldc << 2;
  const bps = <usize>kc << 5;
  for (let j = 0; j < np; j++) {
    const b0 = bp + <usize>j * bps;
    for (let i = 0; i < mp; i++) {
      let a = ap + <usize>i * aps;
      let b = b0;
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      for (let k = 0; k < kc; k++) {
        const x0 = v128.load(b), x1 = v128.load(b, 16);
        let s = v128.load32_splat(a);
        c00 = madd(s, x0, c00); c01 = madd(s, x1, c01);
        s = v128.load32_splat(a, 4);
        c10 = madd(s, x0, c10); c11 = madd(s, x1, c11);
        s = v128.load32_splat(a, 8);
        c20 = madd(s, x0, c20); c21 = madd(s, x1, c21);
        s = v128.load32_splat(a, 12);
        c30 = madd(s, x0, c30); c31 = madd(s, x1, c31);
        a += 16; b += 32;
      }
      let cp = c + ((<usize>i * 4 * <usize>ldc + <usize>j * 8) << 2);
      if (acc) {
        c00 = f32x4.add(c00, v128.load(cp)); c01 = f32x4.add(c01, v128.load(cp, 16));
        c10 = f32x4.add(c10, v128.load(cp + ldcb)); c11 = f32x4.add(c11, v128.load(cp + ldcb, 16));
        c20 = f32x4.add(c20, v128.load(cp + 2 * ldcb)); c21 = f32x4.add(c21, v128.load(cp + 2 * ldcb, 16));
        c30 = f32x4.add(c30, v128.load(cp + 3 * ldcb)); c31 = f32x4.add(c31, v128.load(cp + 3 * ldcb, 16));
      }
      v128.store(cp, c00); v128.store(cp, c01, 16); cp += ldcb;
      v128.store(cp, c10); v128.store(cp, c11, 16); cp += ldcb;
      v128.store(cp, c20); v128.store(cp, c21, 16); cp += ldcb;
      v128.store(cp, c30); v128.store(cp, c31, 16);
    }
  }
}

/**
 * Pack rows [0, M) x cols [0, K) of a strided matrix (element strides rs, cs) into 4-row panels of a packed A whose
 * panels hold kt columns, writing columns [koff, koff + K). Rows past M are zero.
 */
export function packA(src: usize, rs: i32, cs: i32, M: i32, K: i32, dst: usize, kt: i32, koff: i32): void {
  const mp = (M + 3) >> 2;
  for (let i = 0; i < mp; i++) {
    let d = dst + ((<usize>i * <usize>kt + <usize>koff) << 4);
    for (let r = 0; r < 4; r++) {
      const m = i * 4 + r;
      let dp = d + (<usize>r << 2);
      if (m >= M) {
        for (let k = 0; k < K; k++) { store<f32>(dp, 0); dp += 16; }
        continue;
      }
      let s = src + (<usize>(m * rs) << 2);
      const csb = <usize>cs << 2;
      for (let k = 0; k < K; k++) { store<f32>(dp, load<f32>(s)); dp += 16; s += csb; }
    }
  }
}

/** Pack B[k0 + kk][n0 + j] = src[k * rs + n * cs] for kk < kc, j < nc (multiple of 8); columns >= N are zero. */
export function packB(src: usize, rs: i32, cs: i32, k0: i32, kc: i32, n0: i32, nc: i32, N: i32, dst: usize): void {
  const np = nc >> 3;
  for (let j = 0; j < np; j++) {
    const nb = n0 + j * 8;
    const full = nb + 8 <= N;
    let d = dst + ((<usize>j * <usize>kc) << 5);
    for (let kk = 0; kk < kc; kk++) {
      const row = src + (<usize>((k0 + kk) * rs) << 2);
      if (full && cs == 1) {
        const s = row + (<usize>nb << 2);
        v128.store(d, v128.load(s)); v128.store(d, v128.load(s, 16), 16);
      } else {
        for (let l = 0; l < 8; l++) {
          const n = nb + l;
          store<f32>(d + (<usize>l << 2), n < N ? load<f32>(row + (<usize>(n * cs) << 2)) : 0);
        }
      }
      d += 32;
    }
  }
}

/**
 * im2col into packed B for the forward GEMM: B[k][p] with k = (c * KH + kh) * KW + kw, p = oh * OW + ow, the input
 * tap x[c, oh * sh - ph + kh * dh, ow * sw - pw + kw * dw] (zero outside). x is one image (and group) [C, H, W].
 * Columns p >= P are zero.
 */
export function packIm2col(
  x: usize, H: i32, W: i32, KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32,
  OW: i32, P: i32, k0: i32, kc: i32, p0: i32, nc: i32, dst: usize,
): void {
  const np = nc >> 3;
  const khw = KH * KW;
  for (let kk = 0; kk < kc; kk++) {
    const k = k0 + kk;
    const c = k / khw, r = k % khw;
    const kh = r / KW, kw = r % KW;
    const plane = x + (<usize>(c * H * W) << 2);
    let oh = p0 / OW, ow = p0 % OW;
    let ih = oh * sh - ph + kh * dh;
    const iw0 = kw * dw - pw;
    let d = dst + (<usize>kk << 5);
    let p = p0;
    for (let j = 0; j < np; j++) {
      // Fast path: 8 pixels of one output row, stride 1, all inside the input row: two vector copies.
      const iws = ow + iw0;
      if (sw == 1 && ow + 8 <= OW && <u32>ih < <u32>H && iws >= 0 && iws + 8 <= W) {
        const s = plane + (<usize>(ih * W + iws) << 2);
        v128.store(d, v128.load(s)); v128.store(d, v128.load(s, 16), 16);
        ow += 8; p += 8;
        if (ow == OW) { ow = 0; oh++; ih += sh; }
        d += <usize>kc << 5;
        continue;
      }
      for (let l = 0; l < 8; l++) {
        let v: f32 = 0;
        if (p < P) {
          const iw = ow * sw + iw0;
          if (<u32>ih < <u32>H && <u32>iw < <u32>W) v = load<f32>(plane + (<usize>(ih * W + iw) << 2));
          ow++;
          if (ow == OW) { ow = 0; oh++; ih += sh; }
        }
        store<f32>(d + (<usize>l << 2), v);
        p++;
      }
      d += <usize>kc << 5;
    }
  }
}

/**
 * Transposed im2col into packed B for the weight-gradient GEMM: B[p][k] (rows p in [p0, p0 + pc), columns the taps
 * k in [n0, n0 + nc), zero for k >= Kc).
 */
export function packIm2colT(
  x: usize, H: i32, W: i32, KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32,
  OW: i32, Kc: i32, p0: i32, pc: i32, n0: i32, nc: i32, dst: usize,
): void {
  const np = nc >> 3;
  const khw = KH * KW;
  for (let j = 0; j < np; j++) {
    for (let l = 0; l < 8; l++) {
      const k = n0 + j * 8 + l;
      let d = dst + ((<usize>j * <usize>pc) << 5) + (<usize>l << 2);
      if (k >= Kc) {
        for (let pp = 0; pp < pc; pp++) { store<f32>(d, 0); d += 32; }
        continue;
      }
      const c = k / khw, r = k % khw;
      const kh = r / KW, kw = r % KW;
      const plane = x + (<usize>(c * H * W) << 2);
      let oh = p0 / OW, ow = p0 % OW;
      let ih = oh * sh - ph + kh * dh;
      const iw0 = kw * dw - pw;
      for (let pp = 0; pp < pc; pp++) {
        const iw = ow * sw + iw0;
        let v: f32 = 0;
        if (<u32>ih < <u32>H && <u32>iw < <u32>W) v = load<f32>(plane + (<usize>(ih * W + iw) << 2));
        store<f32>(d, v);
        d += 32;
        ow++;
        if (ow == OW) { ow = 0; oh++; ih += sh; }
      }
    }
  }
}

/**
 * gx[c] for c in [c0, c1) of one image = the sum of dcol rows (c, kh, kw) placed at their taps (ldd: row stride). Each
 * cell receives its terms in (kh, kw, oh) order whatever the stride; rows of stride 1 and 2 add 4 terms at a time
 * (stride 2: into the even lanes, adding +0 to the odd ones, which leaves their bits as they are: a cell that starts
 * at +0 never holds -0).
 */
export function col2im(
  dcol: usize, ldd: i32, c0: i32, c1: i32, H: i32, W: i32, KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32,
  dh: i32, dw: i32, OH: i32, OW: i32, gx: usize,
): void {
  const zero = f32x4.splat(0);
  const step = <usize>sw << 2;
  for (let c = c0; c < c1; c++) {
    const plane = gx + (<usize>(c * H * W) << 2);
    memory.fill(plane, 0, <usize>(H * W) << 2);
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const row = dcol + (<usize>(((c * KH + kh) * KW + kw) * ldd) << 2);
        // the outputs ow whose tap iw = ow * sw + iw0 lies in [0, W)
        const iw0 = kw * dw - pw;
        const ow0 = iw0 >= 0 ? 0 : (sw - 1 - iw0) / sw;
        const ow1 = W - 1 - iw0 < 0 ? 0 : min(OW, (W - 1 - iw0) / sw + 1);
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh - ph + kh * dh;
          if (<u32>ih >= <u32>H) continue;
          let s = row + (<usize>(oh * OW + ow0) << 2);
          let q = plane + (<usize>(ih * W + ow0 * sw + iw0) << 2);
          let ow = ow0;
          if (sw == 1) {
            for (; ow + 4 <= ow1; ow += 4, s += 16, q += 16) v128.store(q, f32x4.add(v128.load(q), v128.load(s)));
          } else if (sw == 2) {
            // the 8 cells written must stay in the row: another task may own the next plane
            for (; ow + 4 <= ow1 && (ow + 3) * 2 + iw0 + 1 < W; ow += 4, s += 16, q += 32) {
              const v = v128.load(s);
              v128.store(q, f32x4.add(v128.load(q), v128.shuffle<f32>(v, zero, 0, 4, 1, 4)));
              v128.store(q, f32x4.add(v128.load(q, 16), v128.shuffle<f32>(v, zero, 2, 4, 3, 4)), 16);
            }
          }
          for (; ow < ow1; ow++, s += 4, q += step) store<f32>(q, load<f32>(q) + load<f32>(s));
        }
      }
    }
  }
}
