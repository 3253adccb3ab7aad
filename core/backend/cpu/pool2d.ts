// Pooling kernels of the cpu backend (max, average, adaptive average; forward and backward), plain JavaScript on the
// main thread: each window's clipped bounds are computed once per output cell instead of testing every tap. Same
// semantics as the reference (PyTorch's divisor and ceil-mode rules, NaN wins a max window); float32 and float64.
// Large float32 max pooling (ResNet's stem) runs the same loops as wasm kernels (kernels/pool.as) split by planes
// across the pool, on a copy in the arena: bit for bit the JavaScript results.

import type { Storage } from '../../dtype.js';
import { poolOut } from '../reference.js';
import type { Pool2dParams, HostView } from '../types.js';
import { alloc, contiguous } from './elementwise.js';
import { wasmWorthIt } from './elementwise-wasm.js';
import { defineJob } from './jobs.js';
import { PARALLEL_ELEMENTS } from './norm.js';
import { gather, isContiguous, numelOf } from './strided.js';
import { runJob, threadCount } from './threads.js';
import { Arena, heap, takeOut, takeOutInt32, wasm } from './wasm.js';

const flat = (v: HostView): Storage => (isContiguous(v) && v.offset === 0 ? v.data : contiguous(v));

/** Max pooling of planes [t * Chunk, (t + 1) * Chunk) of X into Out and Arg (int32). */
const maxPoolJob = defineJob('pool.max', ['X', 'H', 'W', 'OH', 'OW', 'KH', 'KW', 'Sh', 'Sw', 'Ph', 'Pw', 'Dh', 'Dw', 'Planes', 'Chunk', 'Out', 'Arg'], (k, p, t) => {
  k.maxPoolPlanes(p.X, p.H, p.W, p.OH, p.OW, p.KH, p.KW, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, t * p.Chunk, Math.min(p.Planes, (t + 1) * p.Chunk), p.Out, p.Arg);
});

/** Max pooling without argmax (inference) of planes [t * Chunk, (t + 1) * Chunk): each thread's row buffer in its scratch. */
const maxPoolNoArgJob = defineJob('pool.maxNoArg', ['X', 'H', 'W', 'OH', 'OW', 'KH', 'KW', 'Sh', 'Sw', 'Ph', 'Pw', 'Dh', 'Dw', 'Planes', 'Chunk', 'Out'], (k, p, t, scratch) => {
  k.maxPoolPlanesNoArg(p.X, p.H, p.W, p.OH, p.OW, p.KH, p.KW, p.Sh, p.Sw, p.Ph, p.Pw, p.Dh, p.Dw, t * p.Chunk, Math.min(p.Planes, (t + 1) * p.Chunk), p.Out, scratch);
});

/** Max-pooling backward of planes [t * Chunk, (t + 1) * Chunk): Gy and Arg (OHW per plane) into Gx (HW per plane). */
const maxPoolBackJob = defineJob('pool.maxBack', ['Gy', 'Arg', 'OHW', 'HW', 'Planes', 'Chunk', 'Gx'], (k, p, t) => {
  k.maxPoolBackPlanes(p.Gy, p.Arg, p.OHW, p.HW, t * p.Chunk, Math.min(p.Planes, (t + 1) * p.Chunk), p.Gx);
});

/** Planes per task of a pooling job over `planes` planes of `per` elements each, and whether it runs in parallel. */
function planeSplit(planes: number, per: number): { chunk: number; tasks: number; parallel: boolean } {
  const parallel = planes * per >= PARALLEL_ELEMENTS && threadCount() > 1;
  const chunk = parallel ? Math.max(1, Math.ceil(planes / (4 * threadCount()))) : planes;
  return { chunk, tasks: Math.ceil(planes / chunk), parallel };
}

export function maxPool2d(xv: HostView, p: Pool2dParams): { out: Storage; argmax: Int32Array } {
  const [N, C, H, W] = xv.shape;
  const { OH, OW } = poolOut(H, W, p);
  if (wasmWorthIt(xv.data, numelOf(xv.shape)) && N * C * OH * OW > 0) {
    const arena = new Arena(`maxPool2d x[${xv.shape.join(', ')}]`);
    const xp = arena.floats(N * C * H * W), op = arena.floats(N * C * OH * OW), ap = arena.floats(N * C * OH * OW);
    arena.commit();
    gather(xv, heap(), xp / 4);
    const s = planeSplit(N * C, H * W);
    runJob(maxPoolJob, {
      X: xp, H, W, OH, OW, KH: p.kernelSize[0], KW: p.kernelSize[1], Sh: p.stride[0], Sw: p.stride[1], Ph: p.padding[0],
      Pw: p.padding[1], Dh: p.dilation[0], Dw: p.dilation[1], Planes: N * C, Chunk: s.chunk, Out: op, Arg: ap,
    }, s.tasks, s.parallel);
    return { out: takeOut(op, N * C * OH * OW), argmax: takeOutInt32(ap, N * C * OH * OW) };
  }
  const x = flat(xv);
  const [KH, KW] = p.kernelSize, [sh, sw] = p.stride, [ph, pw] = p.padding, [dh, dw] = p.dilation;
  const out = alloc(x, N * C * OH * OW);
  const argmax = new Int32Array(N * C * OH * OW);
  let o = 0;
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * sh - ph;
      for (let ow = 0; ow < OW; ow++, o++) {
        const w0 = ow * sw - pw;
        let best = -Infinity;
        let bi = -1;
        for (let kh = 0; kh < KH; kh++) {
          const ih = h0 + kh * dh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = w0 + kw * dw;
            if (iw < 0 || iw >= W) continue;
            const v = x[base + ih * W + iw];
            if (v > best || bi < 0 || v !== v) {
              best = v;
              bi = ih * W + iw;
              if (v !== v) break;
            }
          }
        }
        out[o] = best;
        argmax[o] = bi;
      }
    }
  }
  return { out, argmax };
}

/**
 * Max pooling for inference (Backend.maxPool2dInference): the output only, no argmax. Large float32 inputs run
 * kernels/pool.as maxPoolPlanesNoArg (a SIMD max over each window's rows, then over its columns) across the pool;
 * anything else is maxPool2d's output.
 */
export function maxPool2dInference(xv: HostView, p: Pool2dParams): Storage {
  const [N, C, H, W] = xv.shape;
  const { OH, OW } = poolOut(H, W, p);
  if (!wasmWorthIt(xv.data, numelOf(xv.shape)) || N * C * OH * OW === 0) return maxPool2d(xv, p).out;
  const arena = new Arena(`maxPool2dInference x[${xv.shape.join(', ')}]`);
  // 4 floats of slack: the row pass reads whole v128s
  const xp = arena.floats(N * C * H * W + 4), op = arena.floats(N * C * OH * OW);
  const per = Math.ceil((((W + 3) & ~3) * 4) / 64) * 64;
  const scratch = { scratch: arena.alloc(per * threadCount()), scratchPer: per };
  arena.commit();
  gather(xv, heap(), xp / 4);
  const s = planeSplit(N * C, H * W);
  runJob(maxPoolNoArgJob, {
    X: xp, H, W, OH, OW, KH: p.kernelSize[0], KW: p.kernelSize[1], Sh: p.stride[0], Sw: p.stride[1], Ph: p.padding[0],
    Pw: p.padding[1], Dh: p.dilation[0], Dw: p.dilation[1], Planes: N * C, Chunk: s.chunk, Out: op,
  }, s.tasks, s.parallel, scratch);
  return takeOut(op, N * C * OH * OW);
}

export function maxPool2dBackward(gyv: HostView, argmax: Int32Array, xShape: readonly number[]): Storage {
  const [N, C, H, W] = xShape;
  const [, , OH, OW] = gyv.shape;
  if (wasmWorthIt(gyv.data, N * C * H * W) && N * C * OH * OW > 0) {
    const arena = new Arena(`maxPool2dBackward gy[${gyv.shape.join(', ')}]`);
    const gp = arena.floats(N * C * OH * OW), ap = arena.floats(N * C * OH * OW), xp = arena.floats(N * C * H * W);
    arena.commit();
    const h = heap();
    gather(gyv, h, gp / 4);
    new Int32Array(h.buffer, ap, N * C * OH * OW).set(argmax);
    const s = planeSplit(N * C, H * W);
    runJob(maxPoolBackJob, { Gy: gp, Arg: ap, OHW: OH * OW, HW: H * W, Planes: N * C, Chunk: s.chunk, Gx: xp }, s.tasks, s.parallel);
    return takeOut(xp, N * C * H * W);
  }
  const gy = flat(gyv);
  const gx = alloc(gy, N * C * H * W);
  const HW = H * W, OHW = OH * OW;
  for (let nc = 0; nc < N * C; nc++) {
    const gb = nc * HW, ob = nc * OHW;
    for (let i = 0; i < OHW; i++) {
      const a = argmax[ob + i];
      if (a >= 0) gx[gb + a] += gy[ob + i]; // -1: a window wholly in the padding
    }
  }
  return gx;
}

/** For every output cell: clipped window [hs, he) x [ws, we) and 1 / divisor (PyTorch's rules). */
function avgWindows(H: number, W: number, OH: number, OW: number, p: Pool2dParams) {
  const n = OH * OW;
  const hs = new Int32Array(n), he = new Int32Array(n), ws = new Int32Array(n), we = new Int32Array(n);
  const inv = new Float64Array(n);
  const [KH, KW] = p.kernelSize;
  for (let oh = 0; oh < OH; oh++)
    for (let ow = 0; ow < OW; ow++) {
      const i = oh * OW + ow;
      const h0 = oh * p.stride[0] - p.padding[0], w0 = ow * p.stride[1] - p.padding[1];
      const h1 = Math.min(h0 + KH, H + p.padding[0]), w1 = Math.min(w0 + KW, W + p.padding[1]);
      hs[i] = Math.max(h0, 0); ws[i] = Math.max(w0, 0);
      he[i] = Math.min(h1, H); we[i] = Math.min(w1, W);
      inv[i] = 1 / (p.countIncludePad ? (h1 - h0) * (w1 - w0) : (he[i] - hs[i]) * (we[i] - ws[i]));
    }
  return { hs, he, ws, we, inv };
}

function adaptiveWindows(H: number, W: number, OH: number, OW: number) {
  const n = OH * OW;
  const hs = new Int32Array(n), he = new Int32Array(n), ws = new Int32Array(n), we = new Int32Array(n);
  const inv = new Float64Array(n);
  for (let oh = 0; oh < OH; oh++)
    for (let ow = 0; ow < OW; ow++) {
      const i = oh * OW + ow;
      hs[i] = Math.floor((oh * H) / OH); he[i] = Math.ceil(((oh + 1) * H) / OH);
      ws[i] = Math.floor((ow * W) / OW); we[i] = Math.ceil(((ow + 1) * W) / OW);
      inv[i] = 1 / ((he[i] - hs[i]) * (we[i] - ws[i]));
    }
  return { hs, he, ws, we, inv };
}

type Windows = ReturnType<typeof avgWindows>;

function windowMean(x: Storage, shape: readonly number[], OH: number, OW: number, win: Windows): Storage {
  const [N, C, H, W] = shape;
  const { hs, he, ws, we, inv } = win;
  const out = alloc(x, N * C * OH * OW);
  const n = OH * OW;
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * H * W;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let ih = hs[i]; ih < he[i]; ih++) {
        const row = base + ih * W;
        for (let iw = ws[i]; iw < we[i]; iw++) s += x[row + iw];
      }
      out[nc * n + i] = s * inv[i];
    }
  }
  return out;
}

function windowSpread(gy: Storage, xShape: readonly number[], n: number, win: Windows): Storage {
  const [N, C, H, W] = xShape;
  const { hs, he, ws, we, inv } = win;
  const gx = alloc(gy, N * C * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * H * W;
    for (let i = 0; i < n; i++) {
      const g = gy[nc * n + i] * inv[i];
      for (let ih = hs[i]; ih < he[i]; ih++) {
        const row = base + ih * W;
        for (let iw = ws[i]; iw < we[i]; iw++) gx[row + iw] += g;
      }
    }
  }
  return gx;
}

export function avgPool2d(xv: HostView, p: Pool2dParams): Storage {
  const [, , H, W] = xv.shape;
  const { OH, OW } = poolOut(H, W, p);
  return windowMean(flat(xv), xv.shape, OH, OW, avgWindows(H, W, OH, OW, p));
}

export function avgPool2dBackward(gyv: HostView, xShape: readonly number[], p: Pool2dParams): Storage {
  const [, , OH, OW] = gyv.shape;
  return windowSpread(flat(gyv), xShape, OH * OW, avgWindows(xShape[2], xShape[3], OH, OW, p));
}

export function adaptiveAvgPool2d(xv: HostView, [OH, OW]: readonly [number, number]): Storage {
  const [, , H, W] = xv.shape;
  return windowMean(flat(xv), xv.shape, OH, OW, adaptiveWindows(H, W, OH, OW));
}

export function adaptiveAvgPool2dBackward(gyv: HostView, xShape: readonly number[]): Storage {
  const [, , OH, OW] = gyv.shape;
  return windowSpread(flat(gyv), xShape, OH * OW, adaptiveWindows(xShape[2], xShape[3], OH, OW));
}
