// Batch normalisation over NCHW (PyTorch's F.batch_norm). Training: normalise with the batch mean and biased
// variance, update the running statistics in place with momentum and the unbiased variance. Eval: normalise with the
// running statistics. Forward and backward are named backend kernels.

import { noGrad, record } from '../autograd.js';
import { backend } from '../backend/index.js';
import { allocate, isHost, type DType, type TensorData } from '../dtype.js';
import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { Tensor, fromStorage, full } from '../tensor.js';

export interface BatchNormOptions {
  training?: boolean;
  momentum?: number;
  eps?: number;
}

export function batchNorm2d(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  opts: BatchNormOptions = {},
): Tensor {
  const training = opts.training ?? false;
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  if (x.ndim !== 4) throw new ShapeError(`batchNorm2d: expected a 4-D NCHW input, got ${fmtShape(x.shape)}`);
  const C = x.shape[1];
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', weight], ['bias', bias]] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== C)) {
      throw new ShapeError(`batchNorm2d: ${name} must have shape [${C}] for input ${fmtShape(x.shape)}, got ${fmtShape(t.shape)}`);
    }
  }
  if (!(eps > 0)) throw new ArgumentError(`batchNorm2d: eps must be > 0, got ${eps}`);
  const b = backend();
  const vec = (t: Tensor | null) => (t ? b.contiguous(t) : null);
  let mean: TensorData;
  let variance: TensorData;
  if (training) {
    const m = x.shape[0] * x.shape[2] * x.shape[3];
    if (m <= 1) throw new ArgumentError(`batchNorm2d: training needs more than 1 value per channel, got input ${fmtShape(x.shape)}`);
    ({ mean, variance } = b.batchNormStats(x));
    if (runningMean && runningVar) {
      // running = (1 - momentum) * running + momentum * batch statistic (unbiased variance)
      const rm = fromStorage(mean, [C]).mul(momentum).add(runningMean.detach().mul(1 - momentum));
      const rv = fromStorage(variance, [C]).mul((momentum * m) / (m - 1)).add(runningVar.detach().mul(1 - momentum));
      runningMean.copy_(rm);
      runningVar.copy_(rv);
    }
  } else {
    if (!runningMean || !runningVar) throw new ArgumentError('batchNorm2d: eval mode needs runningMean and runningVar');
    mean = b.contiguous(runningMean);
    variance = b.contiguous(runningVar);
  }
  const invstd = invStd(variance, x.dtype, C, eps);
  const w = vec(weight);
  const y = fromStorage(b.batchNormForward(x, mean, invstd, w, vec(bias)), x.shape);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  // y = xhat * w + b with xhat = (x - mean) * invstd; in training mean and invstd depend on x too
  return record('batchNorm2d', y, inputs, (g) => {
    const r = b.batchNormBackward(g, x, mean, invstd, w, training);
    return [
      fromStorage(r.gx, x.shape),
      ...(weight ? [fromStorage(r.gweight, [C])] : []),
      ...(bias ? [fromStorage(r.gbias, [C])] : []),
    ];
  });
}

export const normOps = { batchNorm2d };

/** 1 / sqrt(variance + eps) per channel: on the host in float64 then rounded, on a device with its kernels. */
function invStd(variance: TensorData, dtype: DType, C: number, eps: number): TensorData {
  if (!isHost(variance)) return noGrad(() => full([], 1, { dtype }).div(fromStorage(variance, [C]).add(eps).sqrt())).data;
  const invstd = allocate(dtype, C);
  for (let c = 0; c < C; c++) invstd[c] = 1 / Math.sqrt(variance[c] + eps);
  return invstd;
}
