// One-shot sparsity allocations: how many weights each prunable layer loses for a global target S*. Every method
// returns integer counts that sum to exactly round(S* N), so achieved sparsity equals the target to one weight.
//   uniform     every layer at S* (counts rounded by largest remainder)
//   global      one threshold on |w| over all layers
//   global-l1   one threshold on |w| / ||W_l||_1;   global-l2: on |w| / ||W_l||_2
//   erk         density_l proportional to (sum of dims / product of dims)^power, dense layers capped and re-solved
//   lamp        score w_u^2 / sum_{v >= u} w_v^2 within each layer (|w| ascending), globally smallest pruned
//   given       each layer at the sparsity `allocation` names for it (e.g. another run's learned allocation, from its
//               result.json), counts rounded to hit round(S* N); the given sparsities must total S* to within rounding

import { ArgumentError } from '../core/index.js';
import { absWeights, targetCount, totalParams, type PrunableLayer } from './layers.js';
import { lowerBound } from './masks.js';

export const ALLOCATION_METHODS = ['uniform', 'global', 'global-l1', 'global-l2', 'erk', 'lamp', 'given'] as const;
export type AllocationMethod = (typeof ALLOCATION_METHODS)[number];

export interface AllocationOptions {
  method: AllocationMethod;
  sparsity: number;
  /** ERK exponent (1 in the FCPTS code, 0.5 in msbench). */
  erkPower?: number;
  /** Method `given`: each prunable layer's sparsity by state_dict weight name. */
  allocation?: Readonly<Record<string, number>>;
}

export interface Allocation {
  /** Weights to prune per layer, in layer order. */
  counts: number[];
  /** counts / layer size, by state_dict name. */
  sparsity: Record<string, number>;
}

/** Round real-valued per-layer counts to integers summing to K (largest remainder), within [0, n_l]. */
export function roundCounts(real: readonly number[], sizes: readonly number[], K: number): number[] {
  const counts = real.map((r, i) => Math.min(sizes[i], Math.max(0, Math.floor(r))));
  let missing = K - counts.reduce((a, b) => a + b, 0);
  const order = real.map((r, i) => i).sort((a, b) => (real[b] - Math.floor(real[b])) - (real[a] - Math.floor(real[a])) || a - b);
  for (let pass = 0; missing > 0 && pass < 2; pass++) {
    for (const i of order) {
      if (missing === 0) break;
      if (counts[i] < sizes[i]) {
        counts[i]++;
        missing--;
      }
    }
  }
  return counts;
}

/** ERK densities: d_l = min(1, eps * raw_l) with sum n_l d_l = (1 - S*) N; dense layers are fixed and eps re-solved. */
export function erkDensities(layers: readonly PrunableLayer[], sparsity: number, power = 1): number[] {
  const sizes = layers.map((l) => l.weight.size);
  const raw = layers.map((l) => Math.pow(l.weight.shape.reduce((a, b) => a + b, 0) / l.weight.size, power));
  const keep = (1 - sparsity) * totalParams(layers);
  const dense = new Set<number>();
  for (;;) {
    const fixed = [...dense].reduce((s, i) => s + sizes[i], 0);
    const free = layers.map((_, i) => i).filter((i) => !dense.has(i));
    const weighted = free.reduce((s, i) => s + raw[i] * sizes[i], 0);
    const eps = weighted > 0 ? (keep - fixed) / weighted : 0;
    const over = free.filter((i) => eps * raw[i] > 1);
    if (over.length === 0) return layers.map((_, i) => (dense.has(i) ? 1 : Math.max(0, eps * raw[i])));
    over.forEach((i) => dense.add(i));
  }
}

/** Prune the K globally smallest scores; returns per-layer counts. Ties by layer order, then index. */
function countsFromScores(scores: Float64Array[], K: number): number[] {
  const N = scores.reduce((s, a) => s + a.length, 0);
  const all = new Float64Array(N);
  let o = 0;
  for (const s of scores) {
    all.set(s, o);
    o += s.length;
  }
  const counts = scores.map(() => 0);
  if (K === 0) return counts;
  const kth = Float64Array.from(all).sort()[K - 1];
  let left = K;
  scores.forEach((s, l) => {
    for (let i = 0; i < s.length; i++) if (s[i] < kth) counts[l]++;
  });
  left -= counts.reduce((a, b) => a + b, 0);
  for (let l = 0; l < scores.length && left > 0; l++) {
    for (let i = 0; i < scores[l].length && left > 0; i++) {
      if (scores[l][i] === kth) {
        counts[l]++;
        left--;
      }
    }
  }
  return counts;
}

/**
 * LAMP scores of one layer, in the layer's own element order: w_u^2 / sum_{v >= u} w_v^2 over |w| ascending. Tied
 * magnitudes share the score of the first of them (the largest tail), so the score depends on values only.
 */
export function lampScores(abs: Float64Array): Float64Array {
  const sorted = Float64Array.from(abs).sort();
  const tail = new Float64Array(sorted.length + 1);
  for (let j = sorted.length - 1; j >= 0; j--) tail[j] = tail[j + 1] + sorted[j] * sorted[j];
  const scores = new Float64Array(abs.length);
  for (let i = 0; i < abs.length; i++) {
    const t = tail[lowerBound(sorted, abs[i])];
    scores[i] = t > 0 ? (abs[i] * abs[i]) / t : 0;
  }
  return scores;
}

/** Real-valued counts of a given allocation, checked: every layer named, each in [0, 1], totalling K to rounding. */
function givenCounts(layers: readonly PrunableLayer[], allocation: AllocationOptions['allocation'], sparsity: number, K: number): number[] {
  if (!allocation) throw new ArgumentError("allocate: method 'given' needs an allocation (each layer's sparsity by weight name)");
  const known = new Set(layers.map((l) => l.name));
  const extra = Object.keys(allocation).filter((k) => !known.has(k));
  if (extra.length) throw new ArgumentError(`allocate: the allocation names ${extra[0]}, which is not a prunable layer of this model (expected names like ${layers[0].name})`);
  const real = layers.map((l) => {
    const s = allocation[l.name];
    if (s === undefined) throw new ArgumentError(`allocate: the allocation has no sparsity for ${l.name}`);
    if (!(s >= 0 && s <= 1)) throw new ArgumentError(`allocate: the allocation's sparsity for ${l.name} must be in [0, 1], got ${s}`);
    return s * l.weight.size;
  });
  const total = real.reduce((a, b) => a + b, 0);
  if (Math.abs(total - K) > layers.length) {
    const N = totalParams(layers);
    throw new ArgumentError(`allocate: the allocation prunes ${Math.round(total)} of ${N} weights (${((100 * total) / N).toFixed(2)}%), but the target ${sparsity} needs ${K}`);
  }
  return real;
}

export function allocateLayers(layers: readonly PrunableLayer[], opts: AllocationOptions): Allocation {
  const { method, sparsity } = opts;
  if (!(sparsity >= 0 && sparsity <= 1)) throw new ArgumentError(`allocate: sparsity must be in [0, 1], got ${sparsity}`);
  if (layers.length === 0) throw new ArgumentError('allocate: no prunable layers');
  const K = targetCount(layers, sparsity);
  const sizes = layers.map((l) => l.weight.size);
  let counts: number[];
  switch (method) {
    case 'uniform':
      counts = roundCounts(sizes.map((n) => sparsity * n), sizes, K);
      break;
    case 'erk': {
      const d = erkDensities(layers, sparsity, opts.erkPower ?? 1);
      counts = roundCounts(sizes.map((n, i) => (1 - d[i]) * n), sizes, K);
      break;
    }
    case 'global':
    case 'global-l1':
    case 'global-l2': {
      const scores = layers.map((l) => {
        const a = absWeights(l);
        const norm = method === 'global' ? 1 : method === 'global-l1' ? a.reduce((s, v) => s + v, 0) : Math.sqrt(a.reduce((s, v) => s + v * v, 0));
        if (norm > 0 && norm !== 1) for (let i = 0; i < a.length; i++) a[i] /= norm;
        return a;
      });
      counts = countsFromScores(scores, K);
      break;
    }
    case 'lamp':
      counts = countsFromScores(layers.map((l) => lampScores(absWeights(l))), K);
      break;
    case 'given':
      counts = roundCounts(givenCounts(layers, opts.allocation, sparsity, K), sizes, K);
      break;
    default:
      throw new ArgumentError(`allocate: unknown method '${method as string}', expected one of ${ALLOCATION_METHODS.join(', ')}`);
  }
  return { counts, sparsity: Object.fromEntries(layers.map((l, i) => [l.name, counts[i] / sizes[i]])) };
}
