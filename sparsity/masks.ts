// Masks: which weights of each layer are pruned, in one place. The one rule: a weight with |w| <= t is pruned
// (`isPruned`; its tensor form `keptTensor` is |w| > t), used by the bridge's count, the training-time masked
// weights, threshold masks and the exact correction alike. Masks are Uint8Array per layer, 1 = kept. Counts-based
// masks prune the k smallest |w| (ties by index); the exact global correction turns per-layer thresholds into masks
// with exactly round(S* N) pruned weights. Also here: masked weights for the forward pass in the two
// threshold-gradient modes, applying masks for good, and the per-layer report every method returns.
//   detached  m = [|w| > t] computed without gradient (the released code): thresholds learn only through L_c
//   ste       m = [|w| - t > 0] with a straight-through gradient where ||w| - t| < 1 (the paper's joint learning):
//             the reconstruction loss reaches both w and t through m

import { ArgumentError, fromStorage, hostData, noGrad, record, type Storage, type Tensor } from '../core/index.js';
import { sumTo } from '../core/ops/shape.js';
import { absWeights, totalParams, type PrunableLayer } from './layers.js';

export type Mask = Uint8Array;

/** The pruned-or-not rule: pruned iff |w| <= t. */
export const isPruned = (absW: number, t: number): boolean => absW <= t;

/** Number of weights of `w` pruned at threshold t. */
export function countPruned(w: ArrayLike<number>, t: number): number {
  let n = 0;
  for (let i = 0; i < w.length; i++) if (isPruned(Math.abs(w[i]), t)) n++;
  return n;
}

/** Keep w iff not isPruned(|w|, t). */
export function maskFromThreshold(abs: ArrayLike<number>, t: number): Mask {
  const m = new Uint8Array(abs.length);
  for (let i = 0; i < abs.length; i++) m[i] = isPruned(abs[i], t) ? 0 : 1;
  return m;
}

/** The rule as a tensor op, without gradient: 1 where |w| > t (kept), 0 where pruned. */
export const keptTensor = (w: Tensor, t: Tensor | number): Tensor => noGrad(() => w.abs().gt(t));

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

/** Heaviside step x > 0 with the straight-through gradient 1 on |x| < 1 (the released code's STE window). */
export function steStep(x: Tensor): Tensor {
  const y = noGrad(() => x.gt(0));
  // d step(x) ~= [|x| < 1] dx
  return record('steStep', y, [x], (g) => [g.mul(x.abs().lt(1))]);
}

export type GradMode = 'detached' | 'ste';

/**
 * w * m with m = [|w| > t] (keptTensor's rule; in ste mode step(|w| - t) is the same 0/1 value). Host tensors of one
 * dtype take one loop forward and one backward (maskedWeightHost) instead of the ~15 backend calls of the composed
 * form below, with the composed form's bits; device tensors (gpujs) and mixed dtypes run the composed form.
 */
export function maskedWeight(w: Tensor, t: Tensor, mode: GradMode): Tensor {
  if (w.isHost && t.isHost && w.dtype === t.dtype && t.size === 1) return maskedWeightHost(w, t, mode);
  if (mode === 'ste') return w.mul(steStep(w.abs().sub(t)));
  return w.mul(keptTensor(w, t));
}

/** The contiguous elements of a host tensor: its own array where it is contiguous, else a copy. */
const contiguousHost = (x: Tensor): Storage => {
  if (!x.isContiguous) x = noGrad(() => x.contiguous());
  return hostData(x.data).subarray(x.offset, x.offset + x.size) as Storage;
};

/**
 * maskedWeight on the host, the composed form's arithmetic written out. With x = |w| - t (rounded to the dtype),
 * m = [x > 0] and the STE window b = [|x| < 1], the composed form's backward is: for w, g m + ((g w) b) sign(w)
 * (mul's and abs's contributions, summed once); for t (ste only), the sum over the weight of -((g w) b), by the same
 * sumTo as sub's backward. Every product with m, b or sign(w) is exact, so float32 needs one rounding per mul and
 * add, as the backend's kernels do.
 */
function maskedWeightHost(w: Tensor, t: Tensor, mode: GradMode): Tensor {
  const f32 = w.dtype === 'float32';
  const r = f32 ? Math.fround : (v: number) => v;
  const wv = contiguousHost(w);
  const tv = t.item();
  const n = wv.length;
  const y = f32 ? new Float32Array(n) : new Float64Array(n);
  // bit 0: m, bit 1: the STE window
  const code = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = r(Math.abs(wv[i]) - tv);
    const m = x > 0 ? 1 : 0;
    code[i] = m | (Math.abs(x) < 1 ? 2 : 0);
    y[i] = wv[i] * m;
  }
  const ste = mode === 'ste';
  return record(ste ? 'maskedWeightSte' : 'maskedWeight', fromStorage(y, w.shape), [w, t], (g, needs) => {
    const gv = contiguousHost(g);
    const gw = needs[0] ? (f32 ? new Float32Array(n) : new Float64Array(n)) : null;
    const gt = ste && needs[1] ? (f32 ? new Float32Array(n) : new Float64Array(n)) : null;
    for (let i = 0; i < n; i++) {
      const m = code[i] & 1;
      if (!ste) {
        if (gw) gw[i] = gv[i] * m;
        continue;
      }
      const gwb = r(gv[i] * wv[i]) * (code[i] >> 1);
      if (gw) gw[i] = r(gv[i] * m + gwb * Math.sign(wv[i]));
      if (gt) gt[i] = -gwb;
    }
    return [gw && fromStorage(gw, w.shape), gt && sumTo(fromStorage(gt, w.shape), t.shape)];
  });
}

/** A fixed 0/1 mask as a tensor of the weight's shape and dtype. */
export function maskTensor(mask: Mask, like: Tensor): Tensor {
  const data = like.dtype === 'float64' ? Float64Array.from(mask) : Float32Array.from(mask);
  return fromStorage(data, like.shape);
}

/** A tensor's nonzero pattern as a mask. */
export const maskFromTensor = (t: Tensor): Mask => Uint8Array.from(t.toArray(), (v) => (v !== 0 ? 1 : 0));

/** Zero the pruned weights for good. */
export function applyMasks(layers: readonly PrunableLayer[], masks: readonly Mask[]): void {
  if (masks.length !== layers.length) throw new ArgumentError(`applyMasks: ${masks.length} masks for ${layers.length} layers`);
  layers.forEach((l, i) => {
    if (masks[i].length !== l.weight.size) throw new ArgumentError(`applyMasks: mask of ${l.name} has ${masks[i].length} entries, the weight ${l.weight.size}`);
  });
  noGrad(() => layers.forEach((l, i) => l.weight.copy_(l.weight.mul(maskTensor(masks[i], l.weight)))));
}

/** One prunable layer's outcome, as every method reports it and result.json records it. */
export interface LayerReport {
  name: string;
  params: number;
  sparsity: number;
}

export const layerReports = (layers: readonly PrunableLayer[], masks: readonly Mask[]): LayerReport[] =>
  layers.map((l, i) => ({ name: l.name, params: l.weight.size, sparsity: prunedCount(masks[i]) / l.weight.size }));
