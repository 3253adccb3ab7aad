// Convolution kernels of the cpu backend (float32 in wasm; float64 goes to the reference backend).
// - forward: im2col fused into B-packing (a 1x1 stride-1 unpadded conv packs x directly), GEMM per (image, group).
// - backward-input, stride 1: a forward conv of gy with the flipped, transposed kernel (padding d*(k-1) - p), so it
//   reuses the forward path and needs no col2im; other strides: GEMM w^T * gy into columns, then col2im.
// - backward-weight: gy packed as A over all images and pixels, im2col(x)^T packed as B; each task owns a block of
//   the weight gradient and reduces over every image, so threads never add into the same cells.
// - depthwise (groups = channels = out channels): dedicated per-plane SIMD kernels, see kernels.as.
// - up to 64 channels in and out, groups = 1: the weight gradient, and the forward of KxK convs with a small output
//   per image, run as direct kernels without im2col instead (conv-direct.ts: forwardPlan and directWeight choose).

import type { Storage } from '../../dtype.js';
import { convOut, referenceBackend } from '../reference.js';
import type { Conv2dParams, View } from '../types.js';
import { ceil8, gemmSlots, packABlocks, packAJob, PARALLEL_MACS, runGemmJob } from './gemm.js';
import { JobKind, P } from './jobs.js';
import { backWeightDirect, directWeight, forwardDirect, forwardPlan } from './conv-direct.js';
import { gather } from './strided.js';
import { jobParams, runJob, threadCount } from './threads.js';
import { Arena, heap, takeOut, takeRows } from './wasm.js';

type Shape4 = readonly [number, number, number, number];

const contiguousF32 = (v: View): Float32Array => {
  const out = new Float32Array(v.shape.reduce((a, b) => a * b, 1));
  gather(v, out, 0);
  return out;
};

function setGeometry(p: Int32Array, H: number, W: number, KH: number, KW: number, c: Conv2dParams, OW: number) {
  p[P.H] = H; p[P.W] = W; p[P.KH] = KH; p[P.KW] = KW;
  p[P.Sh] = c.stride[0]; p[P.Sw] = c.stride[1];
  p[P.Ph] = c.padding[0]; p[P.Pw] = c.padding[1];
  p[P.Dh] = c.dilation[0]; p[P.Dw] = c.dilation[1];
  p[P.OW] = OW;
}

const isDepthwise = (C: number, O: number, Cg: number, G: number) => Cg === 1 && O === G && C === G;

/** Forward convolution of a float32 view with contiguous weights w [O, Cg, KH, KW]. */
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

function forward(xv: View, w: View, ws: Shape4, bias: Float32Array | null, cp: Conv2dParams): Float32Array {
  const [N, C, H, W] = xv.shape;
  const [O, Cg, KH, KW] = ws;
  const G = cp.groups, Og = O / G;
  const { OH, OW } = convOut(H, W, KH, KW, cp);
  const Pn = OH * OW;
  if (N * O * Pn === 0) return new Float32Array(0);
  const direct = forwardPlan(C, O, G, H, W, KH, KW, cp, OH, OW);
  if (direct) {
    const out = forwardDirect(xv, w, O, direct, cp, OH, OW, `conv2d x${fmt(xv.shape)} w${fmt(ws)}`);
    if (bias) for (let q = 0; q < N * O; q++) addBias(out, q * Pn, Pn, bias[q % O]);
    return out;
  }
  const macs = N * O * Pn * Cg * KH * KW;
  const arena = new Arena(`conv2d x${fmt(xv.shape)} w${fmt(ws)}`);
  const xp = arena.floats(N * C * H * W);
  const p = jobParams();
  setGeometry(p, H, W, KH, KW, cp, OW);
  if (isDepthwise(C, O, Cg, G)) {
    const wp = arena.floats(O * KH * KW);
    const op = arena.floats(N * O * Pn);
    const nTasks = dwSlots(p, arena, N * C, C, H, W, OH, OW, KH, KW, cp);
    arena.commit();
    const h = heap();
    gather(xv, h, xp / 4);
    gather(w, h, wp / 4);
    p[P.X] = xp; p[P.Wt] = wp; p[P.Out] = op; p[P.Flip] = 0;
    runJob(JobKind.DwForward, nTasks, macs >= PARALLEL_MACS);
    const out = takeOut(op, N * O * Pn);
    if (bias) for (let q = 0; q < N * O; q++) addBias(out, q * Pn, Pn, bias[q % O]);
    return out;
  }
  const K = Cg * KH * KW, mp = (Og + 3) >> 2, Ppad = ceil8(Pn);
  const wp = arena.floats(O * K);
  const ap = arena.floats(G * mp * 4 * K);
  const cbuf = arena.floats(N * G * mp * 4 * Ppad);
  const nTasks = gemmSlots(p, arena, mp, K, Pn, N * G);
  arena.commit();
  const h = heap();
  gather(xv, h, xp / 4);
  gather(w, h, wp / 4);
  packAJob(p, wp, Og * K * 4, K, 1, Og, K, ap, mp * K * 16, G, macs >= PARALLEL_MACS);
  const plain = KH === 1 && KW === 1 && cp.stride[0] === 1 && cp.stride[1] === 1 && cp.padding[0] === 0 && cp.padding[1] === 0;
  p[P.ABase] = ap; p[P.AImg] = 0; p[P.AGrp] = mp * K * 16;
  p[P.BKind] = plain ? 0 : 1; p[P.BBase] = xp; p[P.BImg] = C * H * W * 4; p[P.BGrp] = Cg * H * W * 4;
  p[P.Rs] = H * W; p[P.Cs] = 1;
  p[P.CBase] = cbuf; p[P.CGrp] = mp * 4 * Ppad * 4; p[P.CImg] = G * mp * 4 * Ppad * 4;
  p[P.NImg] = N; p[P.NGrp] = G;
  runGemmJob(JobKind.Gemm, p, nTasks, macs >= PARALLEL_MACS);
  // C is [image][group][mp * 4 rows][Ppad]: drop the padding rows and columns, then copy out once
  const out = takeRows(cbuf, N * G, mp * 4 * Ppad, Og, Ppad, Pn);
  if (bias) for (let q = 0; q < N * O; q++) addBias(out, q * Pn, Pn, bias[q % O]);
  return out;
}

function addBias(out: Float32Array, at: number, n: number, b: number) {
  if (b !== 0) for (let i = at; i < at + n; i++) out[i] += b;
}

/** Depthwise slots: plane chunks and per-thread scratch for one padded plane. Returns the task count. */
function dwSlots(p: Int32Array, arena: Arena, planes: number, C: number, H: number, W: number, OH: number, OW: number,
  KH: number, KW: number, cp: Conv2dParams): number {
  const rows = Math.max(H, OH * cp.stride[0]) + 2 * cp.padding[0] + KH * cp.dilation[0] + 4;
  const cols = Math.max(W, OW * cp.stride[1]) + 2 * cp.padding[1] + KW * cp.dilation[1] + 8;
  p[P.ScratchPer] = rows * cols * 4;
  p[P.Scratch] = arena.alloc(rows * cols * 4 * threadCount());
  p[P.OH] = OH; p[P.Planes] = planes; p[P.C] = C;
  const per = Math.max(1, Math.floor(planes / (8 * threadCount())));
  p[P.Chunk] = per;
  return Math.ceil(planes / per);
}

export function conv2d(x: View, w: View, bias: View | null, cp: Conv2dParams): Storage {
  if (x.data instanceof Float64Array) return referenceBackend.conv2d(x, w, bias, cp);
  return forward(x, w, w.shape as unknown as Shape4, bias ? contiguousF32(bias) : null, cp);
}

export function conv2dBackwardInput(gy: View, wv: View, xShape: readonly number[], cp: Conv2dParams): Storage {
  if (gy.data instanceof Float64Array) return referenceBackend.conv2dBackwardInput(gy, wv, xShape, cp);
  const [N, C, H, W] = xShape;
  const [O, Cg, KH, KW] = wv.shape;
  const [, , OH, OW] = gy.shape;
  const G = cp.groups, Og = O / G;
  const w = contiguousF32(wv);
  const ph = cp.dilation[0] * (KH - 1) - cp.padding[0], pw = cp.dilation[1] * (KW - 1) - cp.padding[1];
  const stride1 = cp.stride[0] === 1 && cp.stride[1] === 1;
  if (stride1 && ph >= 0 && pw >= 0) {
    // gx = conv(gy, flip(w) with in/out swapped per group, padding d*(k-1) - p)
    // (written in destination order: scattered reads are much cheaper than scattered writes)
    const wf = new Float32Array(w.length);
    const khw = KH * KW;
    let d = 0;
    for (let g = 0; g < G; g++)
      for (let c = 0; c < Cg; c++)
        for (let o = 0; o < Og; o++, d += khw) {
          const s = ((g * Og + o) * Cg + c) * khw + khw - 1;
          for (let t = 0; t < khw; t++) wf[d + t] = w[s - t];
        }
    const wfv: View = { data: wf, shape: [C, Og, KH, KW], strides: [Og * khw, khw, KW, 1], offset: 0 };
    return forward(gy, wfv, [C, Og, KH, KW], null, { stride: [1, 1], padding: [ph, pw], dilation: cp.dilation, groups: G });
  }
  if (isDepthwise(C, O, Cg, G)) return dwBackInputScatter(gy, w, [N, C, H, W], [O, Cg, KH, KW], cp);
  return backInputCol2im(gy, w, [N, C, H, W], [O, Cg, KH, KW], OH, OW, cp);
}

/** Depthwise backward-input by scatter into a padded plane (strides > 1, or padding beyond d*(k-1)). */
function dwBackInputScatter(gy: View, w: Float32Array, xs: Shape4, ws: Shape4, cp: Conv2dParams): Float32Array {
  const [N, C, H, W] = xs;
  const [, , KH, KW] = ws;
  const [, , OH, OW] = gy.shape;
  if (N * C * H * W === 0) return new Float32Array(0);
  const arena = new Arena(`conv2dBackwardInput gy${fmt(gy.shape)} w${fmt(ws)}`);
  const gp = arena.floats(N * C * OH * OW);
  const wp = arena.floats(C * KH * KW);
  const op = arena.floats(N * C * H * W);
  const p = jobParams();
  setGeometry(p, H, W, KH, KW, cp, OW);
  const rows = (OH - 1) * cp.stride[0] + (KH - 1) * cp.dilation[0] + H + cp.padding[0] + 2;
  const cols = (OW - 1) * cp.stride[1] + (KW - 1) * cp.dilation[1] + W + cp.padding[1] + 2;
  const nTasks = dwSlots(p, arena, N * C, C, H, W, OH, OW, KH, KW, cp);
  p[P.ScratchPer] = Math.max(p[P.ScratchPer], rows * cols * 4);
  p[P.Scratch] = arena.alloc(p[P.ScratchPer] * threadCount());
  arena.commit();
  const h = heap();
  gather(gy, h, gp / 4);
  h.set(w, wp / 4);
  p[P.X] = gp; p[P.Wt] = wp; p[P.Out] = op;
  runJob(JobKind.DwBackInput, nTasks, N * C * OH * OW * KH * KW >= PARALLEL_MACS);
  return takeOut(op, N * C * H * W);
}

/** Backward-input by GEMM (w^T gy per group, into columns) then col2im, a few images at a time. */
function backInputCol2im(gy: View, w: Float32Array, xs: Shape4, ws: Shape4, OH: number, OW: number, cp: Conv2dParams): Float32Array {
  const [N, C, H, W] = xs;
  const [O, Cg, KH, KW] = ws;
  const G = cp.groups, Og = O / G;
  const K = Cg * KH * KW, mp = (K + 3) >> 2, Pn = OH * OW, Ppad = ceil8(Pn);
  const gx = new Float32Array(N * C * H * W);
  if (gx.length === 0) return gx;
  const gyc = new Float32Array(N * O * Pn);
  gather(gy, gyc, 0);
  // images per round: keep the column buffer under 64 MiB
  const per = Math.max(1, Math.min(N, Math.floor((64 << 20) / (G * mp * 4 * Ppad * 4))));
  for (let n0 = 0; n0 < N; n0 += per) {
    const nb = Math.min(per, N - n0);
    const arena = new Arena(`conv2dBackwardInput gy${fmt(gy.shape)} w${fmt(ws)}`);
    const wp = arena.floats(O * K);
    const ap = arena.floats(G * mp * 4 * Og);
    const gp = arena.floats(nb * O * Pn);
    const dcol = arena.floats(nb * G * mp * 4 * Ppad);
    const gxp = arena.floats(nb * C * H * W);
    const p = jobParams();
    setGeometry(p, H, W, KH, KW, cp, OW);
    const nTasks = gemmSlots(p, arena, mp, Og, Pn, nb * G);
    arena.commit();
    const h = heap();
    h.set(w, wp / 4);
    h.set(gyc.subarray(n0 * O * Pn, (n0 + nb) * O * Pn), gp / 4);
    // A_g = w_g^T: rows are the taps (c, kh, kw), columns the group's output channels
    packAJob(p, wp, Og * K * 4, 1, K, K, Og, ap, mp * Og * 16, G, nb * O * Pn * K >= PARALLEL_MACS);
    p[P.ABase] = ap; p[P.AImg] = 0; p[P.AGrp] = mp * Og * 16;
    p[P.BKind] = 0; p[P.BBase] = gp; p[P.BImg] = O * Pn * 4; p[P.BGrp] = Og * Pn * 4; p[P.Rs] = Pn; p[P.Cs] = 1;
    p[P.CBase] = dcol; p[P.CGrp] = mp * 4 * Ppad * 4; p[P.CImg] = G * mp * 4 * Ppad * 4;
    p[P.NImg] = nb; p[P.NGrp] = G;
    const macs = nb * O * Pn * K;
    runGemmJob(JobKind.Gemm, p, nTasks, macs >= PARALLEL_MACS);
    // col2im: tasks over (image, group, channel chunk)
    const chunk = Math.max(1, Math.ceil(Cg / Math.max(1, Math.ceil((4 * threadCount()) / (nb * G)))));
    p[P.Chunk] = chunk; p[P.C] = Cg; p[P.OH] = OH; p[P.Out] = gxp; p[P.X] = C * H * W * 4; p[P.Ldc] = Ppad;
    runJob(JobKind.Col2im, nb * G * Math.ceil(Cg / chunk), macs >= PARALLEL_MACS);
    if (nb === N) return takeOut(gxp, N * C * H * W);
    gx.set(takeOut(gxp, nb * C * H * W), n0 * C * H * W);
  }
  return gx;
}

export function conv2dBackwardWeight(gy: View, xv: View, wShape: readonly number[], cp: Conv2dParams): Storage {
  if (gy.data instanceof Float64Array) return referenceBackend.conv2dBackwardWeight(gy, xv, wShape, cp);
  const [N, C, H, W] = xv.shape;
  const [O, Cg, KH, KW] = wShape;
  const [, , OH, OW] = gy.shape;
  const G = cp.groups, Og = O / G, Pn = OH * OW;
  if (O * Cg * KH * KW === 0 || N * Pn === 0) return new Float32Array(O * Cg * KH * KW);
  if (directWeight(C, O, G)) return backWeightDirect(gy, xv, O, KH, KW, cp, `conv2dBackwardWeight gy${fmt(gy.shape)} x${fmt(xv.shape)} w${fmt(wShape)}`);
  const arena = new Arena(`conv2dBackwardWeight gy${fmt(gy.shape)} x${fmt(xv.shape)} w${fmt(wShape)}`);
  const xp = arena.floats(N * C * H * W);
  const gp = arena.floats(N * O * Pn);
  const p = jobParams();
  setGeometry(p, H, W, KH, KW, cp, OW);
  const macs = N * O * Pn * Cg * KH * KW;
  if (isDepthwise(C, O, Cg, G)) {
    const op = arena.floats(O * KH * KW);
    dwSlots(p, arena, N * C, C, H, W, OH, OW, KH, KW, cp);
    const per = Math.max(1, Math.floor(C / (8 * threadCount())));
    p[P.Chunk] = per;
    arena.commit();
    const h = heap();
    gather(xv, h, xp / 4);
    gather(gy, h, gp / 4);
    h.fill(0, op / 4, op / 4 + O * KH * KW);
    p[P.X] = xp; p[P.CBase] = gp; p[P.Out] = op; p[P.NImg] = N;
    runJob(JobKind.DwBackWeight, Math.ceil(C / per), macs >= PARALLEL_MACS);
    return takeOut(op, O * KH * KW);
  }
  const K = Cg * KH * KW, mp = (Og + 3) >> 2, Kpad = ceil8(K), Kt = N * Pn;
  const ap = arena.floats(G * mp * 4 * Kt);
  const cbuf = arena.floats(G * mp * 4 * Kpad);
  // rows: output channels; columns: taps; reduction: every pixel of every image
  const nTasks = gemmSlots(p, arena, mp, Kt, K, G);
  arena.commit();
  const h = heap();
  gather(xv, h, xp / 4);
  gather(gy, h, gp / 4);
  for (let g = 0; g < G; g++)
    for (let n = 0; n < N; n++) packABlocks(gp + (n * O + g * Og) * Pn * 4, Pn, 1, Og, Pn, ap + g * mp * Kt * 16, n * Pn);
  const plain = KH === 1 && KW === 1 && cp.stride[0] === 1 && cp.stride[1] === 1 && cp.padding[0] === 0 && cp.padding[1] === 0;
  p[P.ABase] = ap; p[P.AGrp] = mp * Kt * 16;
  p[P.K] = Pn; p[P.N] = K; p[P.Ldc] = Kpad;
  p[P.BKind] = plain ? 0 : 1; p[P.BBase] = xp; p[P.BImg] = C * H * W * 4; p[P.BGrp] = Cg * H * W * 4;
  p[P.Rs] = 1; p[P.Cs] = H * W;
  p[P.CBase] = cbuf; p[P.CGrp] = mp * 4 * Kpad * 4; p[P.NImg] = N; p[P.NGrp] = G;
  runGemmJob(JobKind.WeightGrad, p, nTasks, macs >= PARALLEL_MACS);
  return takeRows(cbuf, G, mp * 4 * Kpad, Og, Kpad, K);
}
