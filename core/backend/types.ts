// The Backend interface: every numeric kernel an op needs. Ops never touch typed arrays; they call these.
//
// Conventions shared by all kernels:
// - Inputs are strided views (data, shape, strides, offset in elements, the ndarray model); a stride may be 0 for a
//   broadcast dim. A kernel that needs contiguous data copies it itself.
// - Outputs are fresh, contiguous, row-major arrays of the input's element type (Float32Array or Float64Array).
// - Images are NCHW; conv weights are [out, in / groups, kh, kw], as in PyTorch.

import type { Storage } from '../dtype.js';

export interface View {
  readonly data: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'abs' | 'sign' | 'sigmoid' | 'tanh' | 'relu';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum' | 'gt' | 'ge' | 'lt' | 'le' | 'eq';
export type ReduceOp = 'sum' | 'max' | 'min';

export interface Conv2dParams {
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly groups: number;
}

/**
 * Unstructured-sparse weights in CSR form for the inference-only sparse kernels: a conv weight [O, C, KH, KW] (groups
 * 1) or a linear weight [O, C] (KH = KW = 1); the nonzeros of output channel o are rows[o] <= j < rows[o + 1], tap
 * taps[j] = (c * KH + kh) * KW + kw in increasing order, value vals[j].
 */
export interface SparseWeight {
  readonly O: number; readonly C: number; readonly KH: number; readonly KW: number;
  readonly rows: Int32Array;
  readonly taps: Int32Array;
  readonly vals: Float32Array;
}

export interface Pool2dParams {
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly ceilMode: boolean;
  /** avgPool2d only: divide by the full window (true) or by the in-bounds part (false). */
  readonly countIncludePad: boolean;
}

export interface BatchNormGrads {
  readonly gx: Storage;
  /** Per-channel sum of gy * xhat (the weight gradient before multiplying by nothing: d(w*xhat+b)/dw). */
  readonly gweight: Storage;
  /** Per-channel sum of gy. */
  readonly gbias: Storage;
}

export interface Backend {
  readonly name: string;
  /**
   * Why this backend cannot run on this machine (missing wasm build, no GPU...), or null when it can. Optional:
   * a backend without it is always available. Test suites and the auto selection skip unavailable backends.
   */
  unavailableReason?(): string | null;

  /** Row-major copy of a view. */
  contiguous(x: View): Storage;
  /** Copy src into dst, a view into an existing array of the same shape (concat, pad, in-place updates). */
  assign(dst: View, src: View): void;
  /** y = op(x), elementwise. sign(0) = 0; relu(x) = max(x, 0). */
  unary(op: UnaryOp, x: View): Storage;
  /** y = op(a, b), elementwise on views of the same shape (broadcast dims have stride 0). Comparisons give 0/1. */
  binary(op: BinaryOp, a: View, b: View): Storage;
  /** y = cond != 0 ? a : b, all three of the same shape. */
  where(cond: View, a: View, b: View): Storage;
  /** y = min(max(x, lo), hi). */
  clamp(x: View, lo: number, hi: number): Storage;
  /** Reduce over the sorted axes; the result has x's shape with those axes set to 1. */
  reduce(op: ReduceOp, x: View, axes: readonly number[]): Storage;
  /** Batched matrix product: a [B, M, K] times b [B, K, N] -> [B, M, N]. */
  matmul(a: View, b: View): Storage;

  /** x [N, C, H, W], w [O, C/groups, kh, kw], optional bias [O] -> [N, O, OH, OW]. */
  conv2d(x: View, w: View, bias: View | null, p: Conv2dParams): Storage;
  /**
   * Optional, inference only (no backward): conv2d of float32 x [N, C, H, W] with sparse weights (groups 1), the
   * same result as conv2d on the dense weights up to float32 rounding. nn/sparse-inference.ts uses it where it is
   * faster.
   */
  sparseConv2d?(x: View, w: SparseWeight, bias: View | null, p: Conv2dParams): Storage;
  /** Optional, inference only: x [N, C] float32 times the sparse weight [O, C] transposed, plus bias -> [N, O]. */
  sparseLinear?(x: View, w: SparseWeight, bias: View | null): Storage;
  /** Gradient w.r.t. x of conv2d, given gy [N, O, OH, OW]. */
  conv2dBackwardInput(gy: View, w: View, xShape: readonly number[], p: Conv2dParams): Storage;
  /** Gradient w.r.t. w of conv2d. */
  conv2dBackwardWeight(gy: View, x: View, wShape: readonly number[], p: Conv2dParams): Storage;

  /**
   * Max pooling; argmax holds, per output element, the flat index (h * W + w) of the chosen input in its plane, or -1
   * when the window covers only padding (the output is then -Infinity, as PyTorch's implicit -inf padding gives).
   */
  maxPool2d(x: View, p: Pool2dParams): { out: Storage; argmax: Int32Array };
  maxPool2dBackward(gy: View, argmax: Int32Array, xShape: readonly number[]): Storage;
  avgPool2d(x: View, p: Pool2dParams): Storage;
  avgPool2dBackward(gy: View, xShape: readonly number[], p: Pool2dParams): Storage;
  /** PyTorch's adaptive average pooling: cell i covers [floor(i*H/oh), ceil((i+1)*H/oh)). */
  adaptiveAvgPool2d(x: View, outSize: readonly [number, number]): Storage;
  adaptiveAvgPool2dBackward(gy: View, xShape: readonly number[]): Storage;

  /** Per-channel mean and biased variance of x [N, C, H, W]. */
  batchNormStats(x: View): { mean: Storage; variance: Storage };
  /** y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]; weight and bias may be null (1 and 0). */
  batchNormForward(x: View, mean: Storage, invstd: Storage, weight: Storage | null, bias: Storage | null): Storage;
  /**
   * Gradients of batchNormForward. training = true means mean and invstd are the batch statistics of x, so the
   * gradient flows through them too: gx = invstd * w * (gy - mean(gy) - xhat * mean(gy * xhat)) per channel.
   */
  batchNormBackward(
    gy: View,
    x: View,
    mean: Storage,
    invstd: Storage,
    weight: Storage | null,
    training: boolean,
  ): BatchNormGrads;
}
