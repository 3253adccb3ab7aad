// Direct convolution of the cpu backend for layers with few channels (ResNet-20's 16 to 64), where im2col packing
// costs about as much as the multiply-adds it feeds. Images are zero-padded and split into stride phases (padPhases in
// kernels.as), so every tap of every output pixel is a stride-1 read at a per-tap offset and no column matrix is built:
// - forward (and so backward-input at stride 1, a forward conv of gy): per (image, chunk of 4-row weight panels),
//   the task pads its image into its own scratch and runs convDirect, 4 output channels x 8 pixels in registers;
// - weight gradient: per chunk of 4 images, the task pads them and lays their gy out pixel-major in its scratch, then
//   convDirectBackWeight correlates them, 16 output channels x 2 taps in registers, into the chunk's partial sums;
//   the chunks are added in order. Chunks are fixed, so the bits do not depend on the thread count.

import type { Conv2dParams, View } from '../types.js';
import { PARALLEL_MACS } from './gemm.js';
import { JobKind, P } from './jobs.js';
import { gather } from './strided.js';
import { jobParams, runJob, threadCount } from './threads.js';
import { Arena, heap, takeOut, wasm } from './wasm.js';

/** Where the taps of a conv read from the padded, phase-split image of padPhases. */
export interface Plan {
  /** Phases per channel (rows, columns) and the size of one phase plane. */
  na: number; nb: number; Hq: number; Wq: number;
  /** Floats per padded image, slack for reads past its end included. */
  image: number;
  /** Byte offset of tap (c, kh, kw) from the pixel it serves, for taps k = (c * KH + kh) * KW + kw. */
  off: Int32Array;
}

/**
 * Tap kh reads phase row (kh * dh) % sh at row offset floor(kh * dh / sh) (columns alike). A phase plane is OW + the
 * largest column offset wide, or narrower (never below OW) when the reads that run past a row end land in the next
 * row's left padding while the true taps lie in the right padding (both zero): 3x3 padding 1 stride 1 gives W + 1
 * columns, not W + 2.
 */
function plan(C: number, H: number, W: number, KH: number, KW: number, cp: Conv2dParams, OH: number, OW: number): Plan {
  const [sh, sw] = cp.stride, [ph, pw] = cp.padding, [dh, dw] = cp.dilation;
  const rowOf = (kh: number) => [(kh * dh) % sh, Math.floor((kh * dh) / sh)];
  const colOf = (kw: number) => [(kw * dw) % sw, Math.floor((kw * dw) / sw)];
  let na = 1, nb = 1, maxR = 0;
  for (let kh = 0; kh < KH; kh++) { na = Math.max(na, rowOf(kh)[0] + 1); maxR = Math.max(maxR, rowOf(kh)[1]); }
  const maxCol = new Map<number, number>();
  for (let kw = 0; kw < KW; kw++) {
    const [b, s] = colOf(kw);
    nb = Math.max(nb, b + 1);
    maxCol.set(b, Math.max(maxCol.get(b) ?? 0, s));
  }
  const fits = (w: number) => [...maxCol].every(([b, s]) => {
    const over = OW - 1 + s - w;
    return w * sw + b >= pw + W && (over < 0 || over * sw + b < pw);
  });
  const maxS = Math.max(...maxCol.values());
  let Wq = OW + maxS;
  while (Wq > OW && fits(Wq - 1)) Wq--;
  // one more row than the taps need: reads past the last row's end land in its left padding
  const Hq = OH + maxR + 1;
  const off = new Int32Array(C * KH * KW);
  for (let c = 0, k = 0; c < C; c++) {
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++, k++) {
        const [a, r] = rowOf(kh), [b, s] = colOf(kw);
        off[k] = (((c * na + a) * nb + b) * Hq * Wq + r * Wq + s) * 4;
      }
    }
  }
  // the forward's dropped lanes read up to 8 + maxS floats past the last plane; padPhases writes up to 3
  return { na, nb, Hq, Wq, image: C * na * nb * Hq * Wq + maxS + 16, off };
}

function setPlan(p: Int32Array, arena: Arena, pl: Plan, C: number, H: number, W: number, cp: Conv2dParams, OH: number, OW: number) {
  p[P.C] = C; p[P.H] = H; p[P.W] = W; p[P.OH] = OH; p[P.OW] = OW;
  p[P.Sh] = cp.stride[0]; p[P.Sw] = cp.stride[1]; p[P.Ph] = cp.padding[0]; p[P.Pw] = cp.padding[1];
  p[P.Na] = pl.na; p[P.Nb] = pl.nb; p[P.Hq] = pl.Hq; p[P.Wq] = pl.Wq; p[P.K] = pl.off.length;
  p[P.Offs] = arena.alloc(pl.off.length * 4);
}

/** Channel counts the direct kernels serve (ResNet-20 has 16 to 64); wider layers keep the GEMM path. */
const MAX_CHANNELS = 64;

/**
 * The plan of a forward conv that goes direct, or null: groups = 1, a KxK kernel (1x1 convs measured no gain), at
 * most 64 channels in and out, a small per-image product (O x OH * OW at most 16 x 28 x 28: on larger ones the GEMM's
 * packing is amortised and it is as fast or faster) and a padded image that stays in cache (128 KiB).
 */
export function forwardPlan(C: number, O: number, G: number, H: number, W: number, KH: number, KW: number, cp: Conv2dParams,
  OH: number, OW: number): Plan | null {
  if (G !== 1 || KH * KW === 1 || C > MAX_CHANNELS || O > MAX_CHANNELS || O * OH * OW > 16 * 28 * 28) return null;
  const pl = plan(C, H, W, KH, KW, cp, OH, OW);
  return pl.image * 4 <= 128 << 10 ? pl : null;
}

/** The weight gradient goes direct for groups = 1 and at most 64 channels in and out (1x1 convs included). */
export const directWeight = (C: number, O: number, G: number): boolean => G === 1 && C <= MAX_CHANNELS && O <= MAX_CHANNELS;

/** Forward convolution by the plan of forwardPlan: float32 x view and contiguous weights w [O, C, KH, KW]. */
export function forwardDirect(xv: View, w: View, O: number, pl: Plan, cp: Conv2dParams, OH: number, OW: number, label: string): Float32Array {
  const [N, C, H, W] = xv.shape;
  const K = pl.off.length, mp = (O + 3) >> 2;
  const arena = new Arena(label);
  const p = jobParams();
  setPlan(p, arena, pl, C, H, W, cp, OH, OW);
  // x with 4 floats of slack: padPhases copies rows 4 floats at a time
  const xp = arena.floats(N * C * H * W + 4);
  const wp = arena.floats(O * K);
  const ap = arena.floats(mp * 4 * K);
  const out = arena.floats(N * O * OH * OW);
  // panels per task: all of them, unless there are too few images to feed every thread
  const want = 4 * threadCount();
  const mChunks = N >= want ? 1 : Math.min(mp, Math.ceil(want / N));
  p[P.Mp] = mp; p[P.Mpc] = Math.ceil(mp / mChunks); p[P.MChunks] = Math.ceil(mp / p[P.Mpc]);
  // per thread: the padded image, then 128 bytes for convDirect's tiles that cross a row end
  p[P.ScratchPer] = Math.ceil((pl.image * 4 + 128) / 64) * 64;
  p[P.Scratch] = arena.alloc(p[P.ScratchPer] * threadCount());
  arena.commit();
  const h = heap();
  gather(xv, h, xp / 4);
  gather(w, h, wp / 4);
  new Int32Array(h.buffer, p[P.Offs], K).set(pl.off);
  wasm().k.packA(wp, K, 1, O, K, ap, K, 0);
  p[P.X] = xp; p[P.BImg] = C * H * W * 4; p[P.ABase] = ap; p[P.O] = O; p[P.Out] = out; p[P.CImg] = O * OH * OW * 4;
  runJob(JobKind.ConvDirect, N * p[P.MChunks], N * O * OH * OW * K >= PARALLEL_MACS);
  return takeOut(out, N * O * OH * OW);
}

/** Images per chunk of the weight gradient: fixed, never derived from the thread count, so the sum order is fixed too. */
const CHUNK = 4;

/**
 * Weight gradient, groups = 1: gy [N, O, OH, OW] and x [N, C, H, W] float32 views. Tasks sum chunks of CHUNK images
 * into partial gradients (each task pads its chunk's images into its own scratch, so they are read from cache by
 * every output channel and tap); the chunks are then added in order.
 */
export function backWeightDirect(gy: View, xv: View, O: number, KH: number, KW: number, cp: Conv2dParams, label: string): Float32Array {
  const [N, C, H, W] = xv.shape;
  const [, , OH, OW] = gy.shape;
  const pl = plan(C, H, W, KH, KW, cp, OH, OW);
  const K = pl.off.length, chunks = Math.ceil(N / CHUNK);
  const arena = new Arena(label);
  const p = jobParams();
  setPlan(p, arena, pl, C, H, W, cp, OH, OW);
  const xp = arena.floats(N * C * H * W + 4);
  const gp = arena.floats(N * O * OH * OW);
  const part = arena.floats(chunks * O * K);
  const gw = arena.floats(O * K);
  // output channels go in blocks of 16 (the kernel's 4 vectors); with too few chunks to feed every thread, groups of
  // blocks and then of taps (in pairs) are split among tasks too
  const want = 4 * threadCount(), blocks = Math.ceil(O / 16);
  const og = Math.min(blocks, Math.ceil(want / chunks));
  const tg = Math.min(Math.ceil(K / 2), Math.ceil(want / (chunks * og)));
  const width = 16 * Math.ceil(blocks / og);
  p[P.Mpc] = width / 4; p[P.MChunks] = Math.ceil(blocks / (width / 16));
  p[P.Taps] = 2 * Math.ceil(K / 2 / tg);
  p[P.XsImg] = pl.image * 4;
  // per thread: the chunk's padded images, then its gy pixel-major (width channels per pixel)
  p[P.ScratchPer] = Math.ceil((CHUNK * (pl.image + OH * OW * width) * 4) / 64) * 64;
  p[P.Scratch] = arena.alloc(p[P.ScratchPer] * threadCount());
  arena.commit();
  const h = heap();
  gather(xv, h, xp / 4);
  gather(gy, h, gp / 4);
  new Int32Array(h.buffer, p[P.Offs], K).set(pl.off);
  p[P.X] = xp; p[P.BImg] = C * H * W * 4; p[P.Chunk] = CHUNK; p[P.NImg] = N;
  p[P.CBase] = gp; p[P.CImg] = O * OH * OW * 4; p[P.O] = O; p[P.Out] = part;
  const nTasks = chunks * p[P.MChunks] * Math.ceil(K / p[P.Taps]);
  runJob(JobKind.ConvDirectWeight, nTasks, N * O * OH * OW * K >= PARALLEL_MACS);
  // gw = the chunks' partial sums added in chunk order (float64, rounded once), cut into ranges for the threads
  p[P.X] = part; p[P.Count] = chunks; p[P.N] = O * K; p[P.Wt] = gw; p[P.Chunk] = 2 * Math.ceil(O * K / 2 / want);
  runJob(JobKind.SumPartials, Math.ceil(O * K / p[P.Chunk]), chunks * O * K >= PARALLEL_MACS / 8);
  return takeOut(gw, O * K);
}
