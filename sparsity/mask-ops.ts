// Masked weights for the forward pass, in the two threshold-gradient modes:
//   detached  m = [|w| > t] computed without gradient (the released code): thresholds learn only through L_c
//   ste       m = [|w| - t > 0] with a straight-through gradient where ||w| - t| < 1 (the paper's joint learning):
//             the reconstruction loss reaches both w and t through m
// plus fixed masks (one-shot baselines, erk-kd, the final network).

import { Tensor, fromStorage, noGrad, record } from '../core/index.js';

/** Heaviside step x > 0 with the straight-through gradient 1 on |x| < 1 (the released code's STE window). */
export function steStep(x: Tensor): Tensor {
  const y = noGrad(() => x.gt(0));
  // d step(x) ~= [|x| < 1] dx
  return record('steStep', y, [x], (g) => [g.mul(x.abs().lt(1))]);
}

export type GradMode = 'detached' | 'ste';

/** w * m with m = [|w| > t]. */
export function maskedWeight(w: Tensor, t: Tensor, mode: GradMode): Tensor {
  if (mode === 'ste') return w.mul(steStep(w.abs().sub(t)));
  const m = noGrad(() => w.abs().gt(t));
  return w.mul(m);
}

/** A fixed 0/1 mask as a tensor of the weight's shape and dtype. */
export function maskTensor(mask: Uint8Array, like: Tensor): Tensor {
  const data = like.dtype === 'float64' ? Float64Array.from(mask) : Float32Array.from(mask);
  return fromStorage(data, like.shape);
}
