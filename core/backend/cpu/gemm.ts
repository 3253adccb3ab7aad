// Matrix products of the cpu backend and the GEMM planning shared with convolution. Large float32 products copy
// their operands into the shared wasm arena, pack A once into k-block-major 4-row panels (a PackA job), and run a Gemm
// job: each task packs a KC x NC block of B into its own scratch (or reads B packed once by a Pack*B job when rows
// are split too) and drives the 4x8 SIMD micro-kernel over A's panels. Tiny products and float64 stay in JavaScript
// (an i-k-j loop over the strided views).

import type { Storage } from '../../dtype.js';
import type { View } from '../types.js';
import { JobKind, P } from './jobs.js';
import { gather } from './strided.js';
import { jobParams, runJob, threadCount } from './threads.js';
import { Arena, heap, takeRows, wasm } from './wasm.js';

/** Reduction block (k) and column block (n) of the packed GEMM: a KC x NC block of B is 128 KiB, inside L2. */
export const KC = 256;
export const NC = 128;
/** Jobs below this many multiply-adds stay on the main thread (a pool round trip costs tens of microseconds). */
export const PARALLEL_MACS = 1 << 21;
/** Products below this many multiply-adds skip wasm altogether. */
const WASM_MACS = 1 << 12;

export const ceil8 = (n: number): number => (n + 7) & ~7;

/**
 * Cut a GEMM's columns into NC chunks and, when there are too few tasks to feed every thread (batch 1, small
 * images), its 4-row panels into chunks as well.
 */
export function splitTasks(outer: number, N: number, mp: number): { nChunks: number; mChunks: number; mpc: number } {
  const nChunks = Math.ceil(ceil8(N) / NC);
  const want = 4 * threadCount();
  let mChunks = 1;
  if (threadCount() > 1 && outer * nChunks < want) mChunks = Math.min(mp, Math.ceil(want / (outer * nChunks)));
  const mpc = Math.ceil(mp / mChunks);
  return { nChunks, mChunks: Math.ceil(mp / mpc), mpc };
}

/**
 * Pack rows [0, M) x cols [0, K) of a strided matrix (element strides rs, cs; byte address src) into the k-block-major
 * layout the Gemm tasks read: block k0 (KC wide, the last one shorter) starts at dst + k0 * mp * 16 and holds the
 * mp panels one after another, each kc x 4. kOff shifts the block grid (the weight gradient packs image by image).
 */
export function packABlocks(src: number, rs: number, cs: number, M: number, K: number, dst: number, kOff = 0): void {
  const { k } = wasm();
  const mp = (M + 3) >> 2;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = Math.min(KC, K - k0);
    k.packA(src + k0 * cs * 4, rs, cs, M, kc, dst + (kOff + k0) * mp * 16, kc, 0);
  }
}

/**
 * packABlocks for `groups` matrices (sources srcGrp bytes apart, destinations dstGrp apart) as a PackA job, one task
 * per (group, k-block), so large weights are packed by every thread. Call after gemmSlots (it reads P.KC).
 */
export function packAJob(p: Int32Array, src: number, srcGrp: number, rs: number, cs: number, M: number, K: number,
  dst: number, dstGrp: number, groups: number, parallel: boolean): void {
  p[P.PaSrc] = src; p[P.PaSrcGrp] = srcGrp; p[P.PaRs] = rs; p[P.PaCs] = cs; p[P.PaM] = M; p[P.PaK] = K;
  p[P.PaDst] = dst; p[P.PaDstGrp] = dstGrp; p[P.PaBlocks] = Math.ceil(K / KC);
  runJob(JobKind.PackA, groups * p[P.PaBlocks], parallel && M * K >= PARALLEL_MACS / 8);
}

/** Fill the GEMM slots shared by every Gemm job. */
export function gemmSlots(p: Int32Array, arena: Arena, mp: number, K: number, N: number, outer: number) {
  const s = splitTasks(outer, N, mp);
  p[P.Mp] = mp;
  p[P.K] = K;
  p[P.N] = N;
  p[P.Ldc] = ceil8(N);
  p[P.NChunks] = s.nChunks;
  p[P.MChunks] = s.mChunks;
  p[P.Mpc] = s.mpc;
  p[P.NC] = NC;
  p[P.KC] = KC;
  p[P.ScratchPer] = KC * NC * 4;
  p[P.Scratch] = arena.alloc(KC * NC * 4 * threadCount());
  // With several row chunks, B is packed once by a Pack*B job instead of once per row chunk.
  p[P.Prepacked] = s.mChunks > 1 ? arena.floats(outer * s.nChunks * K * NC) : 0;
  return outer * s.nChunks * s.mChunks;
}

/** Run a Gemm or WeightGrad job, preceded by its B-packing job when gemmSlots chose to prepack. */
export function runGemmJob(kind: JobKind.Gemm | JobKind.WeightGrad, p: Int32Array, nTasks: number, parallel: boolean): void {
  if (p[P.Prepacked]) {
    const packTasks = kind === JobKind.Gemm ? p[P.NImg] * p[P.NGrp] * p[P.NChunks] : p[P.NGrp] * p[P.NChunks] * p[P.NImg];
    runJob(kind === JobKind.Gemm ? JobKind.PackGemmB : JobKind.PackWeightGradB, packTasks, parallel);
  }
  runJob(kind, nTasks, parallel);
}

/** a [B, M, K] times b [B, K, N], either may broadcast its batch dim (stride 0). */
export function matmul(a: View, b: View): Storage {
  const [B, M, K] = a.shape;
  const N = b.shape[2];
  const macs = B * M * N * K;
  if (a.data instanceof Float64Array || macs < WASM_MACS) return matmulJs(a, b);
  if (macs === 0) return new Float32Array(B * M * N);
  const aBatch = B > 1 && a.strides[0] === 0 ? 1 : B;
  const bBatch = B > 1 && b.strides[0] === 0 ? 1 : B;
  const mp = (M + 3) >> 2;
  const Npad = ceil8(N);
  const arena = new Arena(`matmul a[${a.shape.join(', ')}] b[${b.shape.join(', ')}]`);
  const aSrc = arena.floats(aBatch * M * K);
  const bSrc = arena.floats(bBatch * K * N);
  const ap = arena.floats(aBatch * mp * 4 * K);
  const c = arena.floats(B * mp * 4 * Npad);
  const p = jobParams();
  const nTasks = gemmSlots(p, arena, mp, K, N, B);
  arena.commit();
  const h = heap();
  const first = (v: View, n: number): View => (n === 1 ? { ...v, shape: v.shape.slice(1), strides: v.strides.slice(1) } : v);
  gather(first(a, aBatch), h, aSrc / 4);
  gather(first(b, bBatch), h, bSrc / 4);
  packAJob(p, aSrc, M * K * 4, K, 1, M, K, ap, mp * K * 16, aBatch, macs >= PARALLEL_MACS);
  p[P.ABase] = ap;
  p[P.AImg] = aBatch > 1 ? mp * K * 16 : 0;
  p[P.BKind] = 0;
  p[P.BBase] = bSrc;
  p[P.BImg] = bBatch > 1 ? K * N * 4 : 0;
  p[P.Rs] = N;
  p[P.Cs] = 1;
  p[P.CBase] = c;
  p[P.CImg] = mp * 4 * Npad * 4;
  p[P.NImg] = B;
  p[P.NGrp] = 1;
  runGemmJob(JobKind.Gemm, p, nTasks, macs >= PARALLEL_MACS);
  return takeRows(c, B, mp * 4 * Npad, M, Npad, N);
}

/** i-k-j loop over strided views, in the input's precision. */
function matmulJs(a: View, b: View): Storage {
  const [B, M, K] = a.shape;
  const N = b.shape[2];
  const out = a.data instanceof Float64Array ? new Float64Array(B * M * N) : new Float32Array(B * M * N);
  const [sab, sam, sak] = a.strides;
  const [sbb, sbk, sbn] = b.strides;
  const ad = a.data, bd = b.data;
  for (let bi = 0; bi < B; bi++) {
    for (let i = 0; i < M; i++) {
      const o = (bi * M + i) * N;
      for (let kk = 0; kk < K; kk++) {
        const av = ad[a.offset + bi * sab + i * sam + kk * sak];
        if (av === 0) continue;
        let pb = b.offset + bi * sbb + kk * sbk;
        for (let j = 0; j < N; j++, pb += sbn) out[o + j] += av * bd[pb];
      }
    }
  }
  return out;
}
