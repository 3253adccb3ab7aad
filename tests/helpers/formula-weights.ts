// Formula weights for golden fixtures: every state_dict entry's values are a function of its key and shape only
// (FNV-1a of the key, then a murmur3 finaliser per element), bit for bit as scripts/fixture_weights.py computes them
// in PyTorch's fixture scripts, so a fixture needs to store no weights.

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const c of new TextEncoder().encode(s)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return h;
}

/** n values in [-1, 1): 2 * fmix32(fnv1a(key) ^ (i * 0x9E3779B9)) / 2^32 - 1, exact in float64. */
export function hashUniform(key: string, n: number): Float64Array {
  const seed = fnv1a(key);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let h = (seed ^ Math.imul(i, 0x9e3779b9)) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
    out[i] = 2 * ((h >>> 0) / 4294967296) - 1;
  }
  return out;
}

/** float32 values of one entry: BN statistics and affine near their defaults, conv / linear weights He uniform. */
export function formulaValue(key: string, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = hashUniform(key, n);
  const out = new Float32Array(n);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < n; i++) {
    if (key.endsWith('num_batches_tracked')) out[i] = 0;
    else if (key.endsWith('running_var')) out[i] = 1 + u[i] * 0.5;
    else if (key.endsWith('running_mean') || key.endsWith('bias')) out[i] = u[i] * 0.1;
    else if (shape.length === 1) out[i] = 1 + u[i] * 0.25;
    else out[i] = u[i] * Math.sqrt(6 / fanIn);
  }
  return out;
}
