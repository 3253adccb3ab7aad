// Gradient clipping by global norm, PyTorch's clip_grad_norm_: the norm of all gradients taken together; when it
// exceeds maxNorm every gradient is scaled in place by maxNorm / (norm + 1e-6). Returns the norm before clipping.

import { ArgumentError, hostElements } from '../../core/index.js';
import { Tensor, noGrad } from '../tensor-utils.js';

export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2): number {
  if (!(maxNorm >= 0)) throw new ArgumentError(`clipGradNorm: maxNorm must be >= 0, got ${maxNorm}`);
  if (!(normType > 0)) throw new ArgumentError(`clipGradNorm: normType must be > 0 or Infinity, got ${normType}`);
  const withGrad = [...params].filter((p) => p.grad !== null);
  // Gradients are made to own contiguous storage, so scaling in place touches nothing else.
  const grads = withGrad.map((p) => (p.grad = p.grad!.isContiguous && p.grad!.offset === 0 ? p.grad! : noGrad(() => p.grad!.clone())));
  let total = 0;
  for (const g of grads) {
    const gd = hostElements(g, 'clipGradNorm');
    for (let i = 0; i < g.size; i++) {
      const a = Math.abs(gd[i]);
      total = normType === Infinity ? Math.max(total, a) : total + a ** normType;
    }
  }
  if (normType !== Infinity) total = total ** (1 / normType);
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) {
    for (const g of grads) {
      const gd = hostElements(g, 'clipGradNorm');
      for (let i = 0; i < g.size; i++) gd[i] *= coef;
    }
  }
  return total;
}
