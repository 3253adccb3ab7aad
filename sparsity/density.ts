// Density estimators of a layer's signed weights, the backward half of the bridge function: dS/dt = p(t) + p(-t).
// Two estimators behind one interface: the released code's 100-bin histogram over [min w, max w], and the paper's
// Gaussian kernel density estimate with Silverman's bandwidth. Both are recomputed from the current weights each
// time they are asked (the bridge calls them once per step per layer).

export interface DensityEstimator {
  readonly name: string;
  /** The estimated density of the values in w at each of the points. */
  density(w: ArrayLike<number>, points: readonly number[]): number[];
  /** A histogram's bin count (the bridge counts a bin on a device with it); absent for other estimators. */
  readonly histogramBins?: number;
}

/** Histogram density: count / (bin width * n) of the bin holding the point, 0 outside [min, max]. */
export function histogramDensity(bins = 100): DensityEstimator {
  return {
    name: `histogram(${bins})`,
    histogramBins: bins,
    density(w, points) {
      const n = w.length;
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < n; i++) {
        if (w[i] < lo) lo = w[i];
        if (w[i] > hi) hi = w[i];
      }
      if (n === 0 || !(hi > lo)) return points.map(() => 0);
      const width = (hi - lo) / bins;
      const counts = new Float64Array(bins);
      // torch.histc's rule: a value equal to max falls in the last bin.
      const bin = (v: number) => Math.min(bins - 1, Math.floor((v - lo) / width));
      for (let i = 0; i < n; i++) counts[bin(w[i])]++;
      return points.map((p) => (p < lo || p > hi ? 0 : counts[bin(p)] / (width * n)));
    },
  };
}

/** Silverman's rule of thumb: h = 0.9 min(std, IQR / 1.34) n^(-1/5) (std alone when the IQR is 0). */
export function silvermanBandwidth(w: ArrayLike<number>): number {
  const n = w.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += w[i];
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (w[i] - mean) ** 2;
  const std = Math.sqrt(v / Math.max(n - 1, 1));
  const sorted = Float64Array.from(w).sort();
  const q = (f: number) => {
    const x = f * (n - 1);
    const i = Math.floor(x);
    return sorted[i] + (sorted[Math.min(i + 1, n - 1)] - sorted[i]) * (x - i);
  };
  const iqr = q(0.75) - q(0.25);
  const spread = iqr > 0 ? Math.min(std, iqr / 1.34) : std;
  return 0.9 * spread * Math.pow(n, -0.2);
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * Gaussian KDE, p(x) = 1/(n h) sum_i phi((x - w_i) / h). Exact for layers up to `exactUpTo` weights; above that the
 * weights are first linearly binned onto a fine grid (`gridSize` points over [min - 4h, max + 4h]) and the kernel
 * sum runs over grid nodes, O(n + grid) per point with an error far below the estimator's own.
 */
export function kdeDensity(opts: { bandwidth?: number; exactUpTo?: number; gridSize?: number } = {}): DensityEstimator {
  const exactUpTo = opts.exactUpTo ?? 4096;
  const gridSize = opts.gridSize ?? 2048;
  return {
    name: 'kde(gaussian, silverman)',
    density(w, points) {
      const n = w.length;
      if (n === 0) return points.map(() => 0);
      const h = opts.bandwidth ?? silvermanBandwidth(w);
      if (!(h > 0)) return points.map(() => 0);
      if (n <= exactUpTo) {
        return points.map((p) => {
          let s = 0;
          for (let i = 0; i < n; i++) {
            const z = (p - w[i]) / h;
            s += Math.exp(-0.5 * z * z);
          }
          return (s * INV_SQRT_2PI) / (n * h);
        });
      }
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < n; i++) {
        if (w[i] < lo) lo = w[i];
        if (w[i] > hi) hi = w[i];
      }
      lo -= 4 * h;
      hi += 4 * h;
      const step = (hi - lo) / (gridSize - 1);
      const mass = new Float64Array(gridSize);
      for (let i = 0; i < n; i++) {
        const x = (w[i] - lo) / step;
        const j = Math.min(Math.floor(x), gridSize - 2);
        const f = x - j;
        mass[j] += 1 - f;
        mass[j + 1] += f;
      }
      return points.map((p) => {
        let s = 0;
        for (let j = 0; j < gridSize; j++) {
          if (mass[j] === 0) continue;
          const z = (p - (lo + j * step)) / h;
          if (z > 8 || z < -8) continue;
          s += mass[j] * Math.exp(-0.5 * z * z);
        }
        return (s * INV_SQRT_2PI) / (n * h);
      });
    },
  };
}

export type EstimatorName = 'histogram' | 'kde';

export function estimator(name: EstimatorName): DensityEstimator {
  return name === 'kde' ? kdeDensity() : histogramDensity(100);
}
