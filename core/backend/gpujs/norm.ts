// Batch normalisation on gpu.js, device-resident: x, gy and the per-channel vectors (mean, invstd, weight, bias, each
// of length C) are Flat (host arrays or textures from any kernel of this cache, read flat), and every returned value
// is an OWNED kernel result (a fresh texture on WebGL), so statistics computed here feed the forward and backward
// kernels without a round trip through the host.
// - per-channel sums in two levels: a pipeline kernel sums each (n, c) plane into part [N][C] (2-D output [C, N], one
//   thread per plane), then a second kernel sums the N planes of a channel (float32 error grows with H*W + N, not
//   N*H*W; and N*C threads work on the long sums instead of C);
// - stats:    mean = sum x / m;  var = sum (x - mean)^2 / m            (m = N*H*W, biased; var reads the mean texture)
// - forward:  y = (x - mean[c]) * (invstd[c] * w[c]) + b[c]
// - backward: gbias = sum gy, gweight = sum gy * xhat (xhat = (x - mean) invstd),
//             gx = w invstd (gy - gbias/m - xhat gweight/m) in training, w invstd gy in eval.
// The sums of gy (the bias gradient) never read x: 0 * (x - mu) is NaN for a NaN x, and the bias gradient is finite in
// the reference and PyTorch whatever x holds; the eval-mode gx does not read x either. Elementwise passes use rows
// n*C + c (a thread finds its channel by a small division of its row) over planeGrid (gemm.ts) layouts: 2-D
// [H*W, N*C], or 3-D [W, H, N*C] when H*W exceeds a texture side. Index arithmetic is float32 on WebGL: flat indices
// stay below MAX_EXACT = 2^24 and the divided row below MAX_QUOTIENT = 2^20 (batchNormFits).

import { MAX_EXACT, MAX_QUOTIENT, OWNED, asOperand, planeGrid, planeThread, present, type Flat, type KernelCache } from './kernels.js';
import type { KernelResult } from './loader.js';


export function batchNormFits(cache: KernelCache, shape: readonly number[]): boolean {
  const [N, C, H, W] = shape;
  return (
    N * C * H * W > 0 && N * C * H * W < MAX_EXACT && N * C < MAX_QUOTIENT &&
    cache.fitsTexture([W, H, N * C]) && cache.fitsTexture([C, N])
  );
}

const dims = (shape: readonly number[]) => {
  const [N, C, H, W] = shape;
  return { N, C, H, W, HW: H * W, M: N * H * W };
};

const keyOf = (shape: readonly number[]) => shape.join('x');

/** A plane-sum kernel: part[n][c] = sum over plane (n, c) of EXPR (which sees the plane's element b + i, mu, is). */
const planeSumSource = (args: string, expr: string, perChannel: string) => `function(${args}) {
  const c = this.thread.x;
  const n = this.thread.y;${perChannel}
  const b = (n * this.constants.C + c) * this.constants.HW;
  let t = 0.0;
  for (let i = 0; i < this.constants.HW; i++) {
    t += ${expr};
  }
  return t;
}`;

const sumSources = {
  x: planeSumSource('x', 'x[b + i]', ''),
  sq: planeSumSource('x, mean', '(x[b + i] - mu) * (x[b + i] - mu)', '\n  const mu = mean[c];'),
  gy: planeSumSource('gy', 'gy[b + i]', ''),
  gyxhat: planeSumSource('gy, x, mean, invstd', 'gy[b + i] * (x[b + i] - mu) * is', '\n  const mu = mean[c];\n  const is = invstd[c];'),
};

// s[c] = sum over n of part[n][c], divided by DIV (m for the statistics, 1 for the gradients).
const channelSumSource = `function(part) {
  const c = this.thread.x;
  let s = 0.0;
  for (let n = 0; n < this.constants.N; n++) {
    s += part[n * this.constants.C + c];
  }
  return s / this.constants.DIV;
}`;

/** Per-channel sum over N, H, W of one of the sumSources, divided by div: an OWNED [C] result. */
function channelSum(cache: KernelCache, shape: readonly number[], what: keyof typeof sumSources, div: number, args: Flat[]): KernelResult {
  const { N, C, HW } = dims(shape);
  const pk = `bnpart:${what}:${keyOf(shape)}`;
  const kp = cache.get(pk, () => sumSources[what], { output: [C, N], constants: { C, HW }, pipeline: true });
  const part = asOperand(cache.run(pk, kp, ...args), N * C);
  const sk = `bnsum:${N}x${C}:${div}`;
  const ks = cache.get(sk, () => channelSumSource, { output: [C], constants: { N, C, DIV: div }, ...OWNED });
  return cache.run(sk, ks, part);
}

/** Per-channel mean and biased variance of x [N, C, H, W]. */
export function gpuBatchNormStats(cache: KernelCache, x: Flat, shape: readonly number[]): { mean: KernelResult; variance: KernelResult } {
  const { C, M } = dims(shape);
  const mean = channelSum(cache, shape, 'x', M, [x]);
  const variance = channelSum(cache, shape, 'sq', M, [x, asOperand(mean, C)]);
  return { mean, variance };
}

/** The thread's channel c and flat element index k on a planeGrid over rows n*C + c. */
const rowChannel = (grid: readonly number[]) => `
  ${planeThread(grid, 'row', 'py', 'px', 'W')}
  const c = row - Math.floor((row + 0.5) / this.constants.C) * this.constants.C;
  const k = (row * this.constants.H + py) * this.constants.W + px;`;

const forwardSource = (grid: readonly number[], hasWeight: boolean, hasBias: boolean) =>
  `function(x, mean, invstd${hasWeight ? ', weight' : ''}${hasBias ? ', bias' : ''}) {${rowChannel(grid)}
  return (x[k] - mean[c]) * (invstd[c]${hasWeight ? ' * weight[c]' : ''})${hasBias ? ' + bias[c]' : ''};
}`;

/** y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]; weight and bias null mean 1 and 0. */
export function gpuBatchNormForward(
  cache: KernelCache, x: Flat, shape: readonly number[], mean: Flat, invstd: Flat, weight: Flat | null, bias: Flat | null,
): KernelResult {
  const { N, C, H, W } = dims(shape);
  const grid = planeGrid(cache, N * C, H, W);
  const key = `bnfwd:${keyOf(shape)}:${grid.length}d:${present(x, mean, invstd, weight, bias)}`;
  const k = cache.get(key, () => forwardSource(grid, weight !== null, bias !== null), { output: grid, constants: { C, H, W }, ...OWNED });
  const args = [x, mean, invstd, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return cache.run(key, k, ...args);
}

const gradSource = (grid: readonly number[], training: boolean, hasWeight: boolean) =>
  `function(gy, invstd${hasWeight ? ', weight' : ''}${training ? ', x, mean, gbias, gweight' : ''}) {${rowChannel(grid)}
  const a = ${hasWeight ? 'weight[c] * ' : ''}invstd[c];
  ${training
    ? `const xhat = (x[k] - mean[c]) * invstd[c];
  return a * (gy[k] - gbias[c] / this.constants.M - xhat * gweight[c] / this.constants.M);`
    : 'return a * gy[k];'}
}`;

/** Gradients of gpuBatchNormForward; training means mean and invstd are x's batch statistics. */
export function gpuBatchNormBackward(
  cache: KernelCache, gy: Flat, x: Flat, shape: readonly number[], mean: Flat, invstd: Flat, weight: Flat | null, training: boolean,
): { gx: KernelResult; gweight: KernelResult; gbias: KernelResult } {
  const { N, C, H, W, M } = dims(shape);
  const gbias = channelSum(cache, shape, 'gy', 1, [gy]);
  const gweight = channelSum(cache, shape, 'gyxhat', 1, [gy, x, mean, invstd]);
  const grid = planeGrid(cache, N * C, H, W);
  const args: Flat[] = [gy, invstd, ...(weight ? [weight] : [])];
  if (training) args.push(x, mean, asOperand(gbias, C), asOperand(gweight, C));
  const key = `bngrad:${keyOf(shape)}:${+training}:${grid.length}d:${present(weight)}`;
  const k = cache.get(key, () => gradSource(grid, training, weight !== null), { output: grid, constants: { C, H, W, M }, ...OWNED });
  return { gx: cache.run(key, k, ...args), gweight, gbias };
}
