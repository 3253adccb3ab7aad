// Batch-norm kernels of the cpu backend: per-channel statistics (two passes, float64 accumulation), the affine
// forward, and the backward (one pass for the two channel sums, one for gx). Plain JavaScript on contiguous NCHW
// planes; float32 and float64.

import type { Storage } from '../../dtype.js';
import type { BatchNormGrads, View } from '../types.js';
import { alloc, contiguous } from './elementwise.js';
import { isContiguous } from './strided.js';

const flat = (v: View): Storage => (isContiguous(v) && v.offset === 0 ? v.data : contiguous(v));

export function batchNormStats(xv: View): { mean: Storage; variance: Storage } {
  const x = flat(xv);
  const [N, C, H, W] = xv.shape;
  const HW = H * W, m = N * HW;
  const mean = alloc(x, C), variance = alloc(x, C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) {
      const b = (n * C + c) * HW;
      for (let i = b; i < b + HW; i++) s += x[i];
    }
    const mu = s / m;
    let v = 0;
    for (let n = 0; n < N; n++) {
      const b = (n * C + c) * HW;
      for (let i = b; i < b + HW; i++) {
        const d = x[i] - mu;
        v += d * d;
      }
    }
    mean[c] = mu;
    variance[c] = v / m;
  }
  return { mean, variance };
}

export function batchNormForward(xv: View, mean: Storage, invstd: Storage, weight: Storage | null, bias: Storage | null): Storage {
  const x = flat(xv);
  const [N, C, H, W] = xv.shape;
  const HW = H * W;
  const y = alloc(x, N * C * HW);
  for (let c = 0; c < C; c++) {
    // y = x * a + (b - mean * a)
    const a = invstd[c] * (weight ? weight[c] : 1);
    const mu = mean[c];
    const b = bias ? bias[c] : 0;
    for (let n = 0; n < N; n++) {
      const s = (n * C + c) * HW;
      for (let i = s; i < s + HW; i++) y[i] = (x[i] - mu) * a + b;
    }
  }
  return y;
}

export function batchNormBackward(
  gyv: View, xv: View, mean: Storage, invstd: Storage, weight: Storage | null, training: boolean,
): BatchNormGrads {
  const gy = flat(gyv);
  const x = flat(xv);
  const [N, C, H, W] = xv.shape;
  const HW = H * W, m = N * HW;
  const gx = alloc(x, N * C * HW), gweight = alloc(x, C), gbias = alloc(x, C);
  for (let c = 0; c < C; c++) {
    const mu = mean[c], is = invstd[c];
    let sg = 0, sgx = 0;
    for (let n = 0; n < N; n++) {
      const s = (n * C + c) * HW;
      for (let i = s; i < s + HW; i++) {
        const g = gy[i];
        sg += g;
        sgx += g * (x[i] - mu);
      }
    }
    sgx *= is;
    gbias[c] = sg;
    gweight[c] = sgx;
    const k = (weight ? weight[c] : 1) * is;
    // training: gx = k * (gy - sg/m - xhat * sgx/m); eval: gx = k * gy (x does not enter: a NaN in x stays out)
    const a = sg / m, b = (sgx / m) * is;
    for (let n = 0; n < N; n++) {
      const s = (n * C + c) * HW;
      if (training) for (let i = s; i < s + HW; i++) gx[i] = k * (gy[i] - a - (x[i] - mu) * b);
      else for (let i = s; i < s + HW; i++) gx[i] = k * gy[i];
    }
  }
  return { gx, gweight, gbias };
}
