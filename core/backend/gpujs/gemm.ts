// Batched matrix product on gpu.js: one thread per output element, a dot product over K. The batch is the third
// output dimension (thread.z) so no thread ever divides to find its batch; B = 1 uses a 2-D output. Inputs are made
// contiguous first (transposed views from matmul's backward are copied: O(n^2) against the O(n^3) product).

import type { View } from '../types.js';
import { MAX_EXACT, flatF32, readFlat, type KernelCache } from './kernels.js';

/** Whether gpuMatmul can take these shapes (flat indices exact in float32, output fits a texture). */
export function matmulFits(cache: KernelCache, a: View, b: View): boolean {
  const [B, M, K] = a.shape;
  const N = b.shape[2];
  return (
    B * M * K < MAX_EXACT && B * K * N < MAX_EXACT && B * M * N < MAX_EXACT && M * N * K > 0 &&
    cache.fitsTexture(B > 1 ? [N, M, B] : [N, M])
  );
}

const matmulSource = (batched: boolean) => `function(a, b) {
  const i = this.thread.y;
  const j = this.thread.x;
  const bi = ${batched ? 'this.thread.z' : '0'};
  const aBase = (bi * this.constants.M + i) * this.constants.K;
  const bBase = bi * this.constants.K * this.constants.N + j;
  let s = 0.0;
  for (let k = 0; k < this.constants.K; k++) {
    s += a[aBase + k] * b[bBase + k * this.constants.N];
  }
  return s;
}`;

/** a [B, M, K] @ b [B, K, N] -> [B, M, N], float32. */
export function gpuMatmul(cache: KernelCache, a: View, b: View): Float32Array {
  const [B, M, K] = a.shape;
  const N = b.shape[2];
  const batched = B > 1;
  const key = `matmul:${B}x${M}x${K}x${N}`;
  const k = cache.get(key, () => matmulSource(batched), {
    output: batched ? [N, M, B] : [N, M],
    constants: { M, K, N },
  });
  return readFlat(cache.run(key, k, flatF32(a), flatF32(b)), B * M * N);
}
