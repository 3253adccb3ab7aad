// The Backend interface: every numeric kernel an op needs. Ops never touch typed arrays; they call these.
//
// Conventions shared by all kernels:
// - Inputs are strided views (data, shape, strides, offset in elements, the ndarray model); a stride may be 0 for a
//   broadcast dim. A kernel that needs contiguous data copies it itself.
// - Outputs are fresh, contiguous, row-major arrays of the input's element type, owned by the backend that made them:
//   host typed arrays (Float32Array or Float64Array) on the reference and cpu backends, device arrays (TensorData)
//   where a backend keeps them on its device.
// - Images are NCHW; conv weights are [out, in / groups, kh, kw], as in PyTorch.
//
// The kernels are declared once, as KernelSet over the array types: HostKernels is what a host implementation
// writes against (typed arrays in and out), Kernels what ops call (any backend's arrays). hostBackend (compose.ts)
// turns HostKernels into a Backend that reads device inputs back first; composeBackend builds a backend from the
// kernels it serves and the backend each other kernel is delegated to, and both record which is which.

import type { DeviceArray, Storage, TensorData } from '../dtype.js';

export interface ViewOf<D> {
  readonly data: D;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}
/** A strided view over any backend's array: what ops hand to kernels. */
export type View = ViewOf<TensorData>;
/** A strided view over a host array: what host kernels read. */
export type HostView = ViewOf<Storage>;

export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'abs' | 'sign' | 'sigmoid' | 'tanh' | 'relu';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum' | 'gt' | 'ge' | 'lt' | 'le' | 'eq';
export type ReduceOp = 'sum' | 'max' | 'min';

/** The activation an inference convolution applies to its output (bias added first): max(y, 0), or min(max(y, 0), 6). */
export type ConvAct = 'relu' | 'relu6';

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

export interface BatchNormGradsOf<S> {
  readonly gx: S;
  /** Per-channel sum of gy * xhat (the weight gradient before multiplying by nothing: d(w*xhat+b)/dw). */
  readonly gweight: S;
  /** Per-channel sum of gy. */
  readonly gbias: S;
}
export type BatchNormGrads = BatchNormGradsOf<TensorData>;

/**
 * Every kernel, over the array types of one side: S for arrays (views over S), I for max pooling's argmax indices.
 * sparseConv2d and sparseLinear are optional (inference-only, host only).
 */
export interface KernelSet<S, I> {
  /** Row-major copy of a view. */
  contiguous(x: ViewOf<S>): S;
  /** Copy src into dst, a view into an existing array of the same shape (concat, pad, in-place updates). */
  assign(dst: ViewOf<S>, src: ViewOf<S>): void;
  /** y = op(x), elementwise. sign(0) = 0; relu(x) = max(x, 0). */
  unary(op: UnaryOp, x: ViewOf<S>): S;
  /** y = op(a, b), elementwise on views of the same shape (broadcast dims have stride 0). Comparisons give 0/1. */
  binary(op: BinaryOp, a: ViewOf<S>, b: ViewOf<S>): S;
  /** y = cond != 0 ? a : b, all three of the same shape. */
  where(cond: ViewOf<S>, a: ViewOf<S>, b: ViewOf<S>): S;
  /** y = min(max(x, lo), hi). */
  clamp(x: ViewOf<S>, lo: number, hi: number): S;
  /** Reduce over the sorted axes; the result has x's shape with those axes set to 1. */
  reduce(op: ReduceOp, x: ViewOf<S>, axes: readonly number[]): S;
  /** Batched matrix product: a [B, M, K] times b [B, K, N] -> [B, M, N]. */
  matmul(a: ViewOf<S>, b: ViewOf<S>): S;

  /** x [N, C, H, W], w [O, C/groups, kh, kw], optional bias [O] -> [N, O, OH, OW]. */
  conv2d(x: ViewOf<S>, w: ViewOf<S>, bias: ViewOf<S> | null, p: Conv2dParams): S;
  /**
   * Optional, inference only (no backward): conv2d of float32 x [N, C, H, W] with sparse weights (groups 1), the
   * same result as conv2d on the dense weights up to float32 rounding. nn/sparse-inference.ts uses it where it is
   * faster.
   */
  sparseConv2d?(x: ViewOf<S>, w: SparseWeight, bias: ViewOf<S> | null, p: Conv2dParams, act?: ConvAct): S;
  /**
   * Optional, inference only (no backward): conv2d, then act on the output (relu or relu6 as unary/clamp give them),
   * fused so the activation costs no extra pass over fresh memory. nn/inference.ts uses it for a conv whose BatchNorm
   * was folded in and whose activation follows; where a backend has none, conv2d and then unary/clamp.
   */
  conv2dAct?(x: ViewOf<S>, w: ViewOf<S>, bias: ViewOf<S> | null, p: Conv2dParams, act: ConvAct): S;
  /** Optional, inference only: x [N, C] float32 times the sparse weight [O, C] transposed, plus bias -> [N, O]. */
  sparseLinear?(x: ViewOf<S>, w: SparseWeight, bias: ViewOf<S> | null): S;
  /** Gradient w.r.t. x of conv2d, given gy [N, O, OH, OW]. */
  conv2dBackwardInput(gy: ViewOf<S>, w: ViewOf<S>, xShape: readonly number[], p: Conv2dParams): S;
  /** Gradient w.r.t. w of conv2d. */
  conv2dBackwardWeight(gy: ViewOf<S>, x: ViewOf<S>, wShape: readonly number[], p: Conv2dParams): S;

  /**
   * Max pooling; argmax holds, per output element, the flat index (h * W + w) of the chosen input in its plane, or -1
   * when the window covers only padding (the output is then -Infinity, as PyTorch's implicit -inf padding gives).
   */
  maxPool2d(x: ViewOf<S>, p: Pool2dParams): { out: S; argmax: I };
  maxPool2dBackward(gy: ViewOf<S>, argmax: I, xShape: readonly number[]): S;
  /**
   * Optional, inference only: maxPool2d's output without the argmax (no backward will read it). The same values;
   * only which of two equal values (+0 or -0) is kept may differ. ops/pool.ts uses it where no gradient is recorded.
   */
  maxPool2dInference?(x: ViewOf<S>, p: Pool2dParams): S;
  avgPool2d(x: ViewOf<S>, p: Pool2dParams): S;
  avgPool2dBackward(gy: ViewOf<S>, xShape: readonly number[], p: Pool2dParams): S;
  /** PyTorch's adaptive average pooling: cell i covers [floor(i*H/oh), ceil((i+1)*H/oh)). */
  adaptiveAvgPool2d(x: ViewOf<S>, outSize: readonly [number, number]): S;
  adaptiveAvgPool2dBackward(gy: ViewOf<S>, xShape: readonly number[]): S;

  /** Per-channel mean and biased variance of x [N, C, H, W]. */
  batchNormStats(x: ViewOf<S>): { mean: S; variance: S };
  /** y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]; weight and bias may be null (1 and 0). */
  batchNormForward(x: ViewOf<S>, mean: S, invstd: S, weight: S | null, bias: S | null): S;
  /**
   * Gradients of batchNormForward. training = true means mean and invstd are the batch statistics of x, so the
   * gradient flows through them too: gx = invstd * w * (gy - mean(gy) - xhat * mean(gy * xhat)) per channel.
   */
  batchNormBackward(
    gy: ViewOf<S>,
    x: ViewOf<S>,
    mean: S,
    invstd: S,
    weight: S | null,
    training: boolean,
  ): BatchNormGradsOf<S>;
}

/** The kernels a host implementation writes: typed arrays in, typed arrays out. */
export type HostKernels = KernelSet<Storage, Int32Array>;
/** The kernels ops call: any backend's arrays in, the serving backend's arrays out. */
export type Kernels = KernelSet<TensorData, Int32Array | DeviceArray>;
/** A kernel's name. */
export type KernelName = keyof KernelSet<Storage, Int32Array>;

/** Host <-> device traffic of a backend since it started (or since its counters were reset). */
export interface TransferStats {
  /** Host arrays copied onto the device, and their bytes. */
  readonly uploads: number;
  readonly uploadBytes: number;
  /** Device arrays read back to the host, and their bytes. */
  readonly readbacks: number;
  readonly readbackBytes: number;
}

export interface Backend extends Kernels {
  readonly name: string;
  /**
   * Why this backend cannot run on this machine (missing wasm build, no GPU...), or null when it can. Optional:
   * a backend without it is always available. Test suites and the auto selection skip unavailable backends.
   */
  unavailableReason?(): string | null;
  /**
   * Which backend runs each kernel: this backend's own name for the kernels it serves, another backend's name for
   * those it delegates (see composeBackend). A served kernel may still hand some inputs to its delegate at run time
   * (float64, shapes it cannot index exactly); the backend's docs say which. null: no backend has it (the optional
   * sparse kernels).
   */
  readonly kernels: Readonly<Record<KernelName, string | null>>;
  /**
   * A backend that keeps arrays on a device: copy a host array there (an upload, counted). Backends whose arrays are
   * host arrays have none, and tensors need no transfer to use them.
   */
  upload?(data: Storage): TensorData;
  /** Its host <-> device traffic; backends that keep host arrays have none. */
  transfers?(): TransferStats;
}
