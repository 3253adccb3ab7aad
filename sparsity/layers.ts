// Prunable layers as the sparsity code sees them: a name (the state_dict key of the weight, e.g.
// "layer1.0.conv1.weight"), the weight tensor and its shape. Everything in sparsity/ works on lists of these, so it
// runs on any model (or on bare tensors in tests).

import type { Tensor } from '../core/index.js';

export interface PrunableLayer {
  /** The state_dict name of the weight. */
  readonly name: string;
  readonly weight: Tensor;
}

/** |w| of a layer as a flat Float64Array, row-major. */
export function absWeights(layer: PrunableLayer): Float64Array {
  const w = layer.weight.toArray();
  const a = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) a[i] = Math.abs(w[i]);
  return a;
}

export const totalParams = (layers: readonly PrunableLayer[]): number => layers.reduce((s, l) => s + l.weight.size, 0);

/** The number of weights a global sparsity asks to prune: round(S* N). */
export const targetCount = (layers: readonly PrunableLayer[], sparsity: number): number =>
  Math.round(sparsity * totalParams(layers));
