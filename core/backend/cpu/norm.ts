// Batch-norm kernels of the cpu backend: per-channel statistics (two passes, float64 accumulation), the affine
// forward, and the backward (one pass for the two channel sums, one for gx). Plain JavaScript on contiguous NCHW
// planes, float32 and float64; large float32 tensors run the same formulas as SIMD kernels (kernels/norm.as) on a copy in
// the shared arena, one task per chunk of channels, so every channel's sums are taken by one thread in a fixed order
// and the results do not depend on the thread count. Their elementwise results equal the JavaScript ones; their sums
// differ from the JavaScript ones only in float64 summation order.

import type { Storage } from '../../dtype.js';
import type { BatchNormGradsOf, HostView } from '../types.js';
import { wasmWorthIt } from './elementwise-wasm.js';
import { alloc, contiguous } from './elementwise.js';
import { defineJob, type Job } from './jobs.js';
import { gather, isContiguous, numelOf } from './strided.js';
import { runJob, threadCount } from './threads.js';
import { Arena, heap, heap64, takeOut } from './wasm.js';

/**
 * Batch norms (and max pooling) from this many elements split their channels across the pool (measured: no gain at
 * 200K elements).
 */
export const PARALLEL_ELEMENTS = 1 << 18;

const flat = (v: HostView): Storage => (isContiguous(v) && v.offset === 0 ? v.data : contiguous(v));

type ParSetter = (par: Float64Array, c: number) => void;

/**
 * Batch-norm jobs, per chunk of Chunk channels of x [N, C, HW planes]: X, Gy, Out (y or gx), Par (float64
 * per-channel parameters), Sums (float64 per-channel sums).
 */
const bnParams = ['X', 'Gy', 'Out', 'Par', 'Sums', 'N', 'C', 'HW', 'Chunk'] as const;
type BnJob = Job<(typeof bnParams)[number]>;

/** Mean and variance per chunk of channels. */
const statsJob = defineJob('bn.stats', bnParams, (k, p, t) => {
  for (let c = t * p.Chunk, end = Math.min(p.C, (t + 1) * p.Chunk); c < end; c++) k.bnStats(p.X, p.N, p.C, p.HW, c, p.Sums);
});
/** Affine forward per chunk of channels. */
const forwardJob = defineJob('bn.forward', bnParams, (k, p, t) => {
  for (let c = t * p.Chunk, end = Math.min(p.C, (t + 1) * p.Chunk); c < end; c++) k.bnForward(p.X, p.N, p.C, p.HW, c, p.Par, p.Out);
});
/** Backward (channel sums, then gx) per chunk of channels. */
const backwardJob = defineJob('bn.backward', bnParams, (k, p, t) => {
  for (let c = t * p.Chunk, end = Math.min(p.C, (t + 1) * p.Chunk); c < end; c++) {
    k.bnBackward(p.Gy, p.X, p.N, p.C, p.HW, c, p.Par, p.Sums, p.Out);
  }
});

/**
 * The wasm path: copy x [N, C, H, W] (and gy) into a fresh arena, with an output of x's size when `out`, C float64
 * parameter quadruples (filled by setPar) and C float64 sum pairs, and run `job` over chunks of channels. Returns the
 * output and the sums (a view into the arena: read it before the next kernel call).
 */
function bnJob(job: BnJob, label: string, x: HostView, gy: HostView | null, out: boolean, setPar: ParSetter | null) {
  const [N, C, H, W] = x.shape;
  const n = N * C * H * W;
  const arena = new Arena(`${label} x[${x.shape.join(', ')}]`);
  const xp = arena.floats(n), gp = gy ? arena.floats(n) : 0, op = out ? arena.floats(n) : 0;
  const par = arena.alloc(C * 32), sums = arena.alloc(C * 16);
  arena.commit();
  const h = heap(), h64 = heap64();
  gather(x, h, xp / 4);
  if (gy) gather(gy, h, gp / 4);
  if (setPar) for (let c = 0; c < C; c++) setPar(h64.subarray(par / 8 + 4 * c, par / 8 + 4 * c + 4), c);
  const parallel = n >= PARALLEL_ELEMENTS && threadCount() > 1;
  const per = parallel ? Math.max(1, Math.floor(C / (4 * threadCount()))) : C;
  runJob(job, { X: xp, Gy: gp, Out: op, Par: par, Sums: sums, N, C, HW: H * W, Chunk: per }, Math.ceil(C / per), parallel);
  return { out: out ? takeOut(op, n) : null, sums: h64.subarray(sums / 8, sums / 8 + 2 * C) };
}

export function batchNormStats(xv: HostView): { mean: Storage; variance: Storage } {
  if (wasmWorthIt(xv.data, numelOf(xv.shape))) {
    const C = xv.shape[1];
    const { sums } = bnJob(statsJob, 'batchNormStats', xv, null, false, null);
    const mean = new Float32Array(C), variance = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      mean[c] = sums[2 * c];
      variance[c] = sums[2 * c + 1];
    }
    return { mean, variance };
  }
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

export function batchNormForward(xv: HostView, mean: Storage, invstd: Storage, weight: Storage | null, bias: Storage | null): Storage {
  if (wasmWorthIt(xv.data, numelOf(xv.shape))) {
    // [mean, a, b] as below
    return bnJob(forwardJob, 'batchNormForward', xv, null, true, (par, c) => {
      par[0] = mean[c];
      par[1] = invstd[c] * (weight ? weight[c] : 1);
      par[2] = bias ? bias[c] : 0;
    }).out!;
  }
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
  gyv: HostView, xv: HostView, mean: Storage, invstd: Storage, weight: Storage | null, training: boolean,
): BatchNormGradsOf<Storage> {
  if (wasmWorthIt(xv.data, numelOf(xv.shape)) && gyv.data instanceof Float32Array) {
    const C = xv.shape[1];
    // [mean, invstd, k, training] as below; the kernel returns [sg, sgx] per channel
    const r = bnJob(backwardJob, 'batchNormBackward', xv, gyv, true, (par, c) => {
      par[0] = mean[c];
      par[1] = invstd[c];
      par[2] = (weight ? weight[c] : 1) * invstd[c];
      par[3] = training ? 1 : 0;
    });
    const gweight = new Float32Array(C), gbias = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      gbias[c] = r.sums[2 * c];
      gweight[c] = r.sums[2 * c + 1];
    }
    return { gx: r.out!, gweight, gbias };
  }
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
