// Batch normalisation on gpu.js. Statistics are one thread per channel, summing each (n, c) plane first and then
// the planes (a two-level sum: float32 error grows with H*W + N, not N*H*W). The pipelined pairs stay on the device
// between kernels: mean -> variance (the variance kernel reads the mean texture) and, in backward, the per-channel
// sums [sum gy, sum gy*xhat] -> gx. Elementwise passes use rows n*C + c (a thread finds its channel from a small
// row index): a 2-D output [H*W, N*C], or 3-D [W, H, N*C] when H*W exceeds a texture side.
// - stats:    mean = sum x / m;  var = sum (x - mean)^2 / m            (m = N*H*W, biased)
// - forward:  y = (x - mean[c]) * invstd[c] * w[c] + b[c]
// - backward: gx = w invstd (gy - sum(gy)/m - xhat sum(gy xhat)/m) in training, w invstd gy in eval

import type { BatchNormGrads, View } from '../types.js';
import type { Storage } from '../../dtype.js';
import { MAX_EXACT, MAX_QUOTIENT, flatF32, readFlat, type KernelCache } from './kernels.js';

export function batchNormFits(cache: KernelCache, shape: readonly number[]): boolean {
  const [N, C, H, W] = shape;
  return N * C * H * W < MAX_EXACT && N * C < MAX_QUOTIENT && N * C * H * W > 0 && cache.fitsTexture([W, H, N * C]) && cache.fitsTexture([C, 2]);
}

const dims = (shape: readonly number[]) => {
  const [N, C, H, W] = shape;
  return { N, C, H, W, HW: H * W, M: N * H * W };
};

/** s (declared here unless declare is false) = sum over planes of (sum over the plane of EXPR) for channel c; EXPR sees b + i. */
const channelSum = (expr: string, declare = true) => `${declare ? `
  let s = 0.0;` : ''}
  for (let n = 0; n < this.constants.N; n++) {
    const b = (n * this.constants.C + c) * this.constants.HW;
    let t = 0.0;
    for (let i = 0; i < this.constants.HW; i++) {
      t += ${expr};
    }
    s += t;
  }`;

const meanSource = `function(x) {
  const c = this.thread.x;${channelSum('x[b + i]')}
  return s / this.constants.M;
}`;

const varianceSource = `function(x, mean) {
  const c = this.thread.x;
  const mu = mean[c];${channelSum('(x[b + i] - mu) * (x[b + i] - mu)')}
  return s / this.constants.M;
}`;

// The channel of row = n*C + c, without dividing a large index, and the flat element index k. Output [H*W, N*C]
// ('flat'), or [W, H, N*C] when H*W exceeds a texture side.
const rowChannel = (flat: boolean) => `
  const row = this.thread.${flat ? 'y' : 'z'};
  const c = row - Math.floor((row + 0.5) / this.constants.C) * this.constants.C;
  const k = ${flat ? 'row * this.constants.H * this.constants.W + this.thread.x' : '(row * this.constants.H + this.thread.y) * this.constants.W + this.thread.x'};`;

const planeGrid = (cache: KernelCache, N: number, C: number, H: number, W: number) =>
  cache.fitsTexture([H * W, N * C]) ? [H * W, N * C] : [W, H, N * C];

const forwardSource = (flat: boolean) => `function(x, mean, scale, shift) {${rowChannel(flat)}
  return (x[k] - mean[c]) * scale[c] + shift[c];
}`;

// row 0: sum gy; row 1: sum gy * xhat. Row 0 must not read x at all: 0 * (x - mu) is NaN for a NaN x, and sum gy
// (the bias gradient) is finite in the reference and PyTorch whatever x holds.
const sumsSource = `function(gy, x, mean, invstd) {
  const c = this.thread.x;
  const mu = mean[c];
  const is = invstd[c];
  let s = 0.0;
  if (this.thread.y === 0) {${channelSum('gy[b + i]', false)}
  } else {${channelSum('gy[b + i] * (x[b + i] - mu) * is', false)}
  }
  return s;
}`;

const gradSource = (flat: boolean) => `function(gy, x, mean, invstd, weight, sums) {${rowChannel(flat)}
  const a = weight[c] * invstd[c];
  let g = gy[k];
  if (this.constants.TRAIN === 1) {
    const xhat = (x[k] - mean[c]) * invstd[c];
    g = g - sums[0][c] / this.constants.M - xhat * sums[1][c] / this.constants.M;
  }
  return a * g;
}`;

const keyOf = (shape: readonly number[]) => shape.join('x');

export function gpuBatchNormStats(cache: KernelCache, xv: View): { mean: Float32Array; variance: Float32Array } {
  const { N, C, HW, M } = dims(xv.shape);
  const key = keyOf(xv.shape);
  const constants = { N, C, HW, M };
  const km = cache.get(`bnmean:${key}`, () => meanSource, { output: [C], constants, pipeline: true });
  const kv = cache.get(`bnvar:${key}`, () => varianceSource, { output: [C], constants });
  const x = flatF32(xv);
  const meanOut = cache.run(`bnmean:${key}`, km, x);
  const variance = readFlat(cache.run(`bnvar:${key}`, kv, x, meanOut), C);
  return { mean: readFlat(meanOut, C).slice(), variance: variance.slice() };
}

export function gpuBatchNormForward(
  cache: KernelCache, xv: View, mean: Storage, invstd: Storage, weight: Storage | null, bias: Storage | null,
): Float32Array {
  const { N, C, H, W, HW } = dims(xv.shape);
  const output = planeGrid(cache, N, C, H, W);
  const key = `bnfwd:${keyOf(xv.shape)}:${output.length}d`;
  const k = cache.get(key, () => forwardSource(output.length === 2), { output, constants: { C, H, W } });
  const scale = new Float32Array(C);
  const shift = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    scale[c] = invstd[c] * (weight ? weight[c] : 1);
    shift[c] = bias ? bias[c] : 0;
  }
  return readFlat(cache.run(key, k, flatF32(xv), Float32Array.from(mean), scale, shift), N * C * HW);
}

export function gpuBatchNormBackward(
  cache: KernelCache, gyv: View, xv: View, mean: Storage, invstd: Storage, weight: Storage | null, training: boolean,
): BatchNormGrads {
  const { N, C, H, W, HW, M } = dims(xv.shape);
  const key = keyOf(xv.shape);
  const ks = cache.get(`bnsums:${key}`, () => sumsSource, { output: [C, 2], constants: { N, C, HW }, pipeline: true });
  const output = planeGrid(cache, N, C, H, W);
  const kg = cache.get(`bngrad:${key}:${+training}:${output.length}d`, () => gradSource(output.length === 2), {
    output,
    constants: { C, H, W, M, TRAIN: +training },
  });
  const gy = flatF32(gyv);
  const x = flatF32(xv);
  const mu = Float32Array.from(mean);
  const is = Float32Array.from(invstd);
  const w = weight ? Float32Array.from(weight) : new Float32Array(C).fill(1);
  const sums = cache.run(`bnsums:${key}`, ks, gy, x, mu, is);
  const gx = readFlat(cache.run(`bngrad:${key}:${+training}:${output.length}d`, kg, gy, x, mu, is, w, sums), N * C * HW);
  const s = readFlat(sums, 2 * C);
  return { gx, gbias: s.slice(0, C), gweight: s.slice(C, 2 * C) };
}
