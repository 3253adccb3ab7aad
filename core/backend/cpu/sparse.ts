// Inference-only sparse kernels of the cpu backend (Backend.sparseConv2d / sparseLinear) for unstructured-sparse
// weights in CSR form (SparseWeight): the work is nonzeros x pixels instead of weights x pixels.
// - conv (groups 1, any kernel, stride, padding, dilation): the images are padded and phase-split by padPhases, as
//   for the direct convolution (conv-direct.ts plan), one task per image; then sparseConv (kernels/sparse.as) per
//   (image, chunk of output channels), each nonzero a multiply-add of 32 pixels at its tap's offset. With few images
//   the output channels are cut into enough chunks to feed every thread (batch 1 included).
// - linear: x [N, C] transposed to [C, N] is the same loop with one "row" of N pixels and tap offsets c * N (SpMM).
// The tap offsets of a weight depend on the input's geometry; they are cached per (weight, geometry).

import { ShapeError, fmtShape } from '../../errors.js';
import type { Conv2dParams, ConvAct, SparseWeight, HostView } from '../types.js';
import { convOut } from '../reference.js';
import { plan, reserveEpilogue, type Plan } from './conv-direct.js';
import { PARALLEL_MACS } from './gemm.js';
import { defineJob } from './jobs.js';
import { gather } from './strided.js';
import { runJob, threadCount } from './threads.js';
import { Arena, heap, takeOut, wasm } from './wasm.js';

/** sparseConv reads up to 32 floats past a tap's last pixel (the dropped lanes of the last tile). */
const SLACK = 32;
/** Per thread: sparseConv's 256 bytes of tile and lane map. */
const SCRATCH_PER = 256;

const padJob = defineJob('sparse.pad', ['X', 'XImg', 'C', 'H', 'W', 'Sh', 'Sw', 'Na', 'Nb', 'Ph', 'Pw', 'Hq', 'Wq', 'Xs', 'XsImg'], (k, p, t) => {
  k.padPhases(p.X + t * p.XImg, p.C, p.H, p.W, p.Sh, p.Sw, p.Na, p.Nb, p.Ph, p.Pw, p.Hq, p.Wq, p.Xs + t * p.XsImg);
});

const convParams = ['Xs', 'XsImg', 'Rows', 'Offs', 'Vals', 'Bias', 'O', 'OChunk', 'OChunks', 'OH', 'OW', 'Wq', 'Out', 'OutImg'] as const;
const convJob = defineJob('sparse.conv', convParams, (k, p, t, scratch) => {
  const img = (t / p.OChunks) | 0, o0 = (t % p.OChunks) * p.OChunk;
  k.sparseConv(p.Xs + img * p.XsImg, p.Rows, p.Offs, p.Vals, p.Bias, o0, Math.min(p.O, o0 + p.OChunk), p.OH, p.OW, p.Wq, p.Out + img * p.OutImg, scratch);
});

interface Geometry { pl: Plan; offs: Int32Array }
const geometries = new WeakMap<SparseWeight, Map<string, Geometry>>();

/** The plan of w's taps for this input and each nonzero's byte offset (cached per weight and input geometry). */
function geometry(w: SparseWeight, H: number, W: number, p: Conv2dParams, OH: number, OW: number): Geometry {
  let m = geometries.get(w);
  if (!m) geometries.set(w, (m = new Map()));
  const key = `${H},${W},${p.stride},${p.padding},${p.dilation}`;
  let g = m.get(key);
  if (!g) {
    const pl = plan(w.C, H, W, w.KH, w.KW, p, OH, OW);
    const offs = new Int32Array(w.taps.length);
    for (let j = 0; j < offs.length; j++) offs[j] = pl.off[w.taps[j]];
    m.set(key, (g = { pl, offs }));
  }
  return g;
}

/** Output channels per task: all of them, unless there are too few images to give every thread several tasks. */
function oChunk(O: number, images: number): number {
  const want = 4 * threadCount();
  return images >= want ? O : Math.max(1, Math.ceil(O / Math.ceil(want / images)));
}

/** Copy the CSR arrays and the bias into the arena (reserved before commit, filled after). */
function reserveWeight(arena: Arena, w: SparseWeight, offs: Int32Array, bias: HostView | null) {
  const rows = arena.alloc((w.O + 1) * 4), off = arena.alloc(offs.length * 4 + 4), vals = arena.floats(w.vals.length + 1);
  const b = bias ? arena.floats(w.O) : 0;
  return {
    rows, off, vals, b,
    fill(h: Float32Array) {
      new Int32Array(h.buffer, rows, w.O + 1).set(w.rows);
      new Int32Array(h.buffer, off, offs.length).set(offs);
      h.set(w.vals, vals / 4);
      if (bias) gather(bias, h, b / 4);
    },
  };
}

function checkBias(bias: HostView | null, O: number, label: string) {
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== O)) throw new ShapeError(`${label}: bias must have shape [${O}], got ${fmtShape(bias.shape)}`);
}

export function sparseConv2d(x: HostView, w: SparseWeight, bias: HostView | null, p: Conv2dParams, act?: ConvAct): Float32Array {
  const label = `sparseConv2d(input ${fmtShape(x.shape)}, weight [${w.O}, ${w.C}, ${w.KH}, ${w.KW}])`;
  if (!(x.data instanceof Float32Array)) throw new ShapeError(`${label}: the sparse kernels take float32 input`);
  if (p.groups !== 1) throw new ShapeError(`${label}: the sparse kernels take groups = 1, got ${p.groups}`);
  const [N, C, H, W] = x.shape;
  if (x.shape.length !== 4 || C !== w.C) throw new ShapeError(`${label}: expected input [N, ${w.C}, H, W]`);
  checkBias(bias, w.O, label);
  const { OH, OW } = convOut(H, W, w.KH, w.KW, p);
  if (OH < 1 || OW < 1) throw new ShapeError(`${label}: output would be empty (${OH}x${OW})`);
  const { pl, offs } = geometry(w, H, W, p, OH, OW);
  const O = w.O, xsImg = pl.image + SLACK;
  const arena = new Arena(label);
  // x with 4 floats of slack: padPhases copies rows 4 floats at a time
  const xp = arena.floats(N * C * H * W + 4);
  const xs = arena.floats(N * xsImg);
  const wt = reserveWeight(arena, w, offs, bias);
  const out = arena.floats(N * O * OH * OW);
  const scratch = arena.alloc(SCRATCH_PER * threadCount());
  // the bias is added by sparseConv itself; the activation after it, in place
  const epi = reserveEpilogue(arena, act ? { bias: null, act } : null, O);
  arena.commit();
  const h = heap();
  gather(x, h, xp / 4);
  wt.fill(h);
  const macs = offs.length * OH * pl.Wq;
  runJob(padJob, {
    X: xp, XImg: C * H * W * 4, C, H, W, Sh: p.stride[0], Sw: p.stride[1], Na: pl.na, Nb: pl.nb, Ph: p.padding[0], Pw: p.padding[1],
    Hq: pl.Hq, Wq: pl.Wq, Xs: xs, XsImg: xsImg * 4,
  }, N, N * C * H * W >= PARALLEL_MACS / 16);
  const chunk = oChunk(O, N), chunks = Math.ceil(O / chunk);
  runJob(convJob, {
    Xs: xs, XsImg: xsImg * 4, Rows: wt.rows, Offs: wt.off, Vals: wt.vals, Bias: wt.b, O, OChunk: chunk, OChunks: chunks,
    OH, OW, Wq: pl.Wq, Out: out, OutImg: O * OH * OW * 4,
  }, N * chunks, N * macs >= PARALLEL_MACS, { scratch, scratchPer: SCRATCH_PER });
  epi?.run(out, N * O, OH * OW, OH * OW);
  return takeOut(out, N * O * OH * OW);
}

const linearOffs = new WeakMap<SparseWeight, Map<number, Int32Array>>();

export function sparseLinear(x: HostView, w: SparseWeight, bias: HostView | null): Float32Array {
  const label = `sparseLinear(input ${fmtShape(x.shape)}, weight [${w.O}, ${w.C}])`;
  if (!(x.data instanceof Float32Array)) throw new ShapeError(`${label}: the sparse kernels take float32 input`);
  if (x.shape.length !== 2 || x.shape[1] !== w.C || w.KH * w.KW !== 1) throw new ShapeError(`${label}: expected input [N, ${w.C}] and a [O, C] weight`);
  checkBias(bias, w.O, label);
  const [N, C] = x.shape, O = w.O;
  let m = linearOffs.get(w);
  if (!m) linearOffs.set(w, (m = new Map()));
  let offs = m.get(N);
  if (!offs) {
    offs = new Int32Array(w.taps.length);
    for (let j = 0; j < offs.length; j++) offs[j] = w.taps[j] * N * 4;
    m.set(N, offs);
  }
  const arena = new Arena(label);
  const xp = arena.floats(N * C);
  const xs = arena.floats(C * N + SLACK);
  const wt = reserveWeight(arena, w, offs, bias);
  const out = arena.floats(O * N);
  const scratch = arena.alloc(SCRATCH_PER * threadCount());
  arena.commit();
  const h = heap();
  gather(x, h, xp / 4);
  wt.fill(h);
  // xs = x^T [C, N]: a [C] x [N] "image" of one row of N pixels
  const x0 = xp / 4, t0 = xs / 4;
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) h[t0 + c * N + n] = h[x0 + n * C + c];
  const chunk = oChunk(O, 1), chunks = Math.ceil(O / chunk);
  runJob(convJob, {
    Xs: xs, XsImg: 0, Rows: wt.rows, Offs: wt.off, Vals: wt.vals, Bias: wt.b, O, OChunk: chunk, OChunks: chunks,
    OH: 1, OW: N, Wq: N, Out: out, OutImg: 0,
  }, chunks, offs.length * N >= PARALLEL_MACS, { scratch, scratchPer: SCRATCH_PER });
  // out [O, N] -> [N, O]
  const y = new Float32Array(N * O), o0 = out / 4;
  for (let o = 0; o < O; o++) for (let n = 0; n < N; n++) y[n * O + o] = h[o0 + o * N + n];
  return y;
}
