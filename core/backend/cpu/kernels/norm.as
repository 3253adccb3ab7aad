// Batch-norm kernels (statistics, affine forward, backward), float32 data with float64 arithmetic.
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
