// Direct convolution of the cpu backend for layers with few channels (ResNet-20's 16 to 64), where im2col packing
// costs about as much as the multiply-adds it feeds. Images are zero-padded and split into stride phases (padPhases in
// kernels/direct.as), so every tap of every output pixel is a stride-1 read at a per-tap offset and no column matrix
// is built:
// - forward (and so backward-input at stride 1, a forward conv of gy): per (image, chunk of 4-row weight panels),
//   the task pads its image into its own scratch and runs convDirect, 4 output channels x 8 pixels in registers;
// - weight gradient: per chunk of 4 images, the task pads them and lays their gy out pixel-major in its scratch, then
//   convDirectBackWeight correlates them, 16 output channels x 2 taps in registers, into the chunk's partial sums;
//   the chunks are added in order. Chunks are fixed, so the bits do not depend on the thread count.

import type { Conv2dParams, ConvAct, HostView } from '../types.js';
import { PARALLEL_MACS } from './gemm.js';
import { defineJob, type JobParams } from './jobs.js';
import { gather } from './strided.js';
import { runJob, threadCount } from './threads.js';
import type { Kernels } from './kernels/exports.js';
import { Arena, heap, takeOut, wasm } from './wasm.js';

/**
 * Reserve room for a forward conv's weights [O, C, KH, KW] and return the address and what fills it after commit: the
 * view gathered as is, or, with flipGroups > 0, the weights of the conv being differentiated (flipGroups groups),
 * gathered and then flipped (kernels/elementwise.as flipKernels) into the weights of its stride-1 backward-input.
 */
export function reserveWeights(arena: Arena, w: HostView, flipGroups: number): { at: number; fill: (h: Float32Array) => void } {
  const n = w.shape.reduce((a, b) => a * b, 1);
  const at = arena.floats(n);
  if (!flipGroups) return { at, fill: (h) => gather(w, h, at / 4) };
  const raw = arena.floats(n);
  const [O, Cg, KH, KW] = w.shape;
  return {
    at,
    fill: (h) => {
      gather(w, h, raw / 4);
      wasm().k.flipKernels(raw, flipGroups, O / flipGroups, Cg, KH * KW, at);
    },
  };
}

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
export function plan(C: number, H: number, W: number, KH: number, KW: number, cp: Conv2dParams, OH: number, OW: number): Plan {
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

/**
 * What padPhases needs (X: the images, XImg bytes apart, C planes of H x W each) and where the taps read (Offs: the
 * plan's K byte offsets in the arena), output OH x OW, O output channels.
 */
const planParams = ['X', 'XImg', 'C', 'H', 'W', 'Sh', 'Sw', 'Ph', 'Pw', 'Na', 'Nb', 'Hq', 'Wq', 'Offs', 'K', 'O', 'OH', 'OW'] as const;
type PlanParams = JobParams<(typeof planParams)[number]>;

function planParamsOf(pl: Plan, offs: number, x: number, C: number, H: number, W: number, cp: Conv2dParams, O: number,
  OH: number, OW: number): PlanParams {
  return {
    X: x, XImg: C * H * W * 4, C, H, W, Sh: cp.stride[0], Sw: cp.stride[1], Ph: cp.padding[0], Pw: cp.padding[1],
    Na: pl.na, Nb: pl.nb, Hq: pl.Hq, Wq: pl.Wq, Offs: offs, K: pl.off.length, O, OH, OW,
  };
}

/** padPhases of image img of a direct job into dst. */
const padImage = (k: Kernels, p: PlanParams, img: number, dst: number) =>
  k.padPhases(p.X + img * p.XImg, p.C, p.H, p.W, p.Sh, p.Sw, p.Na, p.Nb, p.Ph, p.Pw, p.Hq, p.Wq, dst);

/**
 * Forward per (image, chunk of Mpc of the Mp 4-row weight panels A): pad the image into scratch, then convDirect into
 * Out (OutImg bytes per image); Tmp: where convDirect's 128 bytes for tiles that cross a row end sit in the scratch.
 */
const forwardParams = [...planParams, 'A', 'Mp', 'Mpc', 'MChunks', 'Out', 'OutImg', 'Tmp'] as const;
const forwardJob = defineJob('direct.forward', forwardParams, (k, p, t, scratch) => {
  const mc = p.MChunks, img = (t / mc) | 0, p0 = (t % mc) * p.Mpc, p1 = Math.min(p.Mp, p0 + p.Mpc);
  padImage(k, p, img, scratch);
  k.convDirect(scratch, p.Offs, p.K, p.A, p0, p1, p.O, p.OH, p.OW, p.Wq, p.Out + img * p.OutImg, scratch + p.Tmp);
});

/**
 * Weight gradient partial sums per (chunk of Chunk images, group of Width output channels, group of Taps taps): pads
 * the chunk's images (XsImg bytes each) and lays their gy (Gy, GyImg bytes per image) out pixel-major in scratch,
 * then correlates them into the chunk's partial sums (Out, O * K floats per chunk). NImg: images in all; MChunks:
 * the groups of output channels.
 */
const backWeightParams = [...planParams, 'Gy', 'GyImg', 'NImg', 'Chunk', 'Width', 'MChunks', 'Taps', 'XsImg', 'Out'] as const;
const backWeightJob = defineJob('direct.backWeight', backWeightParams, (k, p, t, scratch) => {
  const tg = Math.ceil(p.K / p.Taps), og = p.MChunks;
  const k0 = (t % tg) * p.Taps, o0 = (((t / tg) | 0) % og) * p.Width, chunk = (t / (tg * og)) | 0;
  const n0 = chunk * p.Chunk, nn = Math.min(p.Chunk, p.NImg - n0);
  for (let i = 0; i < nn; i++) padImage(k, p, n0 + i, scratch + i * p.XsImg);
  const width = p.Width, pixels = p.OH * p.OW, gt = scratch + p.Chunk * p.XsImg;
  for (let i = 0; i < nn; i++) {
    k.transposePlanes(p.Gy + (n0 + i) * p.GyImg + o0 * pixels * 4, Math.min(width, p.O - o0), pixels, gt + i * pixels * width * 4, width);
  }
  k.convDirectBackWeight(gt, pixels * width * 4, width >> 4, o0, p.O, p.OH, p.OW, scratch, p.XsImg, p.Wq, p.Offs,
    k0, Math.min(p.K, k0 + p.Taps), nn, p.Out + chunk * p.O * p.K * 4, p.K);
});

/** Dst = the sum of Count partial results of N floats each (N apart from Src), per range of Chunk floats. */
const sumPartialsJob = defineJob('direct.sumPartials', ['Src', 'Count', 'N', 'Chunk', 'Dst'], (k, p, t) => {
  const i0 = t * p.Chunk;
  k.sumStrided(p.Src, p.Count, p.N, i0, Math.min(p.N, i0 + p.Chunk), p.Dst);
});

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

/** Forward convolution by the plan of forwardPlan: float32 x view, weights w as reserveWeights takes them. */
/** What a forward convolution does to its output before it leaves the arena: add a bias [O], then an activation. */
export interface Epilogue {
  bias: Float32Array | null;
  act: ConvAct | null;
}

const ACT_CODES: Record<ConvAct, number> = { relu: 1, relu6: 2 };

/**
 * Reserve an epilogue's bias in the arena (before commit); run(at, rows, stride, len) then applies it in place to
 * rows of len floats, stride floats apart, row r taking bias[r % O] (kernels/elementwise.as biasAct). Null when there
 * is nothing to do.
 */
export function reserveEpilogue(arena: Arena, ep: Epilogue | null, O: number): { run(at: number, rows: number, stride: number, len: number, o0?: number, o1?: number): void } | null {
  if (!ep || (!ep.bias && !ep.act)) return null;
  const bias = ep.bias, b = bias ? arena.floats(O) : 0, act = ep.act ? ACT_CODES[ep.act] : 0;
  let filled = false;
  return {
    // o0, o1: the bias entries of these rows (a group's output channels); default all O
    run(at, rows, stride, len, o0 = 0, o1 = O) {
      if (bias && !filled) { heap().set(bias, b / 4); filled = true; }
      if (rows > 0 && len > 0) wasm().k.biasAct(at, rows, stride, len, bias ? b + o0 * 4 : 0, o1 - o0, act);
    },
  };
}

export function forwardDirect(xv: HostView, w: HostView, flipGroups: number, O: number, pl: Plan, cp: Conv2dParams, OH: number, OW: number,
  label: string, ep: Epilogue | null = null): Float32Array {
  const [N, C, H, W] = xv.shape;
  const K = pl.off.length, mp = (O + 3) >> 2;
  const arena = new Arena(label);
  const offs = arena.alloc(K * 4);
  // x with 4 floats of slack: padPhases copies rows 4 floats at a time
  const xp = arena.floats(N * C * H * W + 4);
  const wp = reserveWeights(arena, w, flipGroups);
  const ap = arena.floats(mp * 4 * K);
  const out = arena.floats(N * O * OH * OW);
  // panels per task: all of them, unless there are too few images to feed every thread
  const want = 4 * threadCount();
  const mChunks = N >= want ? 1 : Math.min(mp, Math.ceil(want / N));
  const mpc = Math.ceil(mp / mChunks);
  // per thread: the padded image, then 128 bytes for convDirect's tiles that cross a row end
  const scratchPer = Math.ceil((pl.image * 4 + 128) / 64) * 64;
  const scratch = { scratch: arena.alloc(scratchPer * threadCount()), scratchPer };
  const epi = reserveEpilogue(arena, ep, O);
  arena.commit();
  const h = heap();
  gather(xv, h, xp / 4);
  wp.fill(h);
  new Int32Array(h.buffer, offs, K).set(pl.off);
  wasm().k.packA(wp.at, K, 1, O, K, ap, K, 0);
  const tasks = Math.ceil(mp / mpc);
  runJob(forwardJob, {
    ...planParamsOf(pl, offs, xp, C, H, W, cp, O, OH, OW), A: ap, Mp: mp, Mpc: mpc, MChunks: tasks, Out: out, OutImg: O * OH * OW * 4,
    Tmp: scratchPer - 128,
  }, N * tasks, N * O * OH * OW * K >= PARALLEL_MACS, scratch);
  epi?.run(out, N * O, OH * OW, OH * OW);
  return takeOut(out, N * O * OH * OW);
}

/** Images per chunk of the weight gradient: fixed, never derived from the thread count, so the sum order is fixed too. */
const CHUNK = 4;

/**
 * Weight gradient, groups = 1: gy [N, O, OH, OW] and x [N, C, H, W] float32 views. Tasks sum chunks of CHUNK images
 * into partial gradients (each task pads its chunk's images into its own scratch, so they are read from cache by
 * every output channel and tap); the chunks are then added in order.
 */
export function backWeightDirect(gy: HostView, xv: HostView, O: number, KH: number, KW: number, cp: Conv2dParams, label: string): Float32Array {
  const [N, C, H, W] = xv.shape;
  const [, , OH, OW] = gy.shape;
  const pl = plan(C, H, W, KH, KW, cp, OH, OW);
  const K = pl.off.length, chunks = Math.ceil(N / CHUNK);
  const arena = new Arena(label);
  const offs = arena.alloc(K * 4);
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
  const groups = Math.ceil(blocks / (width / 16)), taps = 2 * Math.ceil(K / 2 / tg);
  // per thread: the chunk's padded images, then its gy pixel-major (width channels per pixel)
  const scratchPer = Math.ceil((CHUNK * (pl.image + OH * OW * width) * 4) / 64) * 64;
  const scratch = { scratch: arena.alloc(scratchPer * threadCount()), scratchPer };
  arena.commit();
  const h = heap();
  gather(xv, h, xp / 4);
  gather(gy, h, gp / 4);
  new Int32Array(h.buffer, offs, K).set(pl.off);
  runJob(backWeightJob, {
    ...planParamsOf(pl, offs, xp, C, H, W, cp, O, OH, OW), Gy: gp, GyImg: O * OH * OW * 4, NImg: N, Chunk: CHUNK,
    Width: width, MChunks: groups, Taps: taps, XsImg: pl.image * 4, Out: part,
  }, chunks * groups * Math.ceil(K / taps), N * O * OH * OW * K >= PARALLEL_MACS, scratch);
  // gw = the chunks' partial sums added in chunk order (float64, rounded once), cut into ranges for the threads
  const range = 2 * Math.ceil(O * K / 2 / want);
  runJob(sumPartialsJob, { Src: part, Count: chunks, N: O * K, Chunk: range, Dst: gw }, Math.ceil(O * K / range), chunks * O * K >= PARALLEL_MACS / 8);
  return takeOut(gw, O * K);
}
