// Batched matrix product on gpu.js, device-resident: one thread per output element, a dot product over K, the batch
// as the third output dimension (thread.z) so that no thread ever divides to find its batch; B = 1 uses a 2-D output.
// Operands are Flat (kernels.ts): host Float32Arrays or textures from this cache's GPU, read flat (a[i]) whatever
// kernel produced them; the result is an OWNED texture on WebGL (a fresh one per call, which the caller keeps).
//
// Also here, shared by conv.ts, norm.ts and pool.ts (they would belong in kernels.ts, which another file owner keeps):
// - operandKey(): the part of a kernel key that names how each operand is stored. gpu.js compiles a kernel for the
//   argument types of its first call and bakes a texture argument's size into the shader; given a texture of another
//   class later (an output of another rank: GLTextureFloat, GLTextureFloat2D, GLTextureFloat3D all have the type
//   'ArrayTexture(1)'), it asks to switch kernels, finds its own signature again and gives up after 4 attempts
//   ("did not settle on a kernel"); given one of another size it would read the wrong texels silently. So every
//   resident kernel is keyed by its operands' storage (host, or texture class and size) and each compiled kernel
//   only ever sees one.
// - operand(): an intermediate result as the next kernel's operand (the texture itself on WebGL, else flat values:
//   webasm and cpu return nested rows for 2-D and 3-D outputs, and have no device memory anyway).
// - planeGrid() / planeThread(): the output layout of [rows, h, w] tensors (conv, batch norm and pooling outputs).
//
// Index arithmetic (float32 on WebGL, see kernels.ts): flat indices stay below MAX_EXACT = 2^24 (the *Fits guards),
// and a quotient floor(i / d) is computed as floor((i + 0.5) / d), exact for i < MAX_QUOTIENT = 2^20, so kernels
// divide only small indices (an in-plane position, a row n*C + c, a weight tap) and take big coordinates from
// thread.y / thread.z.

import type { GpuTexture, KernelResult } from './loader.js';
import { MAX_EXACT, MAX_QUOTIENT, OWNED, isTexture, readFlat, type Flat, type KernelCache } from './kernels.js';

/** Key fragment naming each operand's storage: 'h' (host array), '-' (absent), or the texture's class and size. */
export function operandKey(...xs: readonly (Flat | null)[]): string {
  return xs.map((x) => (x === null ? '-' : x instanceof Float32Array ? 'h' : textureKey(x))).join(',');
}

function textureKey(t: GpuTexture): string {
  const size = (t as { size?: ArrayLike<number> }).size;
  return `${t.constructor.name}${size ? `${size[0]}x${size[1]}` : ''}`;
}

/** A kernel result as an operand of the next kernel: the texture itself, else its n values as one flat array. */
export function operand(r: KernelResult, n: number): Flat {
  return isTexture(r) ? r : readFlat(r, n);
}

/**
 * Output dims for a row-major [rows, h, w] tensor: 'flat' 2-D [h*w, rows] (a thread splits its in-plane index q into
 * (y, x) with one small division; gpu.js also indexes 2-D outputs with less work) when the plane fits one texture
 * side and the exact-quotient range, else 'split' 3-D [w, h, rows] (packed near-square by gpu.js).
 */
export function planeGrid(cache: KernelCache, rows: number, h: number, w: number): number[] {
  return h * w < MAX_QUOTIENT && cache.fitsTexture([h * w, rows]) ? [h * w, rows] : [w, h, rows];
}

/** Kernel prelude for a planeGrid output: declares the thread's row and its (y, x) in a plane of width constant w. */
export function planeThread(grid: readonly number[], row: string, y: string, x: string, w: string): string {
  return grid.length === 2
    ? `const q = this.thread.x;
  const ${row} = this.thread.y;
  const ${y} = Math.floor((q + 0.5) / this.constants.${w});
  const ${x} = q - ${y} * this.constants.${w};`
    : `const ${x} = this.thread.x;
  const ${y} = this.thread.y;
  const ${row} = this.thread.z;`;
}

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
  const key = `matmul:${B}x${M}x${K}x${N}:${operandKey(a, b)}`;
  const k = cache.get(key, () => matmulSource(batched), {
    output: batched ? [N, M, B] : [N, M],
    constants: { M, K, N },
    ...OWNED,
  });
  return cache.run(key, k, a, b);
}
