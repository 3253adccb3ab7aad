// 2-D convolution on gpu.js as im2col + GEMM, one sample at a time (kernels then depend on the per-sample shape
// only, and the column buffer stays bounded). The column matrix cols [C*KH*KW][OH*OW] is a pipeline output: on
// WebGL it stays a texture that the GEMM kernel reads directly, never coming back to the host.
// - forward:         cols = im2col(x_n);  y_n[o][p] = bias[o] + sum_k w[o][k] cols[g*Kg + k][p]   (p = oh*OW + ow)
// - backward weight: cols = im2col(x_n);  gw[o][k] += sum_p gy_n[o][p] cols[g*Kg + k][p]   (summed over n on host)
// - backward input:  dcols[r][p] = sum_{o in group(r)} w[o][r - g*Kg] gy_n[o][p];  gx_n = col2im(dcols)
// with Kg = C/groups*KH*KW and g the group of o (or of row r). Stride, padding and dilation live in im2col/col2im
// only; a 1x1, stride-1, unpadded conv skips im2col (cols is x_n itself).
//
// Two layouts for the spatial dims. 'flat': 2-D outputs [OH*OW, rows], a thread splits p into (oh, ow); fastest
// (gpu.js reads a 2-D argument with less index work: 1.3x on webasm, 2x on WebGL, 6x in cpu mode here). 'split':
// 3-D outputs [OW, OH, rows] for images whose OH*OW exceeds a texture side (gpu.js maps a 2-D output onto a texture
// of the same width) or the exact-quotient range.

import type { Conv2dParams, View } from '../types.js';
import { convOut } from '../reference.js';
import { MAX_EXACT, MAX_QUOTIENT, asInput, flatF32, readFlat, type KernelCache } from './kernels.js';
import type { KernelArg } from './loader.js';

interface Geometry {
  C: number; H: number; W: number; O: number; KH: number; KW: number; OH: number; OW: number;
  Og: number; Kg: number; P: number; R: number;
  /** 'flat' (2-D, p = oh*OW + ow) or 'split' (3-D, oh and ow from thread.y and thread.x). */
  flat: boolean;
}

function geometry(cache: KernelCache, xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): Geometry {
  const [, C, H, W] = xShape;
  const [O, Cg, KH, KW] = wShape;
  const { OH, OW } = convOut(H, W, KH, KW, p);
  const [P, R] = [OH * OW, C * KH * KW];
  const flat = P < MAX_QUOTIENT && H * W < MAX_QUOTIENT && [[P, R], [P, O], [H * W, C]].every((d) => cache.fitsTexture(d));
  return { C, H, W, O, KH, KW, OH, OW, Og: O / p.groups, Kg: Cg * KH * KW, P, R, flat };
}

/** Whether the kernels' index arithmetic is exact and their outputs fit textures for this conv (else delegate). */
export function convFits(cache: KernelCache, xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): boolean {
  const g = geometry(cache, xShape, wShape, p);
  return (
    g.P > 0 && g.R * g.P < MAX_EXACT && g.O * g.P < MAX_EXACT && g.C * g.H * g.W < MAX_EXACT &&
    g.R < MAX_QUOTIENT && g.O < MAX_QUOTIENT &&
    [[g.OW, g.OH, g.R], [g.OW, g.OH, g.O], [g.Kg, g.O], [g.W, g.H, g.C]].every((d) => cache.fitsTexture(d))
  );
}

const paramKey = (g: Geometry, p: Conv2dParams) =>
  `${g.C}x${g.H}x${g.W}:${g.O}x${g.Kg / (g.KH * g.KW)}x${g.KH}x${g.KW}:s${p.stride}:p${p.padding}:d${p.dilation}:g${p.groups}:${g.flat ? 'flat' : 'split'}`;

const constants = (g: Geometry, p: Conv2dParams) => ({
  C: g.C, H: g.H, W: g.W, O: g.O, KH: g.KH, KW: g.KW, OH: g.OH, OW: g.OW, Og: g.Og, Kg: g.Kg, P: g.P,
  SH: p.stride[0], SW: p.stride[1], PH: p.padding[0], PW: p.padding[1], DH: p.dilation[0], DW: p.dilation[1],
});

/** Output dims over a (rows, H, W) grid in either layout. */
const grid = (g: Geometry, rows: number, h: number, w: number) => (g.flat ? [h * w, rows] : [w, h, rows]);

/** Kernel prelude: the thread's row and its position (y, x) on an (h, w) grid named by the constants. */
const position = (g: Geometry, row: string, y: string, x: string, w: string) =>
  g.flat
    ? `const q = this.thread.x;
  const ${row} = this.thread.y;
  const ${y} = Math.floor((q + 0.5) / this.constants.${w});
  const ${x} = q - ${y} * this.constants.${w};`
    : `const ${x} = this.thread.x;
  const ${y} = this.thread.y;
  const ${row} = this.thread.z;`;

/** Reading element (row, oh, ow) of a cols-shaped argument. */
const colAt = (g: Geometry, name: string, row: string) =>
  g.flat ? `${name}[${row}][oh * this.constants.OW + ow]` : `${name}[${row}][oh][ow]`;

// cols[r][oh, ow]: r = (ci*KH + kh)*KW + kw; zero where the tap falls in the padding.
const im2colSource = (g: Geometry) => `function(x) {
  ${position(g, 'r', 'oh', 'ow', 'OW')}
  const kk = this.constants.KH * this.constants.KW;
  const ci = Math.floor((r + 0.5) / kk);
  const rem = r - ci * kk;
  const kh = Math.floor((rem + 0.5) / this.constants.KW);
  const kw = rem - kh * this.constants.KW;
  const ih = oh * this.constants.SH - this.constants.PH + kh * this.constants.DH;
  const iw = ow * this.constants.SW - this.constants.PW + kw * this.constants.DW;
  let v = 0.0;
  if (ih >= 0 && ih < this.constants.H && iw >= 0 && iw < this.constants.W) {
    v = x[(ci * this.constants.H + ih) * this.constants.W + iw];
  }
  return v;
}`;

const forwardSource = (g: Geometry) => `function(w, cols, bias) {
  ${position(g, 'o', 'oh', 'ow', 'OW')}
  const grp = Math.floor((o + 0.5) / this.constants.Og);
  const wb = o * this.constants.Kg;
  const cb = grp * this.constants.Kg;
  let s = bias[o];
  for (let k = 0; k < this.constants.Kg; k++) {
    s += w[wb + k] * ${colAt(g, 'cols', 'cb + k')};
  }
  return s;
}`;

const weightGradSource = (g: Geometry) => `function(gy, cols) {
  const k = this.thread.x;
  const o = this.thread.y;
  const grp = Math.floor((o + 0.5) / this.constants.Og);
  const r = grp * this.constants.Kg + k;
  let s = 0.0;
  for (let oh = 0; oh < this.constants.OH; oh++) {
    const gb = (o * this.constants.OH + oh) * this.constants.OW;
    for (let ow = 0; ow < this.constants.OW; ow++) {
      s += gy[gb + ow] * ${colAt(g, 'cols', 'r')};
    }
  }
  return s;
}`;

const colGradSource = (g: Geometry) => `function(w, gy) {
  ${position(g, 'r', 'oh', 'ow', 'OW')}
  const grp = Math.floor((r + 0.5) / this.constants.Kg);
  const k = r - grp * this.constants.Kg;
  const p = oh * this.constants.OW + ow;
  let s = 0.0;
  for (let j = 0; j < this.constants.Og; j++) {
    const o = grp * this.constants.Og + j;
    s += w[o * this.constants.Kg + k] * gy[o * this.constants.P + p];
  }
  return s;
}`;

// gx[ci][ih][iw] gathers every (kh, kw) whose output position oh = (ih + PH - kh*DH) / SH is a whole number inside
// the output (same for w): the transpose of im2col.
const col2imSource = (g: Geometry) => `function(dcols) {
  ${position(g, 'ci', 'ih', 'iw', 'W')}
  let s = 0.0;
  for (let kh = 0; kh < this.constants.KH; kh++) {
    const th = ih + this.constants.PH - kh * this.constants.DH;
    const oh = Math.floor((th + 0.5) / this.constants.SH);
    if (th >= 0 && oh * this.constants.SH === th && oh < this.constants.OH) {
      for (let kw = 0; kw < this.constants.KW; kw++) {
        const tw = iw + this.constants.PW - kw * this.constants.DW;
        const ow = Math.floor((tw + 0.5) / this.constants.SW);
        if (tw >= 0 && ow * this.constants.SW === tw && ow < this.constants.OW) {
          s += ${colAt(g, 'dcols', '(ci * this.constants.KH + kh) * this.constants.KW + kw')};
        }
      }
    }
  }
  return s;
}`;

const isPointwise = (g: Geometry, p: Conv2dParams) =>
  g.KH === 1 && g.KW === 1 && p.stride[0] === 1 && p.stride[1] === 1 && p.padding[0] === 0 && p.padding[1] === 0;

/** The column matrix of sample x_n: a pipeline texture on WebGL, rows on webasm/cpu, or x_n itself for 1x1. */
function columns(cache: KernelCache, g: Geometry, p: Conv2dParams, key: string, xn: Float32Array): KernelArg {
  if (isPointwise(g, p)) return asInput(xn, grid(g, g.C, g.H, g.W));
  const k = cache.get(`im2col:${key}`, () => im2colSource(g), {
    output: grid(g, g.R, g.OH, g.OW),
    constants: constants(g, p),
    pipeline: true,
  });
  return cache.run(`im2col:${key}`, k, xn);
}

export function gpuConv2d(cache: KernelCache, xv: View, wv: View, bias: View | null, p: Conv2dParams): Float32Array {
  const g = geometry(cache, xv.shape, wv.shape, p);
  const N = xv.shape[0];
  const key = paramKey(g, p);
  const x = flatF32(xv);
  const w = flatF32(wv);
  const b = bias ? flatF32(bias) : new Float32Array(g.O);
  const k = cache.get(`conv:${key}`, () => forwardSource(g), { output: grid(g, g.O, g.OH, g.OW), constants: constants(g, p) });
  const out = new Float32Array(N * g.O * g.P);
  const xs = g.C * g.H * g.W;
  for (let n = 0; n < N; n++) {
    const cols = columns(cache, g, p, key, x.subarray(n * xs, (n + 1) * xs));
    readFlat(cache.run(`conv:${key}`, k, w, cols, b), g.O * g.P, out, n * g.O * g.P);
  }
  return out;
}

export function gpuConv2dBackwardWeight(
  cache: KernelCache, gyv: View, xv: View, wShape: readonly number[], p: Conv2dParams,
): Float32Array {
  const g = geometry(cache, xv.shape, wShape, p);
  const N = xv.shape[0];
  const key = paramKey(g, p);
  const x = flatF32(xv);
  const gy = flatF32(gyv);
  const k = cache.get(`convgw:${key}`, () => weightGradSource(g), { output: [g.Kg, g.O], constants: constants(g, p) });
  const gw = new Float32Array(g.O * g.Kg);
  const part = new Float32Array(g.O * g.Kg);
  const xs = g.C * g.H * g.W;
  for (let n = 0; n < N; n++) {
    const cols = columns(cache, g, p, key, x.subarray(n * xs, (n + 1) * xs));
    readFlat(cache.run(`convgw:${key}`, k, gy.subarray(n * g.O * g.P, (n + 1) * g.O * g.P), cols), gw.length, part, 0);
    for (let i = 0; i < gw.length; i++) gw[i] += part[i];
  }
  return gw;
}

export function gpuConv2dBackwardInput(
  cache: KernelCache, gyv: View, wv: View, xShape: readonly number[], p: Conv2dParams,
): Float32Array {
  const g = geometry(cache, xShape, wv.shape, p);
  const N = xShape[0];
  const key = paramKey(g, p);
  const w = flatF32(wv);
  const gy = flatF32(gyv);
  const c = constants(g, p);
  const pointwise = isPointwise(g, p);
  const kc = cache.get(`convdcols:${key}`, () => colGradSource(g), { output: grid(g, g.R, g.OH, g.OW), constants: c, pipeline: !pointwise });
  const ki = pointwise ? null : cache.get(`col2im:${key}`, () => col2imSource(g), { output: grid(g, g.C, g.H, g.W), constants: c });
  const xs = g.C * g.H * g.W;
  const gx = new Float32Array(N * xs);
  for (let n = 0; n < N; n++) {
    const dcols = cache.run(`convdcols:${key}`, kc, w, gy.subarray(n * g.O * g.P, (n + 1) * g.O * g.P));
    // For a pointwise conv the column gradient already is gx_n ([C][H*W]).
    readFlat(ki ? cache.run(`col2im:${key}`, ki, dcols) : dcols, xs, gx, n * xs);
  }
  return gx;
}
