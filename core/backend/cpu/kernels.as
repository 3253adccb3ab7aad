// AssemblyScript source of the cpu backend's WebAssembly SIMD (128-bit) kernels, compiled by build-wasm.ts into
// dist/core/backend/cpu/kernels.wasm (the extension is .as so tsc leaves it alone; build-wasm hands it to asc as
// kernels.ts). Every pointer is a byte address in one shared WebAssembly.Memory that the main thread and all pool
// workers import, so these functions keep no state: no globals, no allocation, no static data.
//
// GEMM layout (BLIS style): A is packed in panels of MR = 4 rows, [panel][k][4]; B in panels of NR = 8 columns,
// [panel][k][8]; C is row-major with ldc a multiple of 8 and rows padded to a multiple of 4, so the micro-kernel
// never handles edges (padding rows/columns are packed as zeros and stripped by the caller).

// ---------------------------------------------------------------------------------------------------- GEMM

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
        c00 = f32x4.add(c00, f32x4.mul(s, x0)); c01 = f32x4.add(c01, f32x4.mul(s, x1));
        s = v128.load32_splat(a, 4);
        c10 = f32x4.add(c10, f32x4.mul(s, x0)); c11 = f32x4.add(c11, f32x4.mul(s, x1));
        s = v128.load32_splat(a, 8);
        c20 = f32x4.add(c20, f32x4.mul(s, x0)); c21 = f32x4.add(c21, f32x4.mul(s, x1));
        s = v128.load32_splat(a, 12);
        c30 = f32x4.add(c30, f32x4.mul(s, x0)); c31 = f32x4.add(c31, f32x4.mul(s, x1));
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

/** gx[c] for c in [c0, c1) of one image = the sum of dcol rows (c, kh, kw) placed at their taps (ldd: row stride). */
export function col2im(
  dcol: usize, ldd: i32, c0: i32, c1: i32, H: i32, W: i32, KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32,
  dh: i32, dw: i32, OH: i32, OW: i32, gx: usize,
): void {
  for (let c = c0; c < c1; c++) {
    const plane = gx + (<usize>(c * H * W) << 2);
    memory.fill(plane, 0, <usize>(H * W) << 2);
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const row = dcol + (<usize>(((c * KH + kh) * KW + kw) * ldd) << 2);
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh - ph + kh * dh;
          if (<u32>ih >= <u32>H) continue;
          const src = row + (<usize>(oh * OW) << 2);
          const dst = plane + (<usize>(ih * W) << 2);
          for (let ow = 0; ow < OW; ow++) {
            const iw = ow * sw - pw + kw * dw;
            if (<u32>iw < <u32>W) {
              const q = dst + (<usize>iw << 2);
              store<f32>(q, load<f32>(q) + load<f32>(src + (<usize>ow << 2)));
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------- depthwise

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
            acc = f32x4.add(acc, f32x4.mul(f32x4.splat(wv), v128.load(row + (<usize>(kw * dw) << 2))));
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
      let acc = f32x4.add(b, f32x4.mul(w0, tap(r0, ow, sw, 0)));
      acc = f32x4.add(acc, f32x4.mul(w1, tap(r0, ow, sw, d1)));
      acc = f32x4.add(acc, f32x4.mul(w2, tap(r0, ow, sw, d2)));
      acc = f32x4.add(acc, f32x4.mul(w3, tap(r1, ow, sw, 0)));
      acc = f32x4.add(acc, f32x4.mul(w4, tap(r1, ow, sw, d1)));
      acc = f32x4.add(acc, f32x4.mul(w5, tap(r1, ow, sw, d2)));
      acc = f32x4.add(acc, f32x4.mul(w6, tap(r2, ow, sw, 0)));
      acc = f32x4.add(acc, f32x4.mul(w7, tap(r2, ow, sw, d1)));
      acc = f32x4.add(acc, f32x4.mul(w8, tap(r2, ow, sw, d2)));
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
            acc = f32x4.add(acc, f32x4.mul(v128.load(g + (<usize>ow << 2)), v128.load(row + (<usize>ow << 2))));
          }
        } else if (sw == 2) {
          for (; ow + 4 <= OW; ow += 4) {
            const q = row + (<usize>ow << 3);
            const xv = v128.shuffle<f32>(v128.load(q), v128.load(q, 16), 0, 2, 4, 6);
            acc = f32x4.add(acc, f32x4.mul(v128.load(g + (<usize>ow << 2)), xv));
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

// ---------------------------------------------------------------------------------------------------- direct conv
// Convolution without im2col for small channel counts, where packing B costs as much as the arithmetic it feeds.
// Each image is zero-padded and split into stride phases (padPhases), so that every tap of every output pixel is a
// stride-1 read: output pixel (oh, ow) and tap k read xs[(oh * Wq + ow) + off[k]], off[k] a per-tap offset (channel,
// phase, row and column of the tap). The forward kernel runs over the flattened pixel index q = oh * Wq + ow, 8 at a
// time; lanes with ow >= OW (the Wq - OW extra columns) or q >= OH * Wq are computed and dropped. The weight gradient
// runs over the kept pixels only, one at a time, vectorised over 16 output channels of a pixel-major copy of gy.

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
        c00 = f32x4.add(c00, f32x4.mul(s, x0)); c01 = f32x4.add(c01, f32x4.mul(s, x1));
        s = v128.load32_splat(ap, 4);
        c10 = f32x4.add(c10, f32x4.mul(s, x0)); c11 = f32x4.add(c11, f32x4.mul(s, x1));
        s = v128.load32_splat(ap, 8);
        c20 = f32x4.add(c20, f32x4.mul(s, x0)); c21 = f32x4.add(c21, f32x4.mul(s, x1));
        s = v128.load32_splat(ap, 12);
        c30 = f32x4.add(c30, f32x4.mul(s, x0)); c31 = f32x4.add(c31, f32x4.mul(s, x1));
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
            a0 = f32x4.add(a0, f32x4.mul(y0, u)); a1 = f32x4.add(a1, f32x4.mul(y1, u));
            a2 = f32x4.add(a2, f32x4.mul(y2, u)); a3 = f32x4.add(a3, f32x4.mul(y3, u));
            const v = v128.load32_splat(xc);
            b0 = f32x4.add(b0, f32x4.mul(y0, v)); b1 = f32x4.add(b1, f32x4.mul(y1, v));
            b2 = f32x4.add(b2, f32x4.mul(y2, v)); b3 = f32x4.add(b3, f32x4.mul(y3, v));
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

// ---------------------------------------------------------------------------------------------------- copies

/** Move rows of len floats, srcStride apart, to be contiguous at dst (dst <= src: compaction in place is fine). */
export function compactRows(src: usize, srcStride: i32, rows: i32, len: i32, dst: usize): void {
  for (let r = 0; r < rows; r++) {
    memory.copy(dst + (<usize>(r * len) << 2), src + (<usize>(r * srcStride) << 2), <usize>len << 2);
  }
}

// ---------------------------------------------------------------------------------------------------- elementwise
// Operands and outputs are padded to a multiple of 4 floats (the arena rounds every reservation up to 64 bytes), so
// these loops have no scalar tail. Op codes are those of elementwise-wasm.ts. Every result is exact (relu, neg, abs,
// comparisons) or one rounded float32 operation, which equals JavaScript's float64 result rounded to float32.

/** One unary op on 4 lanes; op is a constant after inlining. relu(x) = max(x, 0) + 0: keeps NaN, -0 -> +0, -Inf -> 0. */
@inline function unaryLanes(op: i32, x: v128): v128 {
  const zero = f32x4.splat(0);
  if (op == 0) return f32x4.add(f32x4.pmax(x, zero), zero); // pmax(x, 0) = x < 0 ? 0 : x
  if (op == 1) return f32x4.neg(x);
  return f32x4.abs(x);
}

@inline function unaryLoop(op: i32, x: usize, out: usize, n: i32): void {
  const end = out + (<usize>n << 2);
  for (; out < end; out += 16, x += 16) v128.store(out, unaryLanes(op, v128.load(x)));
}

/** out[i] = op(x[i]) for i < n (n a multiple of 4); op: 0 relu, 1 neg, 2 abs. */
export function unaryF32(op: i32, x: usize, out: usize, n: i32): void {
  if (op == 0) unaryLoop(0, x, out, n);
  else if (op == 1) unaryLoop(1, x, out, n);
  else unaryLoop(2, x, out, n);
}

/**
 * out[i] = clamp(x[i], lo, hi) for i < n (n a multiple of 4). pmax(v, lo) = v < lo ? lo : v, then
 * pmin(t, hi) = hi < t ? hi : t: the JavaScript ternaries exactly (NaN compares false and stays, -Inf -> lo, Inf -> hi),
 * without their branches, which mispredict on every other element of a relu6 input.
 */
export function clampF32(x: usize, out: usize, n: i32, lo: f32, hi: f32): void {
  const l = f32x4.splat(lo), h = f32x4.splat(hi);
  const end = out + (<usize>n << 2);
  for (; out < end; out += 16, x += 16) v128.store(out, f32x4.pmin(f32x4.pmax(v128.load(x), l), h));
}

/** One binary op on 4 lanes; comparisons turn the lane mask into 1.0 / 0.0 (NaN compares false). */
@inline function binaryLanes(op: i32, a: v128, b: v128): v128 {
  const one = f32x4.splat(1);
  if (op == 0) return f32x4.add(a, b);
  if (op == 1) return f32x4.sub(a, b);
  if (op == 2) return f32x4.mul(a, b);
  if (op == 3) return f32x4.div(a, b);
  if (op == 4) return v128.and(f32x4.gt(a, b), one);
  if (op == 5) return v128.and(f32x4.ge(a, b), one);
  if (op == 6) return v128.and(f32x4.lt(a, b), one);
  if (op == 7) return v128.and(f32x4.le(a, b), one);
  return v128.and(f32x4.eq(a, b), one);
}

@inline function binaryLoop(op: i32, a: usize, as: usize, b: usize, bs: usize, out: usize, n: i32): void {
  const end = out + (<usize>n << 2);
  for (; out < end; out += 16, a += as, b += bs) v128.store(out, binaryLanes(op, v128.load(a), v128.load(b)));
}

/**
 * out[i] = op(a[i], b[i]) for i < n (n a multiple of 4). as, bs: byte steps, 16 for an array, 0 for a scalar stored
 * 4 times. op: 0 add, 1 sub, 2 mul, 3 div, 4 gt, 5 ge, 6 lt, 7 le, 8 eq.
 */
export function binaryF32(op: i32, a: usize, as: usize, b: usize, bs: usize, out: usize, n: i32): void {
  switch (op) {
    case 0: binaryLoop(0, a, as, b, bs, out, n); break;
    case 1: binaryLoop(1, a, as, b, bs, out, n); break;
    case 2: binaryLoop(2, a, as, b, bs, out, n); break;
    case 3: binaryLoop(3, a, as, b, bs, out, n); break;
    case 4: binaryLoop(4, a, as, b, bs, out, n); break;
    case 5: binaryLoop(5, a, as, b, bs, out, n); break;
    case 6: binaryLoop(6, a, as, b, bs, out, n); break;
    case 7: binaryLoop(7, a, as, b, bs, out, n); break;
    default: binaryLoop(8, a, as, b, bs, out, n);
  }
}

// ---------------------------------------------------------------------------------------------------- batch norm
// One call handles channel c of a contiguous NCHW tensor: its N planes of HW floats, (n * C + c) * HW apart. Values
// are widened to float64 two at a time; sums accumulate in four float64 pairs, added up in a fixed order, and the
// per-element formulas are the JavaScript path's, evaluated in float64 and rounded once to float32.

@inline function plane(base: usize, n: i32, C: i32, c: i32, HW: i32): usize {
  return base + (<usize>((n * C + c) * HW) << 2);
}

/** Floats i, i + 1 of p as a float64 pair. */
@inline function ld2(p: usize, i: i32): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p + (<usize>i << 2)));
}

/** A float64 pair rounded to floats i, i + 1 of p. */
@inline function st2(p: usize, i: i32, v: v128): void {
  v128.store64_lane(p + (<usize>i << 2), f32x4.demote_f64x2_zero(v), 0);
}

@inline function total(a: v128, b: v128, c: v128, d: v128): f64 {
  const s = f64x2.add(f64x2.add(a, b), f64x2.add(c, d));
  return f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
}

/** Channel c's mean and biased variance (two passes), stored as float64 at out + 16 c. */
export function bnStats(x: usize, N: i32, C: i32, HW: i32, c: i32, out: usize): void {
  const m = <f64>N * <f64>HW;
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
  let s: f64 = 0;
  for (let n = 0; n < N; n++) {
    const p = plane(x, n, C, c, HW);
    let i = 0;
    for (; i + 8 <= HW; i += 8) {
      s0 = f64x2.add(s0, ld2(p, i)); s1 = f64x2.add(s1, ld2(p, i + 2));
      s2 = f64x2.add(s2, ld2(p, i + 4)); s3 = f64x2.add(s3, ld2(p, i + 6));
    }
    for (; i + 2 <= HW; i += 2) s0 = f64x2.add(s0, ld2(p, i));
    if (i < HW) s += <f64>load<f32>(p + (<usize>i << 2));
  }
  const mu = (total(s0, s1, s2, s3) + s) / m;
  const mv = f64x2.splat(mu);
  let v0 = f64x2.splat(0), v1 = f64x2.splat(0), v2 = f64x2.splat(0), v3 = f64x2.splat(0);
  let v: f64 = 0;
  for (let n = 0; n < N; n++) {
    const p = plane(x, n, C, c, HW);
    let i = 0;
    for (; i + 8 <= HW; i += 8) {
      const d0 = f64x2.sub(ld2(p, i), mv), d1 = f64x2.sub(ld2(p, i + 2), mv);
      const d2 = f64x2.sub(ld2(p, i + 4), mv), d3 = f64x2.sub(ld2(p, i + 6), mv);
      v0 = f64x2.add(v0, f64x2.mul(d0, d0)); v1 = f64x2.add(v1, f64x2.mul(d1, d1));
      v2 = f64x2.add(v2, f64x2.mul(d2, d2)); v3 = f64x2.add(v3, f64x2.mul(d3, d3));
    }
    for (; i + 2 <= HW; i += 2) {
      const d = f64x2.sub(ld2(p, i), mv);
      v0 = f64x2.add(v0, f64x2.mul(d, d));
    }
    if (i < HW) {
      const d = <f64>load<f32>(p + (<usize>i << 2)) - mu;
      v += d * d;
    }
  }
  store<f64>(out + (<usize>c << 4), mu);
  store<f64>(out + (<usize>c << 4), (total(v0, v1, v2, v3) + v) / m, 8);
}

/** Channel c of y = (x - mu) * a + b, with float64 [mu, a, b] at par + 32 c. */
export function bnForward(x: usize, N: i32, C: i32, HW: i32, c: i32, par: usize, y: usize): void {
  const q = par + (<usize>c << 5);
  const mu = load<f64>(q), a = load<f64>(q, 8), b = load<f64>(q, 16);
  const mv = f64x2.splat(mu), av = f64x2.splat(a), bv = f64x2.splat(b);
  for (let n = 0; n < N; n++) {
    const p = plane(x, n, C, c, HW), o = plane(y, n, C, c, HW);
    let i = 0;
    for (; i + 2 <= HW; i += 2) st2(o, i, f64x2.add(f64x2.mul(f64x2.sub(ld2(p, i), mv), av), bv));
    if (i < HW) store<f32>(o + (<usize>i << 2), <f32>((<f64>load<f32>(p + (<usize>i << 2)) - mu) * a + b));
  }
}

/**
 * Channel c of the batch-norm backward, with float64 [mu, invstd, k = weight * invstd, training ? 1 : 0] at par + 32 c:
 * sg = sum gy and sgx = invstd * sum gy (x - mu), stored as float64 at out + 16 c, then
 * gx = k * (gy - a - (x - mu) * b) with a = sg / m, b = sgx / m * invstd in training, gx = k * gy in eval.
 */
export function bnBackward(gy: usize, x: usize, N: i32, C: i32, HW: i32, c: i32, par: usize, out: usize, gx: usize): void {
  const q = par + (<usize>c << 5);
  const mu = load<f64>(q), is = load<f64>(q, 8), k = load<f64>(q, 16), training = load<f64>(q, 24) != 0;
  const m = <f64>N * <f64>HW;
  const mv = f64x2.splat(mu);
  let g0 = f64x2.splat(0), g1 = f64x2.splat(0), x0 = f64x2.splat(0), x1 = f64x2.splat(0);
  let sg: f64 = 0, sgx: f64 = 0;
  for (let n = 0; n < N; n++) {
    const pg = plane(gy, n, C, c, HW), px = plane(x, n, C, c, HW);
    let i = 0;
    for (; i + 4 <= HW; i += 4) {
      const ga = ld2(pg, i), gb = ld2(pg, i + 2);
      g0 = f64x2.add(g0, ga); g1 = f64x2.add(g1, gb);
      x0 = f64x2.add(x0, f64x2.mul(ga, f64x2.sub(ld2(px, i), mv)));
      x1 = f64x2.add(x1, f64x2.mul(gb, f64x2.sub(ld2(px, i + 2), mv)));
    }
    for (; i < HW; i++) {
      const g = <f64>load<f32>(pg + (<usize>i << 2));
      sg += g;
      sgx += g * (<f64>load<f32>(px + (<usize>i << 2)) - mu);
    }
  }
  const zero = f64x2.splat(0);
  sg += total(g0, g1, zero, zero);
  sgx = (sgx + total(x0, x1, zero, zero)) * is;
  store<f64>(out + (<usize>c << 4), sg);
  store<f64>(out + (<usize>c << 4), sgx, 8);
  const a = sg / m, b = (sgx / m) * is;
  const av = f64x2.splat(a), bv = f64x2.splat(b), kv = f64x2.splat(k);
  for (let n = 0; n < N; n++) {
    const pg = plane(gy, n, C, c, HW), px = plane(x, n, C, c, HW), o = plane(gx, n, C, c, HW);
    let i = 0;
    if (!training) {
      for (; i + 2 <= HW; i += 2) st2(o, i, f64x2.mul(kv, ld2(pg, i)));
      if (i < HW) store<f32>(o + (<usize>i << 2), <f32>(k * <f64>load<f32>(pg + (<usize>i << 2))));
      continue;
    }
    for (; i + 2 <= HW; i += 2) {
      st2(o, i, f64x2.mul(kv, f64x2.sub(f64x2.sub(ld2(pg, i), av), f64x2.mul(f64x2.sub(ld2(px, i), mv), bv))));
    }
    if (i < HW) {
      const g = <f64>load<f32>(pg + (<usize>i << 2)), v = <f64>load<f32>(px + (<usize>i << 2));
      store<f32>(o + (<usize>i << 2), <f32>(k * (g - a - (v - mu) * b)));
    }
  }
}
