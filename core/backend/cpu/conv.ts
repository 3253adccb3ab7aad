// Convolution kernels of the cpu backend (float32 in wasm; float64 goes to the reference backend).
// - forward: im2col fused into B-packing (a 1x1 stride-1 unpadded conv packs x directly), GEMM per (image, group).
// - backward-input, stride 1: a forward conv of gy with the flipped, transposed kernel (padding d*(k-1) - p), so it
//   reuses the forward path and needs no col2im; other strides: GEMM w^T * gy into columns, then col2im.
// - backward-weight: gy packed as A over all images and pixels, im2col(x)^T packed as B; each task owns a block of
//   the weight gradient and reduces over every image, so threads never add into the same cells.
// - depthwise (groups = channels = out channels): dedicated per-plane SIMD kernels, see kernels/depthwise.as.
// - up to 64 channels in and out, groups = 1: the weight gradient, and the forward of KxK convs with a small output
//   per image, run as direct kernels without im2col instead (conv-direct.ts: forwardPlan and directWeight choose).

import type { Storage } from '../../dtype.js';
import { convOut, referenceKernels } from '../reference.js';
import type { Conv2dParams, ConvAct, HostView } from '../types.js';
import {
  ceil8, gemmPlan, geometryParams, NO_GEOMETRY, packABlocks, packAParallel, PARALLEL_MACS, runGemmJob, type Geometry,
} from './gemm.js';
import { defineJob } from './jobs.js';
import { backWeightDirect, directWeight, forwardDirect, forwardPlan, reserveEpilogue, reserveWeights, type Epilogue } from './conv-direct.js';
import { gather } from './strided.js';
import { runJob, threadCount, type Scratch } from './threads.js';
import { Arena, heap, takeOut, takeRows } from './wasm.js';

type Shape4 = readonly [number, number, number, number];

const contiguousF32 = (v: HostView): Float32Array => {
  const out = new Float32Array(v.shape.reduce((a, b) => a * b, 1));
  gather(v, out, 0);
  return out;
};

const geometry = (H: number, W: number, KH: number, KW: number, c: Conv2dParams, OW: number): Geometry => ({
  H, W, KH, KW, Sh: c.stride[0], Sw: c.stride[1], Ph: c.padding[0], Pw: c.padding[1], Dh: c.dilation[0], Dw: c.dilation[1], OW,
});

/**
 * Depthwise jobs: planes of [N * C] (channel = plane % C), input planes H x W, output planes OH x OW, Chunk planes
 * (channels for the weight gradient) per task; X, Wt, Out: input, weights [C, KH, KW], output; Gy (weight gradient
 * only): gy [N, C, OH, OW]; Flip (forward only): use the flipped kernel (the stride-1 backward-input case).
 */
const dwParams = ['Planes', 'C', 'Chunk', 'NImg', 'OH', 'X', 'Wt', 'Gy', 'Out', 'Flip', ...geometryParams] as const;

/** Depthwise forward or stride-1 backward-input (flipped kernel), per chunk of planes. */
const dwForwardJob = defineJob('conv.dwForward', dwParams, (k, p, t, scratch) => {
  const khw = p.KH * p.KW, end = Math.min(p.Planes, (t + 1) * p.Chunk);
  for (let q = t * p.Chunk; q < end; q++) {
    k.dwPlane(p.X + q * p.H * p.W * 4, p.H, p.W, p.Wt + (q % p.C) * khw * 4, p.KH, p.KW, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw,
      p.OH, p.OW, p.Out + q * p.OH * p.OW * 4, 0, p.Flip, scratch);
  }
});

/** Depthwise backward-input by scatter (any stride), per chunk of planes: X is gy (planes OH x OW), Out is gx. */
const dwBackInputJob = defineJob('conv.dwBackInput', dwParams, (k, p, t, scratch) => {
  const khw = p.KH * p.KW, end = Math.min(p.Planes, (t + 1) * p.Chunk);
  for (let q = t * p.Chunk; q < end; q++) {
    k.dwPlaneBackInput(p.X + q * p.OH * p.OW * 4, p.OH, p.OW, p.Wt + (q % p.C) * khw * 4, p.KH, p.KW, p.Sh, p.Sw, p.Ph, p.Pw,
      p.Dh, p.Dw, p.H, p.W, p.Out + q * p.H * p.W * 4, scratch);
  }
});

/** Depthwise weight gradient per chunk of channels, into Out = gw [C, KH, KW] (zeroed by the caller). */
const dwBackWeightJob = defineJob('conv.dwBackWeight', dwParams, (k, p, t, scratch) => {
  const C = p.C, khw = p.KH * p.KW, HW = p.H * p.W, OHW = p.OH * p.OW;
  const end = Math.min(C, (t + 1) * p.Chunk);
  for (let c = t * p.Chunk; c < end; c++) {
    for (let img = 0; img < p.NImg; img++) {
      const q = img * C + c;
      k.dwPlaneBackWeight(p.Gy + q * OHW * 4, p.OH, p.OW, p.X + q * HW * 4, p.H, p.W, p.KH, p.KW, p.Sh, p.Sw, p.Ph, p.Pw,
        p.Dh, p.Dw, p.Out + c * khw * 4, scratch);
    }
  }
});

/**
 * col2im of a GEMM result (Dcol: per image DcolImg bytes, per group DcolGrp, row stride Ldc) into the input gradient
 * Out (XImg bytes per image), per (image, group, chunk of Chunk channels of the group's Cg).
 */
const col2imParams = ['Dcol', 'DcolImg', 'DcolGrp', 'Ldc', 'Out', 'XImg', 'Cg', 'NGrp', 'Chunk', 'OH', ...geometryParams] as const;
const col2imJob = defineJob('conv.col2im', col2imParams, (k, p, t) => {
  const per = p.Chunk, Cg = p.Cg;
  const nCh = Math.ceil(Cg / per);
  const ch = t % nCh;
  const rest = (t / nCh) | 0;
  const g = rest % p.NGrp;
  const img = (rest / p.NGrp) | 0;
  const dcol = p.Dcol + img * p.DcolImg + g * p.DcolGrp;
  const gx = p.Out + img * p.XImg + g * Cg * p.H * p.W * 4;
  k.col2im(dcol, p.Ldc, ch * per, Math.min(Cg, (ch + 1) * per), p.H, p.W, p.KH, p.KW, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, p.OH, p.OW, gx);
});

const isDepthwise = (C: number, O: number, Cg: number, G: number) => Cg === 1 && O === G && C === G;

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Forward convolution of a float32 view with weights w [O, Cg, KH, KW] (ws), or, with flipGroups > 0, the weights of
 * the conv whose stride-1 backward-input this is (see reserveWeights).
 */
function forward(xv: HostView, w: HostView, ws: Shape4, ep: Epilogue | null, cp: Conv2dParams, flipGroups = 0): Float32Array {
  const [N, C, H, W] = xv.shape;
  const [O, Cg, KH, KW] = ws;
  const G = cp.groups, Og = O / G;
  const { OH, OW } = convOut(H, W, KH, KW, cp);
  const Pn = OH * OW;
  if (N * O * Pn === 0) return new Float32Array(0);
  const direct = forwardPlan(C, O, G, H, W, KH, KW, cp, OH, OW);
  if (direct) {
    return forwardDirect(xv, w, flipGroups, O, direct, cp, OH, OW, `conv2d x${fmt(xv.shape)} w${fmt(ws)}`, ep);
  }
  const macs = N * O * Pn * Cg * KH * KW;
  const arena = new Arena(`conv2d x${fmt(xv.shape)} w${fmt(ws)}`);
  const xp = arena.floats(N * C * H * W);
  const geo = geometry(H, W, KH, KW, cp, OW);
  if (isDepthwise(C, O, Cg, G)) {
    const wp = reserveWeights(arena, w, flipGroups);
    const op = arena.floats(N * O * Pn);
    const dw = dwPlan(arena, N * C, H, W, OH, OW, KH, KW, cp);
    const epi = reserveEpilogue(arena, ep, O);
    arena.commit();
    const h = heap();
    gather(xv, h, xp / 4);
    wp.fill(h);
    runJob(dwForwardJob, { ...geo, Planes: N * C, C, Chunk: dw.chunk, NImg: N, OH, X: xp, Wt: wp.at, Gy: 0, Out: op, Flip: 0 },
      dw.nTasks, macs >= PARALLEL_MACS, dw.scratch);
    epi?.run(op, N * O, Pn, Pn);
    return takeOut(op, N * O * Pn);
  }
  const K = Cg * KH * KW, mp = (Og + 3) >> 2, Ppad = ceil8(Pn);
  const wp = reserveWeights(arena, w, flipGroups);
  const ap = arena.floats(G * mp * 4 * K);
  const cbuf = arena.floats(N * G * mp * 4 * Ppad);
  const { plan, scratch, nTasks } = gemmPlan(arena, mp, K, Pn, N * G);
  const epi = reserveEpilogue(arena, ep, O);
  arena.commit();
  const h = heap();
  gather(xv, h, xp / 4);
  wp.fill(h);
  packAParallel(wp.at, Og * K * 4, K, 1, Og, K, ap, mp * K * 16, G, macs >= PARALLEL_MACS);
  runGemmJob('gemm', {
    ...plan, ...geo,
    ABase: ap, AImg: 0, AGrp: mp * K * 16,
    BKind: isPlain(KH, KW, cp) ? 0 : 1, BBase: xp, BImg: C * H * W * 4, BGrp: Cg * H * W * 4, Rs: H * W, Cs: 1,
    CBase: cbuf, CImg: G * mp * 4 * Ppad * 4, CGrp: mp * 4 * Ppad * 4, NImg: N, NGrp: G,
  }, nTasks, macs >= PARALLEL_MACS, scratch);
  // C is [image][group][mp * 4 rows][Ppad]: the epilogue on each block's Og rows, then drop the padding rows and
  // columns and copy out once
  if (epi) for (let q = 0; q < N * G; q++) epi.run(cbuf + q * mp * 4 * Ppad * 4, Og, Ppad, Pn, (q % G) * Og, (q % G + 1) * Og);
  return takeRows(cbuf, N * G, mp * 4 * Ppad, Og, Ppad, Pn);
}

/** A 1x1 stride-1 unpadded conv: B is x itself, a plain matrix (no im2col). */
const isPlain = (KH: number, KW: number, cp: Conv2dParams) =>
  KH === 1 && KW === 1 && cp.stride[0] === 1 && cp.stride[1] === 1 && cp.padding[0] === 0 && cp.padding[1] === 0;

/**
 * Depthwise plan: per-thread scratch for one padded plane (at least minBytes), and chunks of `planes` planes per
 * task.
 */
function dwPlan(arena: Arena, planes: number, H: number, W: number, OH: number, OW: number, KH: number, KW: number,
  cp: Conv2dParams, minBytes = 0): { scratch: Scratch; chunk: number; nTasks: number } {
  const rows = Math.max(H, OH * cp.stride[0]) + 2 * cp.padding[0] + KH * cp.dilation[0] + 4;
  const cols = Math.max(W, OW * cp.stride[1]) + 2 * cp.padding[1] + KW * cp.dilation[1] + 8;
  const per = Math.max(rows * cols * 4, minBytes);
  const scratch = { scratch: arena.alloc(per * threadCount()), scratchPer: per };
  const chunk = Math.max(1, Math.floor(planes / (8 * threadCount())));
  return { scratch, chunk, nTasks: Math.ceil(planes / chunk) };
}

export function conv2d(x: HostView, w: HostView, bias: HostView | null, cp: Conv2dParams): Storage {
  if (x.data instanceof Float64Array) return referenceKernels.conv2d(x, w, bias, cp);
  return forward(x, w, w.shape as unknown as Shape4, bias ? { bias: contiguousF32(bias), act: null } : null, cp);
}

/** conv2d with its activation applied in the arena (Backend.conv2dAct); float64 through the reference, then act. */
export function conv2dAct(x: HostView, w: HostView, bias: HostView | null, cp: Conv2dParams, act: ConvAct): Storage {
  if (x.data instanceof Float64Array) {
    const y = referenceKernels.conv2d(x, w, bias, cp);
    const v = { data: y, shape: [y.length], strides: [1], offset: 0 };
    return act === 'relu' ? referenceKernels.unary('relu', v) : referenceKernels.clamp(v, 0, 6);
  }
  return forward(x, w, w.shape as unknown as Shape4, { bias: bias ? contiguousF32(bias) : null, act }, cp);
}

export function conv2dBackwardInput(gy: HostView, wv: HostView, xShape: readonly number[], cp: Conv2dParams): Storage {
  if (gy.data instanceof Float64Array) return referenceKernels.conv2dBackwardInput(gy, wv, xShape, cp);
  const [N, C, H, W] = xShape;
  const [O, Cg, KH, KW] = wv.shape;
  const [, , OH, OW] = gy.shape;
  const G = cp.groups, Og = O / G;
  const ph = cp.dilation[0] * (KH - 1) - cp.padding[0], pw = cp.dilation[1] * (KW - 1) - cp.padding[1];
  const stride1 = cp.stride[0] === 1 && cp.stride[1] === 1;
  if (stride1 && ph >= 0 && pw >= 0) {
    // gx = conv(gy, flip(w) with in/out swapped per group, padding d*(k-1) - p); forward flips w in its arena
    return forward(gy, wv, [C, Og, KH, KW], null, { stride: [1, 1], padding: [ph, pw], dilation: cp.dilation, groups: G }, G);
  }
  const w = contiguousF32(wv);
  if (isDepthwise(C, O, Cg, G)) return dwBackInputScatter(gy, w, [N, C, H, W], [O, Cg, KH, KW], cp);
  return backInputCol2im(gy, w, [N, C, H, W], [O, Cg, KH, KW], OH, OW, cp);
}

/** Depthwise backward-input by scatter into a padded plane (strides > 1, or padding beyond d*(k-1)). */
function dwBackInputScatter(gy: HostView, w: Float32Array, xs: Shape4, ws: Shape4, cp: Conv2dParams): Float32Array {
  const [N, C, H, W] = xs;
  const [, , KH, KW] = ws;
  const [, , OH, OW] = gy.shape;
  if (N * C * H * W === 0) return new Float32Array(0);
  const arena = new Arena(`conv2dBackwardInput gy${fmt(gy.shape)} w${fmt(ws)}`);
  const gp = arena.floats(N * C * OH * OW);
  const wp = arena.floats(C * KH * KW);
  const op = arena.floats(N * C * H * W);
  const rows = (OH - 1) * cp.stride[0] + (KH - 1) * cp.dilation[0] + H + cp.padding[0] + 2;
  const cols = (OW - 1) * cp.stride[1] + (KW - 1) * cp.dilation[1] + W + cp.padding[1] + 2;
  const dw = dwPlan(arena, N * C, H, W, OH, OW, KH, KW, cp, rows * cols * 4);
  arena.commit();
  const h = heap();
  gather(gy, h, gp / 4);
  h.set(w, wp / 4);
  const geo = geometry(H, W, KH, KW, cp, OW);
  runJob(dwBackInputJob, { ...geo, Planes: N * C, C, Chunk: dw.chunk, NImg: N, OH, X: gp, Wt: wp, Gy: 0, Out: op, Flip: 0 },
    dw.nTasks, N * C * OH * OW * KH * KW >= PARALLEL_MACS, dw.scratch);
  return takeOut(op, N * C * H * W);
}

/** Backward-input by GEMM (w^T gy per group, into columns) then col2im, a few images at a time. */
function backInputCol2im(gy: HostView, w: Float32Array, xs: Shape4, ws: Shape4, OH: number, OW: number, cp: Conv2dParams): Float32Array {
  const [N, C, H, W] = xs;
  const [O, Cg, KH, KW] = ws;
  const G = cp.groups, Og = O / G;
  const K = Cg * KH * KW, mp = (K + 3) >> 2, Pn = OH * OW, Ppad = ceil8(Pn);
  if (N * C * H * W === 0) return new Float32Array(0);
  // several rounds fill this; one returns its arena's copy
  let gx: Float32Array | null = null;
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
    const { plan, scratch, nTasks } = gemmPlan(arena, mp, Og, Pn, nb * G);
    arena.commit();
    const h = heap();
    h.set(w, wp / 4);
    gather({ ...gy, shape: [nb, ...gy.shape.slice(1)], offset: gy.offset + n0 * gy.strides[0] }, h, gp / 4);
    // A_g = w_g^T: rows are the taps (c, kh, kw), columns the group's output channels
    packAParallel(wp, Og * K * 4, 1, K, K, Og, ap, mp * Og * 16, G, nb * O * Pn * K >= PARALLEL_MACS);
    const macs = nb * O * Pn * K;
    const dcolGrp = mp * 4 * Ppad * 4, dcolImg = G * dcolGrp;
    runGemmJob('gemm', {
      ...plan, ...NO_GEOMETRY,
      ABase: ap, AImg: 0, AGrp: mp * Og * 16,
      BKind: 0, BBase: gp, BImg: O * Pn * 4, BGrp: Og * Pn * 4, Rs: Pn, Cs: 1,
      CBase: dcol, CImg: dcolImg, CGrp: dcolGrp, NImg: nb, NGrp: G,
    }, nTasks, macs >= PARALLEL_MACS, scratch);
    // col2im: tasks over (image, group, channel chunk)
    const chunk = Math.max(1, Math.ceil(Cg / Math.max(1, Math.ceil((4 * threadCount()) / (nb * G)))));
    runJob(col2imJob, {
      ...geometry(H, W, KH, KW, cp, OW), Dcol: dcol, DcolImg: dcolImg, DcolGrp: dcolGrp, Ldc: Ppad, Out: gxp, XImg: C * H * W * 4,
      Cg, NGrp: G, Chunk: chunk, OH,
    }, nb * G * Math.ceil(Cg / chunk), macs >= PARALLEL_MACS);
    if (nb === N) return takeOut(gxp, N * C * H * W);
    (gx ??= new Float32Array(N * C * H * W)).set(takeOut(gxp, nb * C * H * W), n0 * C * H * W);
  }
  return gx!;
}

export function conv2dBackwardWeight(gy: HostView, xv: HostView, wShape: readonly number[], cp: Conv2dParams): Storage {
  if (gy.data instanceof Float64Array) return referenceKernels.conv2dBackwardWeight(gy, xv, wShape, cp);
  const [N, C, H, W] = xv.shape;
  const [O, Cg, KH, KW] = wShape;
  const [, , OH, OW] = gy.shape;
  const G = cp.groups, Og = O / G, Pn = OH * OW;
  if (O * Cg * KH * KW === 0 || N * Pn === 0) return new Float32Array(O * Cg * KH * KW);
  if (directWeight(C, O, G)) return backWeightDirect(gy, xv, O, KH, KW, cp, `conv2dBackwardWeight gy${fmt(gy.shape)} x${fmt(xv.shape)} w${fmt(wShape)}`);
  const arena = new Arena(`conv2dBackwardWeight gy${fmt(gy.shape)} x${fmt(xv.shape)} w${fmt(wShape)}`);
  const xp = arena.floats(N * C * H * W);
  const gp = arena.floats(N * O * Pn);
  const geo = geometry(H, W, KH, KW, cp, OW);
  const macs = N * O * Pn * Cg * KH * KW;
  if (isDepthwise(C, O, Cg, G)) {
    const op = arena.floats(O * KH * KW);
    // tasks over chunks of channels (each reduces over every image)
    const { scratch, chunk, nTasks } = dwPlan(arena, C, H, W, OH, OW, KH, KW, cp);
    arena.commit();
    const h = heap();
    gather(xv, h, xp / 4);
    gather(gy, h, gp / 4);
    h.fill(0, op / 4, op / 4 + O * KH * KW);
    runJob(dwBackWeightJob, { ...geo, Planes: N * C, C, Chunk: chunk, NImg: N, OH, X: xp, Wt: 0, Gy: gp, Out: op, Flip: 0 },
      nTasks, macs >= PARALLEL_MACS, scratch);
    return takeOut(op, O * KH * KW);
  }
  const K = Cg * KH * KW, mp = (Og + 3) >> 2, Kpad = ceil8(K), Kt = N * Pn;
  const ap = arena.floats(G * mp * 4 * Kt);
  const cbuf = arena.floats(G * mp * 4 * Kpad);
  // rows: output channels; columns: taps; reduction: every pixel of every image
  const { plan, scratch, nTasks } = gemmPlan(arena, mp, Kt, K, G);
  arena.commit();
  const h = heap();
  gather(xv, h, xp / 4);
  gather(gy, h, gp / 4);
  for (let g = 0; g < G; g++)
    for (let n = 0; n < N; n++) packABlocks(gp + (n * O + g * Og) * Pn * 4, Pn, 1, Og, Pn, ap + g * mp * Kt * 16, n * Pn);
  // the plan's reduction is every pixel of every image, but each image's B is packed on its own: K is one image's
  runGemmJob('weightGrad', {
    ...plan, ...geo, K: Pn,
    ABase: ap, AImg: 0, AGrp: mp * Kt * 16,
    BKind: isPlain(KH, KW, cp) ? 0 : 1, BBase: xp, BImg: C * H * W * 4, BGrp: Cg * H * W * 4, Rs: 1, Cs: H * W,
    CBase: cbuf, CImg: 0, CGrp: mp * 4 * Kpad * 4, NImg: N, NGrp: G,
  }, nTasks, macs >= PARALLEL_MACS, scratch);
  return takeRows(cbuf, G, mp * 4 * Kpad, Og, Kpad, K);
}
