// Batched matrix product on gpu.js, device-resident: one thread per output element, a dot product over K, the batch
// as the third output dimension (thread.z) so that no thread ever divides to find its batch; B = 1 uses a 2-D output.
// Operands are Flat (kernels.ts): host Float32Arrays or textures from this cache's GPU, read flat (a[i]) whatever
// kernel produced them; the result is an OWNED texture on WebGL (a fresh one per call, which the caller keeps).
//
// Index arithmetic (float32 on WebGL, see kernels.ts): flat indices stay below MAX_EXACT = 2^24 (the *Fits guards),
// and a quotient floor(i / d) is computed as floor((i + 0.5) / d), exact for i < MAX_QUOTIENT = 2^20, so kernels
// divide only small indices (an in-plane position, a row n*C + c, a weight tap) and take big coordinates from
// thread.y / thread.z.

import type { KernelResult } from './loader.js';
import { MAX_EXACT, OWNED, type Flat, type KernelCache } from './kernels.js';

/** Whether gpuMatmul can take these shapes (flat indices exact in float32, output fits a texture). */
export function matmulFits(cache: KernelCache, B: number, M: number, K: number, N: number): boolean {
  return (
    B * M * K < MAX_EXACT && B * K * N < MAX_EXACT && B * M * N < MAX_EXACT && B * M * N * K > 0 &&
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

/** a [B, M, K] @ b [B, K, N] -> [B, M, N], float32, contiguous row-major operands. */
export function gpuMatmul(cache: KernelCache, a: Flat, b: Flat, B: number, M: number, K: number, N: number): KernelResult {
  const batched = B > 1;
  const key = `matmul:${B}x${M}x${K}x${N}`;
  const k = cache.get(key, () => matmulSource(batched), {
    output: batched ? [N, M, B] : [N, M],
    constants: { M, K, N },
    ...OWNED,
  });
  return cache.run(key, k, a, b);
}
