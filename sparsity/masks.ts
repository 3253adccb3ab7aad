// Masks: which weights of each layer are pruned. One tie rule everywhere: a weight with |w| <= t is pruned. Masks
// are Uint8Array per layer, 1 = kept. Counts-based masks prune the k smallest |w| (ties by index); the exact global
// correction turns per-layer thresholds into masks with exactly round(S* N) pruned weights.

import { ArgumentError } from '../core/index.js';
import { absWeights, totalParams, type PrunableLayer } from './layers.js';

export type Mask = Uint8Array;

/** Keep w iff |w| > t. */
export function maskFromThreshold(abs: ArrayLike<number>, t: number): Mask {
  const m = new Uint8Array(abs.length);
  for (let i = 0; i < abs.length; i++) m[i] = abs[i] > t ? 1 : 0;
  return m;
}

/** First index in an ascending array whose value is >= v. */
export function lowerBound(sorted: Float64Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Prune exactly k weights of a layer: the k smallest |w|, ties broken by index. Uses the engine's native numeric
 * sort (no comparator callback), so a 2.4M-weight layer takes a fraction of a second.
 */
export function maskFromCount(abs: ArrayLike<number>, k: number): Mask {
  const n = abs.length;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new ArgumentError(`maskFromCount: cannot prune ${k} of ${n} weights`);
  const m = new Uint8Array(n).fill(1);
  if (k === 0) return m;
  const sorted = Float64Array.from(abs).sort();
  const kth = sorted[k - 1];
  let ties = k - lowerBound(sorted, kth);
  for (let i = 0; i < n; i++) {
    const a = abs[i];
    if (a < kth) m[i] = 0;
    else if (a === kth && ties > 0) {
      m[i] = 0;
      ties--;
    }
  }
  return m;
}

export function masksFromCounts(layers: readonly PrunableLayer[], counts: readonly number[]): Mask[] {
  return layers.map((l, i) => maskFromCount(absWeights(l), counts[i]));
}

export const prunedCount = (m: Mask): number => m.length - m.reduce((s, v) => s + v, 0);

export interface ExactResult {
  masks: Mask[];
  /** The common log-offset: t_l' = t_l e^delta for every layer. */
  delta: number;
  /** Weights pruned at the boundary by the global-magnitude tie rule. */
  tiesSettled: number;
}

/**
 * The exact global-sparsity correction. Every weight's critical offset is log(|w| / t_l): it is pruned iff
 * delta >= that. Choosing one common delta so that exactly K = round(S* N) weights are pruned is a selection of the
 * K smallest ratios r = |w| / t_l over all layers (what bisection on delta converges to, found directly). Weights
 * whose ratio equals the K-th are ties: they are settled by global magnitude (smallest |w| first), then by layer
 * and index.
 */
export function exactGlobalMasks(layers: readonly PrunableLayer[], thresholds: readonly number[], sparsity: number): ExactResult {
  if (!(sparsity >= 0 && sparsity <= 1)) throw new ArgumentError(`exactGlobalMasks: sparsity must be in [0, 1], got ${sparsity}`);
  if (thresholds.length !== layers.length) {
    throw new ArgumentError(`exactGlobalMasks: ${thresholds.length} thresholds for ${layers.length} layers`);
  }
  const N = totalParams(layers);
  const K = Math.round(sparsity * N);
  const abs = layers.map(absWeights);
  const ratios = new Float64Array(N);
  let o = 0;
  abs.forEach((a, l) => {
    const t = Math.max(thresholds[l], 1e-30);
    for (let i = 0; i < a.length; i++) ratios[o++] = a[i] / t;
  });
  const masks = abs.map((a) => new Uint8Array(a.length).fill(1));
  if (K === 0) return { masks, delta: -Infinity, tiesSettled: 0 };
  const sorted = Float64Array.from(ratios).sort();
  const rK = sorted[K - 1];
  // Prune every ratio below rK; collect the ties at rK.
  let pruned = 0;
  const ties: Array<[number, number, number]> = []; // |w|, layer, index
  o = 0;
  abs.forEach((a, l) => {
    for (let i = 0; i < a.length; i++, o++) {
      if (ratios[o] < rK) {
        masks[l][i] = 0;
        pruned++;
      } else if (ratios[o] === rK) ties.push([a[i], l, i]);
    }
  });
  ties.sort((x, y) => x[0] - y[0] || x[1] - y[1] || x[2] - y[2]);
  const need = K - pruned;
  for (let j = 0; j < need; j++) masks[ties[j][1]][ties[j][2]] = 0;
  return { masks, delta: Math.log(rK), tiesSettled: need < ties.length ? need : 0 };
}
