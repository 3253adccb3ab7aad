// Elementwise kernels on float32: copies (row compaction, taking results out of the arena; flipped conv kernels),
// unary ops, clamp and binary ops.

/** Move rows of len floats, srcStride apart, to be contiguous at dst (dst <= src: compaction in place is fine). */
export function compactRows(src: usize, srcStride: i32, rows: i32, len: i32, dst: usize): void {
  for (let r = 0; r < rows; r++) {
    memory.copy(dst + (<usize>(r * len) << 2), src + (<usize>(r * srcStride) << 2), <usize>len << 2);
  }
}

/**
 * The weights of a stride-1 backward-input conv: dst [G][Cg][Og][khw] with dst[g][c][o][t] = src[g][o][c][khw-1-t]
 * (src: conv weights [G * Og][Cg][khw]): per group, in and out channels swapped and every kernel flipped. Written in
 * destination order: scattered reads are much cheaper than scattered writes.
 */
export function flipKernels(src: usize, G: i32, Og: i32, Cg: i32, khw: i32, dst: usize): void {
  // in 16 x 16 tiles of (c, o): a tile's reads and writes both stay in cache (untiled: 3.3 ms on 512 x 512 x 9)
  const kb = <usize>khw << 2;
  for (let g = 0; g < G; g++) {
    for (let c0 = 0; c0 < Cg; c0 += 16) {
      for (let o0 = 0; o0 < Og; o0 += 16) {
        const c1 = min(Cg, c0 + 16), o1 = min(Og, o0 + 16);
        for (let c = c0; c < c1; c++) {
          let d = dst + (<usize>((g * Cg + c) * Og + o0) * kb);
          for (let o = o0; o < o1; o++, d += kb) {
            const s = src + <usize>((g * Og + o) * Cg + c) * kb + kb - 4;
            for (let t = 0; t < khw; t++) store<f32>(d + (<usize>t << 2), load<f32>(s - (<usize>t << 2)));
          }
        }
      }
    }
  }
}

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

/**
 * out[i] = c[i] != 0 ? a[i] : b[i] for i < n (n a multiple of 4); cs, as, bs: byte steps as binaryF32's. NaN != 0 takes
 * a and -0 takes b, as the JavaScript loop's `c !== 0`.
 */
export function whereF32(c: usize, cs: usize, a: usize, as: usize, b: usize, bs: usize, out: usize, n: i32): void {
  const zero = f32x4.splat(0);
  const end = out + (<usize>n << 2);
  for (; out < end; out += 16, c += cs, a += as, b += bs) {
    v128.store(out, v128.bitselect(v128.load(a), v128.load(b), f32x4.ne(v128.load(c), zero)));
  }
}

/**
 * The epilogue of a convolution, in place on its output in the arena before it is copied out: rows of len floats,
 * stride floats apart; row r gets bias[r % O] added (bias 0: no bias; a zero entry adds nothing, as JavaScript's
 * `if (b !== 0)` did), then act: 0 none, 1 relu (unaryF32's rule), 2 relu6 (clampF32's rule with 0 and 6).
 */
export function biasAct(at: usize, rows: i32, stride: i32, len: i32, bias: usize, O: i32, act: i32): void {
  const zero = f32x4.splat(0), six = f32x4.splat(6);
  const n4 = len & ~3;
  for (let r = 0; r < rows; r++) {
    const row = at + (<usize>r * <usize>stride << 2);
    const b: f32 = bias ? load<f32>(bias + (<usize>(r % O) << 2)) : 0;
    const addB = b != 0;
    const bv = f32x4.splat(b);
    for (let i = 0; i < n4; i += 4) {
      const p = row + (<usize>i << 2);
      let v = v128.load(p);
      if (addB) v = f32x4.add(v, bv);
      if (act == 1) v = f32x4.add(f32x4.pmax(v, zero), zero);
      else if (act == 2) v = f32x4.pmin(f32x4.pmax(v, zero), six);
      v128.store(p, v);
    }
    for (let i = n4; i < len; i++) {
      const p = row + (<usize>i << 2);
      let v = load<f32>(p);
      if (addB) v += b;
      if (act == 1) v = (v < 0 ? <f32>0 : v) + <f32>0;
      else if (act == 2) { v = v < 0 ? <f32>0 : v; v = <f32>6 < v ? <f32>6 : v; }
      store<f32>(p, v);
    }
  }
}
