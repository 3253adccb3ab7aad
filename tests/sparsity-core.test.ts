// Sparsity building blocks: the bridge's gradient equals its formula (histogram) and the derivative of the smoothed
// CDF (KDE); allocations hit the target exactly and satisfy their definitions; the exact correction prunes exactly
// round(S* N) weights on random layer sets; masks follow the tie rule.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Generator, randn, tensor, type Tensor } from '../core/index.js';
import { histogramDensity, kdeDensity, silvermanBandwidth } from '../sparsity/density.js';
import { initialLogits, layerSparsity, thresholdOf } from '../sparsity/bridge.js';
import { allocateLayers, erkDensities, lampScores, ALLOCATION_METHODS } from '../sparsity/allocate.js';
import { exactGlobalMasks, maskFromThreshold, masksFromCounts, prunedCount } from '../sparsity/masks.js';
import type { PrunableLayer } from '../sparsity/layers.js';

const layersArb = fc
  .tuple(
    fc.array(
      fc.oneof(
        fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 6 }), fc.constantFrom(1, 3), fc.constantFrom(1, 3)),
        fc.tuple(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 20 })),
      ),
      { minLength: 1, maxLength: 6 },
    ),
    fc.integer({ min: 0, max: 1e6 }),
    fc.boolean(),
  )
  .map(([shapes, seed, quantise]) => {
    const g = new Generator(seed);
    return shapes.map((s, i): PrunableLayer => {
      const w = randn(s, { generator: g, std: 0.1 * (i + 1) });
      // Quantised weights create many exact ties.
      if (quantise) w.copy_(w.mul(20).clamp(-3, 3).sign().mul(w.abs().mul(20).clamp(0, 3).add(0.5).sub(0.5)));
      return { name: `l${i}.weight`, weight: w };
    });
  });

const sparsityArb = fc.oneof(fc.constantFrom(0, 0.5, 0.8, 0.9, 0.95, 1), fc.double({ min: 0, max: 1, noNaN: true }));
const N = (ls: PrunableLayer[]) => ls.reduce((s, l) => s + l.weight.size, 0);

const bridge = suite('bridge function');

bridge('histogram: forward is the exact count; dS/ds = (p(t) + p(-t)) t (1 - t) with the 100-bin histogram', () => {
  const w = randn([40, 30], { generator: new Generator(3), std: 0.05 });
  const s = tensor(-3.2, [], { requiresGrad: true, dtype: 'float64' });
  const S = layerSparsity(w, thresholdOf(s, w, 'absolute'), histogramDensity(100));
  const t = 1 / (1 + Math.exp(3.2));
  const vals = Array.from(w.toArray());
  assert.is(S.item(), vals.filter((v) => Math.abs(v) <= t).length / vals.length);
  S.backward();
  // The formula, computed independently.
  const lo = Math.min(...vals), hi = Math.max(...vals), width = (hi - lo) / 100;
  const p = (x: number) => {
    if (x < lo || x > hi) return 0;
    const b = Math.min(99, Math.floor((x - lo) / width));
    return vals.filter((v) => Math.min(99, Math.floor((v - lo) / width)) === b).length / (width * vals.length);
  };
  const expected = (p(t) + p(-t)) * t * (1 - t);
  assert.ok(expected > 0);
  assert.ok(Math.abs(s.grad!.item() - expected) < 1e-9 * expected, `${s.grad!.item()} vs ${expected}`);
});

/** erf, Abramowitz-Stegun 7.1.26 (absolute error below 1.5e-7). */
function erf(x: number): number {
  const sgn = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return sgn * y;
}

bridge('kde: p(t) + p(-t) is the derivative of the kernel-smoothed sparsity (finite differences)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 20, max: 3000 }), fc.double({ min: 0.2, max: 2, noNaN: true }), (seed, n, tScale) => {
      const w = Array.from(randn([n], { generator: new Generator(seed), std: 0.1, dtype: 'float64' }).toArray());
      const h = silvermanBandwidth(w);
      const smoothed = (t: number) =>
        w.reduce((s, wi) => s + 0.5 * (erf((t - wi) / (h * Math.SQRT2)) - erf((-t - wi) / (h * Math.SQRT2))), 0) / n;
      const t = 0.1 * tScale;
      const eps = 1e-3;
      const numeric = (smoothed(t + eps) - smoothed(t - eps)) / (2 * eps);
      const [pp, pn] = kdeDensity().density(w, [t, -t]);
      assert.ok(Math.abs(pp + pn - numeric) < 2e-3 + 1e-3 * numeric, `${pp + pn} vs ${numeric}`);
    }),
    { numRuns: 30 },
  );
});

bridge('kde: the binned path for large layers agrees with the exact sum', () => {
  const w = Array.from(randn([50000], { generator: new Generator(9), std: 0.02 }).toArray());
  for (const t of [0.001, 0.01, 0.03]) {
    const [a, b] = kdeDensity({ exactUpTo: 1e9 }).density(w, [t, -t]);
    const [c, d] = kdeDensity({ exactUpTo: 100 }).density(w, [t, -t]);
    assert.ok(Math.abs(a + b - (c + d)) < 1e-3 * (a + b), `t=${t}: exact ${a + b}, binned ${c + d}`);
  }
});

bridge('initial logits prune floor(S n) weights per layer', () => {
  const layers: PrunableLayer[] = [0, 1, 2].map((i) => ({ name: `l${i}`, weight: randn([50 + i * 30], { generator: new Generator(i), std: 0.1, dtype: 'float64' }) }));
  const S = [0.3, 0.7, 0.0];
  const logits = initialLogits(layers, S, 'absolute');
  layers.forEach((l, i) => {
    const t = 1 / (1 + Math.exp(-logits[i]));
    const pruned = prunedCount(maskFromThreshold(Array.from(l.weight.toArray(), Math.abs), t));
    assert.is(pruned, Math.max(Math.floor(S[i] * l.weight.size), 1));
  });
});

bridge.run();

const alloc = suite('allocations');

alloc('every method prunes exactly round(S* N) weights and stays within layer sizes', () => {
  fc.assert(
    fc.property(layersArb, sparsityArb, fc.constantFrom(...ALLOCATION_METHODS), (layers, S, method) => {
      // `given` takes another allocation's sparsities (ERK's here)
      const allocation = method === 'given' ? allocateLayers(layers, { method: 'erk', sparsity: S }).sparsity : undefined;
      const a = allocateLayers(layers, { method, sparsity: S, allocation });
      assert.is(a.counts.reduce((x, y) => x + y, 0), Math.round(S * N(layers)));
      a.counts.forEach((c, i) => assert.ok(c >= 0 && c <= layers[i].weight.size));
      const masks = masksFromCounts(layers, a.counts);
      assert.is(masks.reduce((s, m) => s + prunedCount(m), 0), Math.round(S * N(layers)));
    }),
    { numRuns: 200 },
  );
});

alloc('given: the per-layer sparsities of another allocation give back exactly its counts', () => {
  fc.assert(
    fc.property(layersArb, sparsityArb, fc.constantFrom('uniform', 'global', 'global-l2', 'erk', 'lamp') as fc.Arbitrary<'uniform' | 'global' | 'global-l2' | 'erk' | 'lamp'>, (layers, S, source) => {
      const src = allocateLayers(layers, { method: source, sparsity: S });
      assert.equal(allocateLayers(layers, { method: 'given', sparsity: S, allocation: src.sparsity }).counts, src.counts);
    }),
    { numRuns: 100 },
  );
});

alloc('given: a missing, unknown or out-of-range layer and a total off the target are errors naming them', () => {
  const layers: PrunableLayer[] = [0, 1].map((i) => ({ name: `l${i}.weight`, weight: randn([100], { generator: new Generator(i) }) }));
  const bad = (allocation: Record<string, number> | undefined, S: number, pattern: RegExp) =>
    assert.throws(() => allocateLayers(layers, { method: 'given', sparsity: S, allocation }), (e: Error) => pattern.test(e.message), String(pattern));
  bad(undefined, 0.5, /needs an allocation/);
  bad({ 'l0.weight': 0.5 }, 0.5, /no sparsity for l1\.weight/);
  bad({ 'l0.weight': 0.5, 'l1.weight': 0.5, 'fc.weight': 0.1 }, 0.5, /names fc\.weight, which is not a prunable layer/);
  bad({ 'l0.weight': 1.5, 'l1.weight': 0 }, 0.75, /l0\.weight must be in \[0, 1\], got 1\.5/);
  bad({ 'l0.weight': 0.9, 'l1.weight': 0.9 }, 0.5, /prunes 180 of 200 weights \(90\.00%\), but the target 0\.5 needs 100/);
  // a per-layer split that totals the target is kept as given
  assert.equal(allocateLayers(layers, { method: 'given', sparsity: 0.5, allocation: { 'l0.weight': 0.2, 'l1.weight': 0.8 } }).counts, [20, 80]);
});

alloc('uniform gives every layer S* up to rounding', () => {
  fc.assert(
    fc.property(layersArb, sparsityArb, (layers, S) => {
      const a = allocateLayers(layers, { method: 'uniform', sparsity: S });
      a.counts.forEach((c, i) => assert.ok(Math.abs(c - S * layers[i].weight.size) < 1 + 1e-9));
    }),
    { numRuns: 100 },
  );
});

alloc('global magnitude: every pruned |w| <= every kept |w| across layers (normalised by the layer norm for l1/l2)', () => {
  fc.assert(
    fc.property(layersArb, sparsityArb, fc.constantFrom('global', 'global-l1', 'global-l2') as fc.Arbitrary<'global' | 'global-l1' | 'global-l2'>, (layers, S, method) => {
      const a = allocateLayers(layers, { method, sparsity: S });
      const masks = masksFromCounts(layers, a.counts);
      let maxPruned = -Infinity;
      let minKept = Infinity;
      layers.forEach((l, i) => {
        const w = Array.from(l.weight.toArray(), Math.abs);
        const norm = method === 'global' ? 1 : method === 'global-l1' ? w.reduce((s, v) => s + v, 0) : Math.hypot(...w);
        w.forEach((v, j) => {
          const score = norm > 0 ? v / norm : v;
          if (masks[i][j] === 0) maxPruned = Math.max(maxPruned, score);
          else minKept = Math.min(minKept, score);
        });
      });
      assert.ok(maxPruned <= minKept * (1 + 1e-12), `pruned ${maxPruned} > kept ${minKept}`);
    }),
    { numRuns: 100 },
  );
});

alloc('ERK: densities proportional to (sum dims / prod dims)^power below 1, weighted mean is 1 - S*', () => {
  fc.assert(
    fc.property(layersArb, fc.double({ min: 0.05, max: 0.99, noNaN: true }), fc.constantFrom(0.5, 1), (layers, S, power) => {
      const d = erkDensities(layers, S, power);
      const keep = d.reduce((s, di, i) => s + di * layers[i].weight.size, 0);
      assert.ok(Math.abs(keep - (1 - S) * N(layers)) < 1e-6 * N(layers));
      const raw = layers.map((l) => Math.pow(l.weight.shape.reduce((a, b) => a + b, 0) / l.weight.size, power));
      const free = d.map((di, i) => [di, raw[i]] as const).filter(([di]) => di < 1);
      free.forEach(([di, r]) => assert.ok(Math.abs(di / r - free[0][0] / free[0][1]) < 1e-9 * (di / r)));
      d.forEach((di, i) => { if (di === 1) free.forEach(([dj, r]) => assert.ok(raw[i] * (dj / r) >= 1 - 1e-9)); });
    }),
    { numRuns: 100 },
  );
});

alloc('LAMP scores: w_u^2 / sum_{v >= u} w_v^2 in ascending |w| order, the largest weight scores 1', () => {
  const s = lampScores(new Float64Array([3, 1, 2]));
  // ascending: 1, 2, 3 -> 1/14, 4/13, 9/9
  assert.ok(Math.abs(s[1] - 1 / 14) < 1e-15 && Math.abs(s[2] - 4 / 13) < 1e-15 && s[0] === 1);
});

alloc.run();

const exact = suite('exact global sparsity');

exact('lands on round(S* N) for random layer sets and thresholds, ties included', () => {
  fc.assert(
    fc.property(layersArb, sparsityArb, fc.array(fc.double({ min: 1e-4, max: 1, noNaN: true }), { minLength: 6, maxLength: 6 }), (layers, S, ts) => {
      const r = exactGlobalMasks(layers, layers.map((_, i) => ts[i]), S);
      assert.is(r.masks.reduce((s, m) => s + prunedCount(m), 0), Math.round(S * N(layers)));
      // One common offset: every pruned weight has |w| / t_l <= every kept weight's.
      let maxPruned = -Infinity;
      let minKept = Infinity;
      layers.forEach((l, i) => Array.from(l.weight.toArray()).forEach((v, j) => {
        const r2 = Math.abs(v) / ts[i];
        if (r.masks[i][j] === 0) maxPruned = Math.max(maxPruned, r2);
        else minKept = Math.min(minKept, r2);
      }));
      assert.ok(maxPruned <= minKept);
    }),
    { numRuns: 200 },
  );
});

exact('ties at the boundary go by global magnitude', () => {
  const a: Tensor = tensor([0.2, 0.4, 0.9]);
  const b: Tensor = tensor([0.1, 0.2, 0.8]);
  // thresholds 0.2 and 0.1 put 0.4/0.2 and 0.2/0.1 at the same ratio 2; pruning 3 of 6 settles the tie by |w|.
  const r = exactGlobalMasks([{ name: 'a', weight: a }, { name: 'b', weight: b }], [0.2, 0.1], 0.5);
  assert.equal(Array.from(r.masks[0]), [0, 1, 1]);
  assert.equal(Array.from(r.masks[1]), [0, 0, 1]);
  assert.is(r.tiesSettled, 1);
});

exact.run();
