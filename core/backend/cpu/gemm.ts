// Matrix products of the cpu backend and the GEMM planning shared with convolution. Large float32 products copy
// their operands into the shared wasm arena, pack A once into k-block-major 4-row panels (a PackA job), and run a Gemm
// job: each task packs a KC x NC block of B into its own scratch (or reads B packed once by a Pack*B job when rows
// are split too) and drives the 4x8 SIMD micro-kernel over A's panels. Tiny products and float64 stay in JavaScript
// (an i-k-j loop over the strided views).

import type { Storage } from '../../dtype.js';
import type { HostView } from '../types.js';
import { defineJob, type JobParams } from './jobs.js';
import type { Kernels } from './kernels/exports.js';
import { gather } from './strided.js';
import { runJob, threadCount, type Scratch } from './threads.js';
import { Arena, heap, takeRows, wasm } from './wasm.js';

/** Reduction block (k) and column block (n) of the packed GEMM: a KC x NC block of B is 128 KiB, inside L2. */
export const KC = 256;
export const NC = 128;
/** Jobs below this many multiply-adds stay on the main thread (a pool round trip costs tens of microseconds). */
export const PARALLEL_MACS = 1 << 21;
/** Products below this many multiply-adds skip wasm altogether. */
const WASM_MACS = 1 << 12;

export const ceil8 = (n: number): number => (n + 7) & ~7;

/** Geometry of an im2col B (BKind 1): input plane H x W, kernel, stride, padding, dilation, output width. */
export const geometryParams = ['H', 'W', 'KH', 'KW', 'Sh', 'Sw', 'Ph', 'Pw', 'Dh', 'Dw', 'OW'] as const;
export type Geometry = JobParams<(typeof geometryParams)[number]>;
/** The geometry of a plain-matrix B (BKind 0), which reads none of it. */
export const NO_GEOMETRY: Geometry = { H: 0, W: 0, KH: 0, KW: 0, Sh: 0, Sw: 0, Ph: 0, Pw: 0, Dh: 0, Dw: 0, OW: 0 };

/** The split gemmPlan chooses (Prepacked: address of B packed by a Pack*B job beforehand, 0: each task packs). */
const planParams = ['Mp', 'K', 'N', 'Ldc', 'NChunks', 'MChunks', 'Mpc', 'Prepacked'] as const;
type PlanParams = JobParams<(typeof planParams)[number]>;

/**
 * Parameters of the Gemm and WeightGrad jobs and their B-packing jobs: packed A (per image, per group), B (a plain
 * strided matrix, BKind 0, element strides Rs, Cs; or im2col of an image, BKind 1), C (row stride Ldc), images and
 * groups, and the plan.
 */
const gemmParams = [
  'ABase', 'AImg', 'AGrp', 'BKind', 'BBase', 'BImg', 'BGrp', 'Rs', 'Cs', 'CBase', 'CImg', 'CGrp', 'NImg', 'NGrp',
  ...geometryParams, ...planParams,
] as const;
export type GemmParams = JobParams<(typeof gemmParams)[number]>;

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

/** packABlocks per (group, k-block): strided source per group, rows M, columns K, packed destination per group. */
const packAJob = defineJob('gemm.packA', ['Src', 'SrcGrp', 'Rs', 'Cs', 'M', 'K', 'Dst', 'DstGrp', 'Blocks'], (k, p, t) => {
  const g = (t / p.Blocks) | 0, k0 = (t % p.Blocks) * KC;
  const kc = Math.min(KC, p.K - k0), mp = (p.M + 3) >> 2;
  k.packA(p.Src + g * p.SrcGrp + k0 * p.Cs * 4, p.Rs, p.Cs, p.M, kc, p.Dst + g * p.DstGrp + k0 * mp * 16, kc, 0);
});

/**
 * packABlocks for `groups` matrices (sources srcGrp bytes apart, destinations dstGrp apart) as a job, one task per
 * (group, k-block), so large weights are packed by every thread.
 */
export function packAParallel(src: number, srcGrp: number, rs: number, cs: number, M: number, K: number,
  dst: number, dstGrp: number, groups: number, parallel: boolean): void {
  const blocks = Math.ceil(K / KC);
  runJob(packAJob, { Src: src, SrcGrp: srcGrp, Rs: rs, Cs: cs, M, K, Dst: dst, DstGrp: dstGrp, Blocks: blocks },
    groups * blocks, parallel && M * K >= PARALLEL_MACS / 8);
}

/**
 * Plan a GEMM of mp 4-row panels, reduction K, N columns, `outer` (image, group) products: its task split, per-thread
 * scratch for one KC x NC block of B, and, with several row chunks, room for B packed once by a Pack*B job instead of
 * once per row chunk.
 */
export function gemmPlan(arena: Arena, mp: number, K: number, N: number, outer: number): { plan: PlanParams; scratch: Scratch; nTasks: number } {
  const s = splitTasks(outer, N, mp);
  const scratch = { scratch: arena.alloc(KC * NC * 4 * threadCount()), scratchPer: KC * NC * 4 };
  const Prepacked = s.mChunks > 1 ? arena.floats(outer * s.nChunks * K * NC) : 0;
  return {
    plan: { Mp: mp, K, N, Ldc: ceil8(N), NChunks: s.nChunks, MChunks: s.mChunks, Mpc: s.mpc, Prepacked },
    scratch,
    nTasks: outer * s.nChunks * s.mChunks,
  };
}

/** Pack block [k0, k0 + kc) x [n0, n0 + nc) of a Gemm job's B (plain strided matrix, or im2col of an image). */
function packGemmB(k: Kernels, p: GemmParams, b: number, k0: number, kc: number, n0: number, nc: number, dst: number) {
  if (p.BKind === 0) k.packB(b, p.Rs, p.Cs, k0, kc, n0, nc, p.N, dst);
  else k.packIm2col(b, p.H, p.W, p.KH, p.KW, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.OW, p.N, k0, kc, n0, nc, dst);
}

/** Pack pixels [p0, p0 + pc) x taps [n0, n0 + nc) of a WeightGrad job's B (x^T, or im2col(x)^T). */
function packWeightGradB(k: Kernels, p: GemmParams, x: number, p0: number, pc: number, n0: number, nc: number, dst: number) {
  if (p.BKind === 0) k.packB(x, p.Rs, p.Cs, p0, pc, n0, nc, p.N, dst);
  else k.packIm2colT(x, p.H, p.W, p.KH, p.KW, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.OW, p.N, p0, pc, n0, nc, dst);
}

/** C = A * B per (image, group, row chunk, column chunk); B packed from a plain matrix or by im2col. */
const gemmJob = defineJob('gemm', gemmParams, (k, p, t, scratch) => {
  const nChunks = p.NChunks, mChunks = p.MChunks;
  const chunk = t % nChunks;
  let rest = (t / nChunks) | 0;
  const mc = rest % mChunks;
  rest = (rest / mChunks) | 0;
  const g = rest % p.NGrp;
  const img = (rest / p.NGrp) | 0;
  const N = p.N, K = p.K, mpAll = p.Mp;
  const n0 = chunk * NC;
  const nc = Math.min(NC, ceil8(N) - n0);
  const m0 = mc * p.Mpc;
  const mp = Math.min(p.Mpc, p.Mp - m0);
  // packed A is k-block major: block k0 holds all panels, each kc x 4, so one block is contiguous
  const a = p.ABase + img * p.AImg + g * p.AGrp;
  const b = p.BBase + img * p.BImg + g * p.BGrp;
  const c = p.CBase + img * p.CImg + g * p.CGrp + (m0 * 4 * p.Ldc + n0) * 4;
  const pre = p.Prepacked && p.Prepacked + ((img * p.NGrp + g) * nChunks + chunk) * K * NC * 4;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = Math.min(KC, K - k0);
    let bp = scratch;
    if (pre) bp = pre + k0 * nc * 4;
    else packGemmB(k, p, b, k0, kc, n0, nc, scratch);
    k.gemm(a + (k0 * mpAll + m0 * kc) * 16, kc * 16, bp, kc, mp, nc >> 3, c, p.Ldc, k0 > 0 ? 1 : 0);
  }
});

/** Pack B of a Gemm job once for all its row chunks, per (image, group, column chunk). */
const packGemmBJob = defineJob('gemm.packB', gemmParams, (k, p, t) => {
  const nChunks = p.NChunks, chunk = t % nChunks, rest = (t / nChunks) | 0;
  const g = rest % p.NGrp, img = (rest / p.NGrp) | 0;
  const N = p.N, K = p.K;
  const n0 = chunk * NC, nc = Math.min(NC, ceil8(N) - n0);
  const b = p.BBase + img * p.BImg + g * p.BGrp;
  const pre = p.Prepacked + ((img * p.NGrp + g) * nChunks + chunk) * K * NC * 4;
  for (let k0 = 0; k0 < K; k0 += KC) packGemmB(k, p, b, k0, Math.min(KC, K - k0), n0, nc, pre + k0 * nc * 4);
});

/**
 * Weight gradient: C[g] = sum over images of gy * im2col(x)^T, per (group, row chunk, column chunk). Rows: output
 * channels of group g (A = packed gy over all images); columns (N): taps (c, kh, kw); reduction (K): pixels.
 */
const weightGradJob = defineJob('gemm.weightGrad', gemmParams, (k, p, t, scratch) => {
  const nChunks = p.NChunks, mChunks = p.MChunks;
  const chunk = t % nChunks;
  const rest = (t / nChunks) | 0;
  const mc = rest % mChunks;
  const g = (rest / mChunks) | 0;
  const Kc = p.N, Pn = p.K, mpAll = p.Mp;
  const n0 = chunk * NC;
  const nc = Math.min(NC, ceil8(Kc) - n0);
  const m0 = mc * p.Mpc;
  const mp = Math.min(p.Mpc, p.Mp - m0);
  const a = p.ABase + g * p.AGrp;
  const c = p.CBase + g * p.CGrp + (m0 * 4 * p.Ldc + n0) * 4;
  const pre = p.Prepacked && p.Prepacked + (g * nChunks + chunk) * p.NImg * Pn * NC * 4;
  let first = true;
  for (let img = 0; img < p.NImg; img++) {
    const x = p.BBase + img * p.BImg + g * p.BGrp;
    for (let p0 = 0; p0 < Pn; p0 += KC) {
      const pc = Math.min(KC, Pn - p0);
      let bp = scratch;
      if (pre) bp = pre + (img * Pn + p0) * nc * 4;
      else packWeightGradB(k, p, x, p0, pc, n0, nc, scratch);
      k.gemm(a + ((img * Pn + p0) * mpAll + m0 * pc) * 16, pc * 16, bp, pc, mp, nc >> 3, c, p.Ldc, first ? 0 : 1);
      first = false;
    }
  }
});

/** Pack B of a WeightGrad job once for all its row chunks, per (group, column chunk, image). */
const packWeightGradBJob = defineJob('gemm.packWeightGradB', gemmParams, (k, p, t) => {
  const nChunks = p.NChunks, img = t % p.NImg, rest = (t / p.NImg) | 0;
  const chunk = rest % nChunks, g = (rest / nChunks) | 0;
  const Kc = p.N, Pn = p.K;
  const n0 = chunk * NC, nc = Math.min(NC, ceil8(Kc) - n0);
  const x = p.BBase + img * p.BImg + g * p.BGrp;
  const pre = p.Prepacked + (g * nChunks + chunk) * p.NImg * Pn * NC * 4;
  for (let p0 = 0; p0 < Pn; p0 += KC) packWeightGradB(k, p, x, p0, Math.min(KC, Pn - p0), n0, nc, pre + (img * Pn + p0) * nc * 4);
});

/**
 * Run a Gemm ('gemm': C = A * B per image and group) or WeightGrad job, preceded by its B-packing job when gemmPlan
 * chose to prepack.
 */
export function runGemmJob(kind: 'gemm' | 'weightGrad', p: GemmParams, nTasks: number, parallel: boolean, scratch: Scratch): void {
  if (p.Prepacked) runJob(kind === 'gemm' ? packGemmBJob : packWeightGradBJob, p, p.NImg * p.NGrp * p.NChunks, parallel);
  runJob(kind === 'gemm' ? gemmJob : weightGradJob, p, nTasks, parallel, scratch);
}

/** a [B, M, K] times b [B, K, N], either may broadcast its batch dim (stride 0). */
export function matmul(a: HostView, b: HostView): Storage {
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
  const { plan, scratch, nTasks } = gemmPlan(arena, mp, K, N, B);
  arena.commit();
  const h = heap();
  const first = (v: HostView, n: number): HostView => (n === 1 ? { ...v, shape: v.shape.slice(1), strides: v.strides.slice(1) } : v);
  gather(first(a, aBatch), h, aSrc / 4);
  gather(first(b, bBatch), h, bSrc / 4);
  packAParallel(aSrc, M * K * 4, K, 1, M, K, ap, mp * K * 16, aBatch, macs >= PARALLEL_MACS);
  runGemmJob('gemm', {
    ...plan, ...NO_GEOMETRY,
    ABase: ap, AImg: aBatch > 1 ? mp * K * 16 : 0, AGrp: 0,
    BKind: 0, BBase: bSrc, BImg: bBatch > 1 ? K * N * 4 : 0, BGrp: 0, Rs: N, Cs: 1,
    CBase: c, CImg: mp * 4 * Npad * 4, CGrp: 0, NImg: B, NGrp: 1,
  }, nTasks, macs >= PARALLEL_MACS, scratch);
  return takeRows(c, B, mp * 4 * Npad, M, Npad, N);
}

/** i-k-j loop over strided views, in the input's precision. */
function matmulJs(a: HostView, b: HostView): Storage {
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
