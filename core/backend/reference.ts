// The reference backend: simple, obviously correct loops, in the input's own precision (float64 when given float64).
// It is the oracle every fast backend is tested against, so clarity wins over speed here. Elementwise work and
// reductions go through ndarray-ops on strided ndarray views; convolution, pooling and batch norm are direct loops.

import ndarray, { type NdArray } from 'ndarray';
import ops from 'ndarray-ops';
import { allocate, dtypeOf, type Storage } from '../dtype.js';
import { contiguousStrides, numel } from '../shape.js';
import { hostBackend } from './compose.js';
import type { BinaryOp, Conv2dParams, HostKernels, HostView, Pool2dParams, ReduceOp, UnaryOp } from './types.js';

type Nd = NdArray<Storage>;

/** An ndarray over a view; 0-d views become shape [1] so ndarray-ops can loop over them. */
function nd(v: HostView): Nd {
  return v.shape.length === 0
    ? ndarray(v.data, [1], [1], v.offset)
    : ndarray(v.data, v.shape as number[], v.strides as number[], v.offset);
}

function fresh(like: Storage, shape: readonly number[]): { out: Storage; o: Nd } {
  const out = allocate(dtypeOf(like), numel(shape));
  const s = shape.length === 0 ? [1] : [...shape];
  return { out, o: ndarray(out, s, contiguousStrides(s)) };
}

const contig = (v: HostView): Storage => {
  const { out, o } = fresh(v.data, v.shape);
  ops.assign(o, nd(v));
  return out;
};

const unaryFns: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  tanh: Math.tanh,
  relu: (x) => (x > 0 || x !== x ? x : 0), // NaN stays NaN, as PyTorch
};

const binaryFns: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: (a, b) => (a !== a || b !== b ? NaN : a > b ? a : b),
  minimum: (a, b) => (a !== a || b !== b ? NaN : a < b ? a : b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  eq: (a, b) => +(a === b),
};

/** Visit every index of a shape in row-major order, with the flat offset of each of several strided views. */
function forEachIndex(shape: readonly number[], views: readonly HostView[], fn: (offsets: number[], flat: number) => void) {
  const n = numel(shape);
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  const offs = views.map((v) => v.offset);
  for (let flat = 0; flat < n; flat++) {
    fn(offs, flat);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < views.length; k++) offs[k] += views[k].strides[d];
      if (idx[d] < shape[d]) break;
      for (let k = 0; k < views.length; k++) offs[k] -= views[k].strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

function map(views: readonly HostView[], f: (...xs: number[]) => number): Storage {
  const shape = views[0].shape;
  const out = allocate(dtypeOf(views[0].data), numel(shape));
  forEachIndex(shape, views, (offs, flat) => {
    out[flat] = f(...offs.map((o, k) => views[k].data[o]));
  });
  return out;
}

/** Output extent of a sliding window (PyTorch's formula, ceil mode included). */
export function windowOut(size: number, k: number, s: number, pad: number, dil: number, ceil: boolean): number {
  const span = size + 2 * pad - dil * (k - 1) - 1;
  let o = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // In ceil mode the last window must start inside the input or the left padding.
  if (ceil && (o - 1) * s >= size + pad) o--;
  return o;
}

export const referenceKernels: HostKernels = {
  contiguous: contig,

  assign(dst, src) {
    ops.assign(nd(dst), nd(src));
  },

  unary(op, x) {
    return map([x], unaryFns[op]);
  },

  binary(op, a, b) {
    if (op === 'add' || op === 'sub' || op === 'mul' || op === 'div') {
      const { out, o } = fresh(a.data, a.shape);
      ops[op](o, nd(a), nd(b));
      return out;
    }
    return map([a, b], binaryFns[op]);
  },

  where(cond, a, b) {
    return map([cond, a, b], (c, x, y) => (c !== 0 ? x : y));
  },

  clamp(x, lo, hi) {
    return map([x], (v) => (v < lo ? lo : v > hi ? hi : v));
  },

  reduce(op: ReduceOp, x, axes) {
    // Accumulate into the output seen through a broadcast view (stride 0 on reduced axes) of x's shape.
    const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const { out } = fresh(x.data, outShape);
    const strides = contiguousStrides(outShape).map((s, i) => (axes.includes(i) ? 0 : s));
    const acc: HostView = { data: out, shape: x.shape, strides, offset: 0 };
    if (numel(x.shape) === 0) {
      out.fill(op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity);
      return out;
    }
    if (op === 'sum') {
      ops.addeq(nd(acc), nd(x));
    } else {
      out.fill(op === 'max' ? -Infinity : Infinity);
      const pick = op === 'max' ? binaryFns.maximum : binaryFns.minimum;
      forEachIndex(x.shape, [acc, x], (offs) => {
        out[offs[0]] = pick(out[offs[0]], x.data[offs[1]]);
      });
    }
    return out;
  },

  matmul(a, b) {
    const [B, M, K] = a.shape;
    const N = b.shape[2];
    const out = allocate(dtypeOf(a.data), B * M * N);
    const [sab, sam, sak] = a.strides;
    const [sbb, sbk, sbn] = b.strides;
    for (let bi = 0; bi < B; bi++) {
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          let pa = a.offset + bi * sab + i * sam;
          let pb = b.offset + bi * sbb + j * sbn;
          for (let k = 0; k < K; k++, pa += sak, pb += sbk) s += a.data[pa] * b.data[pb];
          out[(bi * M + i) * N + j] = s;
        }
      }
    }
    return out;
  },

  conv2d(xv, wv, bias, p) {
    const x = contig(xv);
    const w = contig(wv);
    const b = bias ? contig(bias) : null;
    const [N, C, H, W] = xv.shape;
    const [O, Cg, KH, KW] = wv.shape;
    const { OH, OW } = convOut(H, W, KH, KW, p);
    const G = p.groups;
    const Og = O / G;
    const out = allocate(dtypeOf(x), N * O * OH * OW);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) {
        const g = Math.floor(o / Og);
        for (let oh = 0; oh < OH; oh++)
          for (let ow = 0; ow < OW; ow++) {
            let s = b ? b[o] : 0;
            for (let c = 0; c < Cg; c++) {
              const ci = g * Cg + c;
              for (let kh = 0; kh < KH; kh++) {
                const ih = oh * p.stride[0] - p.padding[0] + kh * p.dilation[0];
                if (ih < 0 || ih >= H) continue;
                for (let kw = 0; kw < KW; kw++) {
                  const iw = ow * p.stride[1] - p.padding[1] + kw * p.dilation[1];
                  if (iw < 0 || iw >= W) continue;
                  s += x[((n * C + ci) * H + ih) * W + iw] * w[((o * Cg + c) * KH + kh) * KW + kw];
                }
              }
            }
            out[((n * O + o) * OH + oh) * OW + ow] = s;
          }
      }
    return out;
  },

  conv2dBackwardInput(gyv, wv, xShape, p) {
    const gy = contig(gyv);
    const w = contig(wv);
    const [N, C, H, W] = xShape;
    const [O, Cg, KH, KW] = wv.shape;
    const [, , OH, OW] = gyv.shape;
    const Og = O / p.groups;
    const gx = allocate(dtypeOf(gy), N * C * H * W);
    convTaps(N, O, Og, Cg, OH, OW, KH, KW, H, W, p, (n, o, ci, c, oh, ow, kh, kw, ih, iw) => {
      gx[((n * C + ci) * H + ih) * W + iw] += gy[((n * O + o) * OH + oh) * OW + ow] * w[((o * Cg + c) * KH + kh) * KW + kw];
    });
    return gx;
  },

  conv2dBackwardWeight(gyv, xv, wShape, p) {
    const gy = contig(gyv);
    const x = contig(xv);
    const [N, C, H, W] = xv.shape;
    const [O, Cg, KH, KW] = wShape;
    const [, , OH, OW] = gyv.shape;
    const Og = O / p.groups;
    const gw = allocate(dtypeOf(gy), O * Cg * KH * KW);
    convTaps(N, O, Og, Cg, OH, OW, KH, KW, H, W, p, (n, o, ci, c, oh, ow, kh, kw, ih, iw) => {
      gw[((o * Cg + c) * KH + kh) * KW + kw] += gy[((n * O + o) * OH + oh) * OW + ow] * x[((n * C + ci) * H + ih) * W + iw];
    });
    return gw;
  },

  maxPool2d(xv, p) {
    const x = contig(xv);
    const [N, C, H, W] = xv.shape;
    const OH = windowOut(H, p.kernelSize[0], p.stride[0], p.padding[0], p.dilation[0], p.ceilMode);
    const OW = windowOut(W, p.kernelSize[1], p.stride[1], p.padding[1], p.dilation[1], p.ceilMode);
    const out = allocate(dtypeOf(x), N * C * OH * OW);
    const argmax = new Int32Array(N * C * OH * OW);
    for (let nc = 0; nc < N * C; nc++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let best = -Infinity;
          let bi = -1;
          for (let kh = 0; kh < p.kernelSize[0]; kh++) {
            const ih = oh * p.stride[0] - p.padding[0] + kh * p.dilation[0];
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < p.kernelSize[1]; kw++) {
              const iw = ow * p.stride[1] - p.padding[1] + kw * p.dilation[1];
              if (iw < 0 || iw >= W) continue;
              const v = x[nc * H * W + ih * W + iw];
              if (v > best || bi < 0 || v !== v) {
                best = v;
                bi = ih * W + iw;
                if (v !== v) break;
              }
            }
          }
          const o = (nc * OH + oh) * OW + ow;
          out[o] = best;
          argmax[o] = bi;
        }
    return { out, argmax };
  },

  maxPool2dBackward(gyv, argmax, xShape) {
    const gy = contig(gyv);
    const [N, C, H, W] = xShape;
    const [, , OH, OW] = gyv.shape;
    const gx = allocate(dtypeOf(gy), N * C * H * W);
    for (let nc = 0; nc < N * C; nc++)
      for (let i = 0; i < OH * OW; i++) {
        const a = argmax[nc * OH * OW + i];
        if (a >= 0) gx[nc * H * W + a] += gy[nc * OH * OW + i]; // a = -1: the window held only padding
      }
    return gx;
  },

  avgPool2d(xv, p) {
    const x = contig(xv);
    const [N, C, H, W] = xv.shape;
    const { OH, OW } = poolOut(H, W, p);
    const out = allocate(dtypeOf(x), N * C * OH * OW);
    avgWindows(N * C, H, W, OH, OW, p, (nc, o, i, inv) => {
      out[nc * OH * OW + o] += x[nc * H * W + i] * inv;
    });
    return out;
  },

  avgPool2dBackward(gyv, xShape, p) {
    const gy = contig(gyv);
    const [N, C, H, W] = xShape;
    const [, , OH, OW] = gyv.shape;
    const gx = allocate(dtypeOf(gy), N * C * H * W);
    avgWindows(N * C, H, W, OH, OW, p, (nc, o, i, inv) => {
      gx[nc * H * W + i] += gy[nc * OH * OW + o] * inv;
    });
    return gx;
  },

  adaptiveAvgPool2d(xv, [OH, OW]) {
    const x = contig(xv);
    const [N, C, H, W] = xv.shape;
    const out = allocate(dtypeOf(x), N * C * OH * OW);
    adaptiveCells(N * C, H, W, OH, OW, (nc, o, i, inv) => {
      out[nc * OH * OW + o] += x[nc * H * W + i] * inv;
    });
    return out;
  },

  adaptiveAvgPool2dBackward(gyv, xShape) {
    const gy = contig(gyv);
    const [N, C, H, W] = xShape;
    const [, , OH, OW] = gyv.shape;
    const gx = allocate(dtypeOf(gy), N * C * H * W);
    adaptiveCells(N * C, H, W, OH, OW, (nc, o, i, inv) => {
      gx[nc * H * W + i] += gy[nc * OH * OW + o] * inv;
    });
    return gx;
  },

  batchNormStats(xv) {
    const x = contig(xv);
    const [N, C, H, W] = xv.shape;
    const HW = H * W;
    const mean = allocate(dtypeOf(x), C);
    const variance = allocate(dtypeOf(x), C);
    const m = N * HW;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) s += x[(n * C + c) * HW + i];
      const mu = s / m;
      let v = 0;
      for (let n = 0; n < N; n++)
        for (let i = 0; i < HW; i++) {
          const d = x[(n * C + c) * HW + i] - mu;
          v += d * d;
        }
      mean[c] = mu;
      variance[c] = v / m;
    }
    return { mean, variance };
  },

  batchNormForward(xv, mean, invstd, weight, bias) {
    const x = contig(xv);
    const [N, C, H, W] = xv.shape;
    const HW = H * W;
    const y = allocate(dtypeOf(x), x.length);
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++) {
        const a = invstd[c] * (weight ? weight[c] : 1);
        const b = bias ? bias[c] : 0;
        for (let i = 0; i < HW; i++) {
          const k = (n * C + c) * HW + i;
          y[k] = (x[k] - mean[c]) * a + b;
        }
      }
    return y;
  },

  batchNormBackward(gyv, xv, mean, invstd, weight, training) {
    const gy = contig(gyv);
    const x = contig(xv);
    const [N, C, H, W] = xv.shape;
    const HW = H * W;
    const m = N * HW;
    const gx = allocate(dtypeOf(x), x.length);
    const gweight = allocate(dtypeOf(x), C);
    const gbias = allocate(dtypeOf(x), C);
    for (let c = 0; c < C; c++) {
      let sg = 0;
      let sgx = 0;
      for (let n = 0; n < N; n++)
        for (let i = 0; i < HW; i++) {
          const k = (n * C + c) * HW + i;
          sg += gy[k];
          sgx += gy[k] * (x[k] - mean[c]) * invstd[c];
        }
      gbias[c] = sg;
      gweight[c] = sgx;
      const w = weight ? weight[c] : 1;
      for (let n = 0; n < N; n++)
        for (let i = 0; i < HW; i++) {
          const k = (n * C + c) * HW + i;
          const xhat = (x[k] - mean[c]) * invstd[c];
          gx[k] = training ? w * invstd[c] * (gy[k] - sg / m - (xhat * sgx) / m) : w * invstd[c] * gy[k];
        }
    }
    return { gx, gweight, gbias };
  },
};

export const referenceBackend = hostBackend('reference', referenceKernels, { unavailableReason: () => null });

export function convOut(H: number, W: number, KH: number, KW: number, p: Conv2dParams) {
  return {
    OH: windowOut(H, KH, p.stride[0], p.padding[0], p.dilation[0], false),
    OW: windowOut(W, KW, p.stride[1], p.padding[1], p.dilation[1], false),
  };
}

export function poolOut(H: number, W: number, p: Pool2dParams) {
  return {
    OH: windowOut(H, p.kernelSize[0], p.stride[0], p.padding[0], p.dilation[0], p.ceilMode),
    OW: windowOut(W, p.kernelSize[1], p.stride[1], p.padding[1], p.dilation[1], p.ceilMode),
  };
}

/** Every (output, input) tap of a convolution that lands inside the input. */
function convTaps(
  N: number, O: number, Og: number, Cg: number, OH: number, OW: number, KH: number, KW: number,
  H: number, W: number, p: Conv2dParams,
  fn: (n: number, o: number, ci: number, c: number, oh: number, ow: number, kh: number, kw: number, ih: number, iw: number) => void,
) {
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let c = 0; c < Cg; c++)
        for (let oh = 0; oh < OH; oh++)
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * p.stride[0] - p.padding[0] + kh * p.dilation[0];
            if (ih < 0 || ih >= H) continue;
            for (let ow = 0; ow < OW; ow++)
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * p.stride[1] - p.padding[1] + kw * p.dilation[1];
                if (iw < 0 || iw >= W) continue;
                fn(n, o, g * Cg + c, c, oh, ow, kh, kw, ih, iw);
              }
          }
    }
}

/** Every (output cell, input pixel, 1/divisor) of average pooling, PyTorch's divisor rules. */
function avgWindows(
  planes: number, H: number, W: number, OH: number, OW: number, p: Pool2dParams,
  fn: (plane: number, o: number, i: number, inv: number) => void,
) {
  const [KH, KW] = p.kernelSize;
  for (let nc = 0; nc < planes; nc++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        const h0 = oh * p.stride[0] - p.padding[0];
        const w0 = ow * p.stride[1] - p.padding[1];
        // Window clipped to the padded input (the divisor when padding counts), then to the input itself.
        const h1 = Math.min(h0 + KH, H + p.padding[0]);
        const w1 = Math.min(w0 + KW, W + p.padding[1]);
        const padded = (h1 - h0) * (w1 - w0);
        const hs = Math.max(h0, 0), ws = Math.max(w0, 0);
        const he = Math.min(h1, H), we = Math.min(w1, W);
        const inside = (he - hs) * (we - ws);
        const inv = 1 / (p.countIncludePad ? padded : inside);
        for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) fn(nc, oh * OW + ow, ih * W + iw, inv);
      }
}

function adaptiveCells(
  planes: number, H: number, W: number, OH: number, OW: number,
  fn: (plane: number, o: number, i: number, inv: number) => void,
) {
  for (let nc = 0; nc < planes; nc++)
    for (let oh = 0; oh < OH; oh++) {
      const hs = Math.floor((oh * H) / OH), he = Math.ceil(((oh + 1) * H) / OH);
      for (let ow = 0; ow < OW; ow++) {
        const ws = Math.floor((ow * W) / OW), we = Math.ceil(((ow + 1) * W) / OW);
        const inv = 1 / ((he - hs) * (we - ws));
        for (let ih = hs; ih < he; ih++) for (let iw = ws; iw < we; iw++) fn(nc, oh * OW + ow, ih * W + iw, inv);
      }
    }
}
