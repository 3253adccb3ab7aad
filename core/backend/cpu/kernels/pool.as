// Max pooling kernels on float32 planes (forward with argmax, and the backward scatter), for the planes [p0, p1) of
// x [planes][H][W]. Scalar code with the JavaScript loops' (and the reference's) exact rules: the first largest tap of
// a window wins, NaN wins a window (the first NaN of the last kernel row that holds one), a window wholly in the
// padding gives -Inf and argmax -1. Here they run 1.6x faster than the JavaScript loop on one thread (ResNet-18's
// stem pool, 64 x 112 x 112: 10 ms against 16.5 ms) and split the planes across the pool.

/** out[p][oh][ow] = the max of the window, arg[p][oh][ow] = its flat index ih * W + iw in the plane (i32). */
export function maxPoolPlanes(
  x: usize, H: i32, W: i32, OH: i32, OW: i32, KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32,
  p0: i32, p1: i32, out: usize, arg: usize,
): void {
  for (let p = p0; p < p1; p++) {
    const plane = x + (<usize>(p * H * W) << 2);
    let o = <usize>(p * OH * OW) << 2;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * sh - ph;
      for (let ow = 0; ow < OW; ow++, o += 4) {
        const w0 = ow * sw - pw;
        let best: f32 = -Infinity;
        let bi: i32 = -1;
        for (let kh = 0; kh < KH; kh++) {
          const ih = h0 + kh * dh;
          if (<u32>ih >= <u32>H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = w0 + kw * dw;
            if (<u32>iw >= <u32>W) continue;
            const i = ih * W + iw;
            const v = load<f32>(plane + (<usize>i << 2));
            if (v > best || bi < 0 || v != v) {
              best = v;
              bi = i;
              if (v != v) break;
            }
          }
        }
        store<f32>(out + o, best);
        store<i32>(arg + o, bi);
      }
    }
  }
}

/** gx[p] = 0, then gx[p][arg[i]] += gy[p][i] in order of i (arg -1: a window wholly in the padding). */
export function maxPoolBackPlanes(gy: usize, arg: usize, OHW: i32, HW: i32, p0: i32, p1: i32, gx: usize): void {
  for (let p = p0; p < p1; p++) {
    const g = gx + (<usize>(p * HW) << 2);
    memory.fill(g, 0, <usize>HW << 2);
    const o = <usize>(p * OHW) << 2;
    for (let i = 0; i < OHW; i++) {
      const a = load<i32>(arg + o + (<usize>i << 2));
      if (a >= 0) {
        const at = g + (<usize>a << 2);
        store<f32>(at, load<f32>(at) + load<f32>(gy + o + (<usize>i << 2)));
      }
    }
  }
}

/**
 * Max pooling without argmax (inference) of planes [p0, p1): per output row, the max over its window's input rows
 * into tmp (SIMD along the row), then per output pixel the max over its window's columns of tmp. Values as
 * maxPoolPlanes gives them: NaN wins a window, a window wholly in the padding gives -Inf; only which of two equal
 * values is kept (+0 or -0) may differ, as the taps are visited column-wise. x must be readable 4 floats past the
 * plane's end; tmp holds W rounded up to 4 floats.
 */
export function maxPoolPlanesNoArg(
  x: usize, H: i32, W: i32, OH: i32, OW: i32, KH: i32, KW: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32,
  p0: i32, p1: i32, out: usize, tmp: usize,
): void {
  const W4 = (W + 3) & ~3;
  const ninf = f32x4.splat(-Infinity);
  for (let p = p0; p < p1; p++) {
    const plane = x + (<usize>(p * H * W) << 2);
    let o = out + (<usize>(p * OH * OW) << 2);
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * sh - ph;
      for (let w = 0; w < W4; w += 4) v128.store(tmp + (<usize>w << 2), ninf);
      for (let kh = 0; kh < KH; kh++) {
        const ih = h0 + kh * dh;
        if (<u32>ih >= <u32>H) continue;
        const row = plane + (<usize>(ih * W) << 2);
        for (let w = 0; w < W4; w += 4) {
          const at = tmp + (<usize>w << 2);
          const t = v128.load(at), v = v128.load(row + (<usize>w << 2));
          v128.store(at, v128.bitselect(v, f32x4.pmax(t, v), f32x4.ne(v, v)));
        }
      }
      for (let ow = 0; ow < OW; ow++, o += 4) {
        const w0 = ow * sw - pw;
        let best: f32 = -Infinity;
        for (let kw = 0; kw < KW; kw++) {
          const iw = w0 + kw * dw;
          if (<u32>iw >= <u32>W) continue;
          const v = load<f32>(tmp + (<usize>iw << 2));
          if (v != v || best < v) best = v;
        }
        store<f32>(o, best);
      }
    }
  }
}
