// Elementwise kernels, copies and reductions of the cpu backend, in plain JavaScript on the main thread. Large
// float32 relu/neg/abs, clamp, arithmetic and comparisons on contiguous or scalar operands take the wasm paths of
// elementwise-wasm.ts first. Operand views are collapsed first (see strided.ts), so same-shape contiguous operands
// and scalar broadcasts become one tight loop; each op has its own row loop, so no function is called per element.
// Works for float32 and float64 alike.

import type { Storage } from '../../dtype.js';
import type { BinaryOp, ReduceOp, UnaryOp, HostView } from '../types.js';
import { binaryWasm, clampWasm, unaryWasm, whereWasm } from './elementwise-wasm.js';
import { type Arr, collapse, forEachRow, gather, isContiguous, numelOf } from './strided.js';

export const alloc = (like: Storage, n: number): Storage => (like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n));

export function contiguous(x: HostView): Storage {
  const out = alloc(x.data, numelOf(x.shape));
  gather(x, out, 0);
  return out;
}

export function assign(dst: HostView, src: HostView): void {
  const { shape, strides } = collapse(dst.shape, [dst, src]);
  const n = shape[shape.length - 1];
  const ds = strides[0][shape.length - 1], ss = strides[1][shape.length - 1];
  const d = dst.data, s = src.data;
  forEachRow(shape, strides, [dst.offset, src.offset], (offs) => {
    let i = offs[0], j = offs[1];
    for (let k = 0; k < n; k++, i += ds, j += ss) d[i] = s[j];
  });
}

type UnaryRow = (o: Arr, oi: number, x: Arr, xi: number, xs: number, n: number) => void;

const unaryRows: Record<UnaryOp, UnaryRow> = {
  neg: (o, oi, x, xi, xs, n) => { for (let k = 0; k < n; k++, xi += xs) o[oi + k] = -x[xi]; },
  exp: (o, oi, x, xi, xs, n) => { for (let k = 0; k < n; k++, xi += xs) o[oi + k] = Math.exp(x[xi]); },
  log: (o, oi, x, xi, xs, n) => { for (let k = 0; k < n; k++, xi += xs) o[oi + k] = Math.log(x[xi]); },
  sqrt: (o, oi, x, xi, xs, n) => { for (let k = 0; k < n; k++, xi += xs) o[oi + k] = Math.sqrt(x[xi]); },
  abs: (o, oi, x, xi, xs, n) => { for (let k = 0; k < n; k++, xi += xs) o[oi + k] = Math.abs(x[xi]); },
  sign: (o, oi, x, xi, xs, n) => {
    for (let k = 0; k < n; k++, xi += xs) { const v = x[xi]; o[oi + k] = v > 0 ? 1 : v < 0 ? -1 : 0; }
  },
  sigmoid: (o, oi, x, xi, xs, n) => {
    for (let k = 0; k < n; k++, xi += xs) {
      const v = x[xi];
      if (v >= 0) o[oi + k] = 1 / (1 + Math.exp(-v));
      else { const e = Math.exp(v); o[oi + k] = e / (1 + e); }
    }
  },
  tanh: (o, oi, x, xi, xs, n) => { for (let k = 0; k < n; k++, xi += xs) o[oi + k] = Math.tanh(x[xi]); },
  // NaN stays NaN, as PyTorch (and the reference)
  // Branch-free on the sign (v * [v > 0] + 0, the + 0 turning -0 into 0): a data-dependent branch mispredicts on every other activation and costs
  // 3x the loop. -Inf (Inf * 0 = NaN) and NaN take the rare, predictable branch; NaN stays NaN, as PyTorch.
  relu: (o, oi, x, xi, xs, n) => {
    for (let k = 0; k < n; k++, xi += xs) { const v = x[xi]; o[oi + k] = v > -Infinity ? v * +(v > 0) + 0 : v === v ? 0 : v; }
  },
};

function mapUnary(x: HostView, row: UnaryRow): Storage {
  const n = numelOf(x.shape);
  const out = alloc(x.data, n);
  if (n === 0) return out;
  if (isContiguous(x)) {
    row(out, 0, x.data, x.offset, 1, n);
    return out;
  }
  const { shape, strides } = collapse(x.shape, [x]);
  const inner = shape[shape.length - 1], xs = strides[0][shape.length - 1];
  forEachRow(shape, strides, [x.offset], (offs, flat) => row(out, flat, x.data, offs[0], xs, inner));
  return out;
}

export const unary = (op: UnaryOp, x: HostView): Storage => unaryWasm(op, x) ?? mapUnary(x, unaryRows[op]);

export function clamp(x: HostView, lo: number, hi: number): Storage {
  const fast = clampWasm(x, lo, hi);
  if (fast) return fast;
  return mapUnary(x, (o, oi, d, xi, xs, n) => {
    for (let k = 0; k < n; k++, xi += xs) { const v = d[xi]; o[oi + k] = v < lo ? lo : v > hi ? hi : v; }
  });
}

// Comparisons write +(a < b), not a ternary: the result feeds masks (relu's gradient) whose sign pattern is random.
type BinaryRow = (o: Arr, oi: number, a: Arr, ai: number, as: number, b: Arr, bi: number, bs: number, n: number) => void;

const binaryRows: Record<BinaryOp, BinaryRow> = {
  add: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] + b[bi]; },
  sub: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] - b[bi]; },
  mul: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] * b[bi]; },
  div: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] / b[bi]; },
  pow: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = Math.pow(a[ai], b[bi]); },
  maximum: (o, oi, a, ai, as, b, bi, bs, n) => {
    for (let k = 0; k < n; k++, ai += as, bi += bs) {
      const x = a[ai], y = b[bi];
      o[oi + k] = x !== x || y !== y ? NaN : x > y ? x : y;
    }
  },
  minimum: (o, oi, a, ai, as, b, bi, bs, n) => {
    for (let k = 0; k < n; k++, ai += as, bi += bs) {
      const x = a[ai], y = b[bi];
      o[oi + k] = x !== x || y !== y ? NaN : x < y ? x : y;
    }
  },
  gt: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = +(a[ai] > b[bi]); },
  ge: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = +(a[ai] >= b[bi]); },
  lt: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = +(a[ai] < b[bi]); },
  le: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = +(a[ai] <= b[bi]); },
  eq: (o, oi, a, ai, as, b, bi, bs, n) => { for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = +(a[ai] === b[bi]); },
};

export function binary(op: BinaryOp, a: HostView, b: HostView): Storage {
  const fast = binaryWasm(op, a, b);
  if (fast) return fast;
  const n = numelOf(a.shape);
  const out = alloc(a.data, n);
  if (n === 0) return out;
  const row = binaryRows[op];
  const { shape, strides } = collapse(a.shape, [a, b]);
  const inner = shape[shape.length - 1];
  const as = strides[0][shape.length - 1], bs = strides[1][shape.length - 1];
  forEachRow(shape, strides, [a.offset, b.offset], (offs, flat) => row(out, flat, a.data, offs[0], as, b.data, offs[1], bs, inner));
  return out;
}

export function where(cond: HostView, a: HostView, b: HostView): Storage {
  const fast = whereWasm(cond, a, b);
  if (fast) return fast;
  const n = numelOf(a.shape);
  const out = alloc(a.data, n);
  if (n === 0) return out;
  const { shape, strides } = collapse(a.shape, [cond, a, b]);
  const inner = shape[shape.length - 1], L = shape.length - 1;
  const cs = strides[0][L], as = strides[1][L], bs = strides[2][L];
  const c = cond.data, ad = a.data, bd = b.data;
  forEachRow(shape, strides, [cond.offset, a.offset, b.offset], (offs, flat) => {
    let ci = offs[0], ai = offs[1], bi = offs[2];
    for (let k = 0; k < inner; k++, ci += cs, ai += as, bi += bs) out[flat + k] = c[ci] !== 0 ? ad[ai] : bd[bi];
  });
  return out;
}

/** Reduce over sorted axes; sums accumulate in float64. */
export function reduce(op: ReduceOp, x: HostView, axes: readonly number[]): Storage {
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const m = numelOf(outShape);
  const init = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
  const acc = new Float64Array(m).fill(init);
  const out = alloc(x.data, m);
  if (numelOf(x.shape) === 0) {
    out.fill(init);
    return out;
  }
  // acc seen through a broadcast view of x's shape: stride 0 on the reduced axes
  let s = 1;
  const accStrides = new Array<number>(x.shape.length);
  for (let i = x.shape.length - 1; i >= 0; i--) {
    accStrides[i] = axes.includes(i) ? 0 : s;
    s *= outShape[i];
  }
  const accView: HostView = { data: out, shape: x.shape, strides: accStrides, offset: 0 };
  const { shape, strides } = collapse(x.shape, [x, accView]);
  const inner = shape[shape.length - 1];
  const xs = strides[0][shape.length - 1], os = strides[1][shape.length - 1];
  const d = x.data;
  forEachRow(shape, strides, [x.offset, 0], (offs) => {
    let xi = offs[0], oi = offs[1];
    if (op === 'sum') {
      if (os === 0) {
        let t = 0;
        for (let k = 0; k < inner; k++, xi += xs) t += d[xi];
        acc[oi] += t;
      } else for (let k = 0; k < inner; k++, xi += xs, oi += os) acc[oi] += d[xi];
    } else if (op === 'max') {
      for (let k = 0; k < inner; k++, xi += xs, oi += os) {
        const v = d[xi], cur = acc[oi];
        acc[oi] = v !== v || cur !== cur ? NaN : v > cur ? v : cur;
      }
    } else {
      for (let k = 0; k < inner; k++, xi += xs, oi += os) {
        const v = d[xi], cur = acc[oi];
        acc[oi] = v !== v || cur !== cur ? NaN : v < cur ? v : cur;
      }
    }
  });
  out.set(acc);
  return out;
}
