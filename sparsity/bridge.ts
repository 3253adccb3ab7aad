// The bridge function: threshold -> layer sparsity, made differentiable. Forward: the exact fraction of weights
// with |w| <= t. Backward: dS/dt = p(t) + p(-t) from a density estimate of the layer's signed weights (histogram or
// KDE, sparsity/density.ts). Thresholds are parametrised as t = sigmoid(s) (absolute) or sigmoid(s) * max|w|
// (relative), so autograd chains dS/ds = (p(t) + p(-t)) t (1 - t) [* max|w|].

import { ArgumentError, Tensor, full, noGrad, record } from '../core/index.js';
import type { DensityEstimator } from './density.js';
import { absWeights, type PrunableLayer } from './layers.js';
import { countPruned } from './masks.js';

/**
 * S_l(t) = #{|w| <= t} / n, with dS/dt = p(t) + p(-t). The weights receive no gradient through it. Weights on a
 * device stay there: the count runs with the backend's kernels (a device scalar) and the density reads back scalars
 * only (densityOnDevice).
 */
export function layerSparsity(weight: Tensor, threshold: Tensor, est: DensityEstimator): Tensor {
  if (threshold.size !== 1) throw new ArgumentError(`layerSparsity: threshold must hold one value, got shape [${threshold.shape}]`);
  if (!weight.isHost) return layerSparsityOnDevice(weight, threshold, est);
  const w = weight.toArray();
  const t = threshold.item();
  const s = full([], countPruned(w, t) / w.length, { dtype: threshold.dtype });
  // dS/dt = p(t) + p(-t)
  return record('layerSparsity', s, [threshold], (g) => {
    const [pPos, pNeg] = est.density(w, [t, -t]);
    return [g.mul(pPos + pNeg).reshape(threshold.shape)];
  });
}

function layerSparsityOnDevice(weight: Tensor, threshold: Tensor, est: DensityEstimator): Tensor {
  const w = weight.detach();
  // isPruned's rule, |w| <= t, as a 0/1 sum: exact in float32 below 2^24 weights
  const s = noGrad(() => w.abs().le(threshold.detach().reshape([])).sum().div(w.size)).to(threshold.dtype);
  return record('layerSparsity', s, [threshold], (g) => {
    const t = threshold.item();
    const [pPos, pNeg] = densityOnDevice(est, w, [t, -t]);
    return [g.mul(pPos + pNeg).reshape(threshold.shape)];
  });
}

/**
 * est's density of a device tensor's values at the points. The histogram counts its two bins with the backend's
 * kernels and reads back scalars (min, max, counts); other estimators read the weights back.
 */
function densityOnDevice(est: DensityEstimator, w: Tensor, points: readonly number[]): number[] {
  const bins = est.histogramBins;
  if (bins === undefined) return est.density(w.toArray(), points);
  const n = w.size;
  const lo = w.min().item(), hi = w.max().item();
  if (n === 0 || !(hi > lo)) return points.map(() => 0);
  const width = (hi - lo) / bins;
  return points.map((p) => {
    if (p < lo || p > hi) return 0;
    // the bin of p by histogramDensity's rule, and its value range [a, b) ([a, hi] for the last bin)
    const b = Math.min(bins - 1, Math.floor((p - lo) / width));
    const inBin = noGrad(() => {
      const above = b === 0 ? null : w.sub(lo).div(width).ge(b);
      const below = b === bins - 1 ? null : w.sub(lo).div(width).lt(b + 1);
      return above && below ? above.mul(below) : (above ?? below ?? w.mul(0).add(1));
    });
    return inBin.sum().item() / (width * n);
  });
}

export type ThresholdMode = 'absolute' | 'relative';

/** t = sigmoid(s), or sigmoid(s) * max|w| in relative mode (max|w| taken as a constant). */
export function thresholdOf(s: Tensor, weight: Tensor, mode: ThresholdMode): Tensor {
  const t = s.sigmoid();
  if (mode === 'absolute') return t;
  return t.mul(weight.detach().abs().max().item());
}

const logit = (p: number) => Math.log(p / (1 - p));

/**
 * Initial threshold logits for per-layer sparsities (ERK in FCPTS): t_l = the k-th smallest |w| with
 * k = floor(S_l n_l) (the smallest |w| when k = 0), s_l = logit(t_l) clamped below at -30. t_l is placed halfway
 * between the k-th and the next |w| so exactly k weights are pruned after the round trip through float logits.
 */
export function initialLogits(layers: readonly PrunableLayer[], sparsities: readonly number[], mode: ThresholdMode): number[] {
  return layers.map((l, i) => {
    const a = absWeights(l).sort();
    const k = Math.max(Math.floor(sparsities[i] * a.length), 1);
    // Midway to the next |w|, so that the logit/sigmoid round trip cannot move the threshold across a weight.
    let t = k < a.length ? (a[k - 1] + a[k]) / 2 : a[k - 1];
    if (mode === 'relative') t /= Math.max(a[a.length - 1], 1e-30);
    return Math.max(logit(Math.min(Math.max(t, 1e-300), 1 - 1e-12)), -30);
  });
}
