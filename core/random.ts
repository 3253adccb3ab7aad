// Seeded randomness. One global generator (manualSeed), plus Generator objects for independent streams (data order,
// dropout). Built on pure-rand's xoroshiro128+, never Math.random, so every run is reproducible from its seed.

import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

export class Generator {
  private rng: RandomGenerator;
  private spare: number | null = null;

  constructor(seed = 0) {
    this.rng = xoroshiro128plus(seed >>> 0);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return uniformFloat64(this.rng);
  }

  /** Standard normal (Box-Muller, the second value is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** A seeded random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

let global = new Generator(0);

/** Reseed the global generator used by rand, randn, dropout and initialisers. */
export function manualSeed(seed: number): void {
  global = new Generator(seed);
}

export function globalGenerator(): Generator {
  return global;
}
