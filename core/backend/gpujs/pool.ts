// 2-D pooling on gpu.js, device-resident and whole-batch: operands are Flat (host arrays or textures from any kernel
// of this cache, read flat), every result an OWNED kernel result (a fresh texture on WebGL). Semantics are exactly
// the reference backend's (core/backend/reference.ts), output sizes from its poolOut / windowOut:
// - max:      the first maximum in (kh, kw) order over the taps inside the input; a NaN wins and ends the scan of its
//             window row, as the reference's loop does (so the first NaN of the last row holding one is the argmax;
//             PyTorch's CPU kernel takes the last NaN, the same value); a window of padding only gives -Infinity
//             with argmax -1. argmax is returned as float32 values of the in-plane index h*W + w (exact below 2^24)
//             by one kernel, and out gathers x at argmax (-Infinity at -1) in a second, so the two never disagree.
//             -Infinity comes in as a number argument (a uniform): gpu.js writes the literal Infinity as 3.4e38 in
//             GLSL, and GLSL ES 1.0 has no infinity constant.
// - max backward, gather form (no atomics on a GPU): each input cell sums the gy of the windows whose argmax is it.
//             Given the pooling params it visits only the windows that can contain the cell (the (kh, kw) taps whose
//             window position is integral and inside the output, as conv's backward-input), in increasing window
//             order like the reference's scatter loop; without them it scans the plane's OH*OW windows.
// - avg:      sum over the window clipped to the input, times 1 / (countIncludePad ? the window clipped to the padded
//             input : the part inside the input); dilation is ignored, as in the reference (PyTorch has none).
// - adaptive: PyTorch's cells [floor(i*H/oh), ceil((i+1)*H/oh)); the backward gathers, per input cell, the at most
//             ceil(oh/H) + 1 consecutive output cells from floor(i*oh/H) that can contain it.
// Planes are rows nc = n*C + c, never divided; outputs use planeGrid (gemm.ts) layouts, 2-D [h*w, N*C] or 3-D
// [w, h, N*C] when a plane exceeds a texture side. Index arithmetic is float32 on WebGL: flat indices stay below
// MAX_EXACT = 2^24, and divided values (an in-plane position, the adaptive cell bounds i*H, (i+1)*H + oh) below
// MAX_QUOTIENT = 2^20, where floor(a / d) is computed as floor((a + 0.5) / d) and ceil(a / d) as
// floor((a + d - 0.5) / d).

import type { Pool2dParams } from '../types.js';
import { poolOut } from '../reference.js';
import { MAX_EXACT, MAX_QUOTIENT, OWNED, asOperand, planeGrid, planeThread, type Flat, type KernelCache } from './kernels.js';
import type { KernelResult } from './loader.js';


/** Whether the pooling kernels' index arithmetic is exact and their outputs fit textures (else delegate). */
export function poolFits(cache: KernelCache, xShape: readonly number[], outHW: readonly [number, number]): boolean {
  const [N, C, H, W] = xShape;
  const [OH, OW] = outHW;
  return (
    N * C * H * W > 0 && OH > 0 && OW > 0 &&
    N * C * H * W < MAX_EXACT && N * C * OH * OW < MAX_EXACT &&
    (H + 1) * OH < MAX_QUOTIENT && (W + 1) * OW < MAX_QUOTIENT &&
    cache.fitsTexture([OW, OH, N * C]) && cache.fitsTexture([W, H, N * C])
  );
}

const paramKey = (p: Pool2dParams) =>
  `k${p.kernelSize}:s${p.stride}:p${p.padding}:d${p.dilation}:c${+p.ceilMode}:i${+p.countIncludePad}`;

const windowConstants = (p: Pool2dParams) => ({
  KH: p.kernelSize[0], KW: p.kernelSize[1], SH: p.stride[0], SW: p.stride[1],
  PH: p.padding[0], PW: p.padding[1], DH: p.dilation[0], DW: p.dilation[1],
});

interface Planes { NC: number; H: number; W: number; OH: number; OW: number }

const planes = (xShape: readonly number[], OH: number, OW: number): Planes => {
  const [N, C, H, W] = xShape;
  return { NC: N * C, H, W, OH, OW };
};

const planeKey = (g: Planes) => `${g.NC}x${g.H}x${g.W}>${g.OH}x${g.OW}`;

// argmax[nc][oh][ow]: in-plane index of the first maximum, -1 for a window of padding only. A NaN is taken and ends
// the scan of its window row (the reference's `break` leaves the kw loop only), so a NaN in a later row takes over.
// The explicit v !== v test is needed: v > best is false for a NaN, and Mesa may fold comparisons as if no NaN
// existed.
const argmaxSource = (grid: readonly number[]) => `function(x) {
  ${planeThread(grid, 'nc', 'oh', 'ow', 'OW')}
  const xb = nc * this.constants.H * this.constants.W;
  let best = 0.0;
  let bi = -1.0;
  for (let kh = 0; kh < this.constants.KH; kh++) {
    const ih = oh * this.constants.SH - this.constants.PH + kh * this.constants.DH;
    let rowNaN = 0.0;
    if (ih >= 0 && ih < this.constants.H) {
      for (let kw = 0; kw < this.constants.KW; kw++) {
        const iw = ow * this.constants.SW - this.constants.PW + kw * this.constants.DW;
        if (iw >= 0 && iw < this.constants.W) {
          const v = x[xb + ih * this.constants.W + iw];
          if (rowNaN === 0.0 && (bi < 0.0 || v > best || v !== v)) {
            best = v;
            bi = ih * this.constants.W + iw;
            if (v !== v) {
              rowNaN = 1.0;
            }
          }
        }
      }
    }
  }
  return bi;
}`;

const maxGatherSource = (grid: readonly number[]) => `function(x, argmax, ninf) {
  ${planeThread(grid, 'nc', 'oh', 'ow', 'OW')}
  const a = argmax[(nc * this.constants.OH + oh) * this.constants.OW + ow];
  let v = ninf;
  if (a >= 0.0) {
    v = x[nc * this.constants.H * this.constants.W + a];
  }
  return v;
}`;

/** Max pooling of x [N, C, H, W]: out [N, C, OH, OW] and argmax (float32 in-plane indices, -1 for padding only). */
export function gpuMaxPool2d(cache: KernelCache, x: Flat, xShape: readonly number[], p: Pool2dParams): { out: KernelResult; argmax: KernelResult } {
  const { OH, OW } = poolOut(xShape[2], xShape[3], p);
  const g = planes(xShape, OH, OW);
  const grid = planeGrid(cache, g.NC, OH, OW);
  const constants = { ...windowConstants(p), H: g.H, W: g.W, OH, OW };
  const base = `${planeKey(g)}:${paramKey(p)}:${grid.length}d`;
  const ak = `maxpoolarg:${base}`;
  const ka = cache.get(ak, () => argmaxSource(grid), { output: grid, constants, ...OWNED });
  const argmax = cache.run(ak, ka, x);
  const am = asOperand(argmax, g.NC * OH * OW);
  const vk = `maxpool:${base}`;
  const kv = cache.get(vk, () => maxGatherSource(grid), { output: grid, constants, ...OWNED });
  return { out: cache.run(vk, kv, x, am, -Infinity), argmax };
}

// gx[nc][ih][iw] = sum of gy over the windows whose argmax is (ih, iw). With the params: the windows that can hold the
// cell, in increasing (oh, ow) order (kh, kw descending); without: every window of the plane.
const maxBackwardSource = (grid: readonly number[], withParams: boolean) => `function(gy, argmax) {
  ${planeThread(grid, 'nc', 'ih', 'iw', 'W')}
  const me = ih * this.constants.W + iw;
  const ob = nc * this.constants.OH;
  let s = 0.0;
  ${withParams
    ? `for (let jh = 0; jh < this.constants.KH; jh++) {
    const th = ih + this.constants.PH - (this.constants.KH - 1 - jh) * this.constants.DH;
    const oh = Math.floor((th + 0.5) / this.constants.SH);
    if (th >= 0 && oh * this.constants.SH === th && oh < this.constants.OH) {
      for (let jw = 0; jw < this.constants.KW; jw++) {
        const tw = iw + this.constants.PW - (this.constants.KW - 1 - jw) * this.constants.DW;
        const ow = Math.floor((tw + 0.5) / this.constants.SW);
        if (tw >= 0 && ow * this.constants.SW === tw && ow < this.constants.OW) {
          const o = (ob + oh) * this.constants.OW + ow;
          if (argmax[o] === me) {
            s += gy[o];
          }
        }
      }
    }
  }`
    : `for (let oh = 0; oh < this.constants.OH; oh++) {
    for (let ow = 0; ow < this.constants.OW; ow++) {
      const o = (ob + oh) * this.constants.OW + ow;
      if (argmax[o] === me) {
        s += gy[o];
      }
    }
  }`}
  return s;
}`;

/**
 * gx [N, C, H, W] of max pooling from gy [N, C, OH, OW] and gpuMaxPool2d's argmax. p (the forward's params) is
 * optional: with it each cell visits only the windows that can contain it, without it all OH*OW of its plane.
 */
export function gpuMaxPool2dBackward(
  cache: KernelCache, gy: Flat, argmax: Flat, gyShape: readonly number[], xShape: readonly number[], p?: Pool2dParams,
): KernelResult {
  const g = planes(xShape, gyShape[2], gyShape[3]);
  const grid = planeGrid(cache, g.NC, g.H, g.W);
  const key = `maxpoolgx:${planeKey(g)}:${p ? paramKey(p) : 'all'}:${grid.length}d`;
  const constants = { ...(p ? windowConstants(p) : {}), H: g.H, W: g.W, OH: g.OH, OW: g.OW };
  const k = cache.get(key, () => maxBackwardSource(grid, p !== undefined), { output: grid, constants, ...OWNED });
  return cache.run(key, k, gy, argmax);
}

/** Prelude: the window of output row oh (column ow) clipped to the padded input (h0..h1) and to the input (hs..he). */
const avgWindow = (oh: string, ow: string) => `
    const h0 = ${oh} * this.constants.SH - this.constants.PH;
    const w0 = ${ow} * this.constants.SW - this.constants.PW;
    const h1 = Math.min(h0 + this.constants.KH, this.constants.H + this.constants.PH);
    const w1 = Math.min(w0 + this.constants.KW, this.constants.W + this.constants.PW);
    const hs = Math.max(h0, 0.0);
    const ws = Math.max(w0, 0.0);
    const he = Math.min(h1, this.constants.H);
    const we = Math.min(w1, this.constants.W);`;

const avgDivisor = (p: Pool2dParams) => (p.countIncludePad ? '(h1 - h0) * (w1 - w0)' : '(he - hs) * (we - ws)');

const avgSource = (grid: readonly number[], p: Pool2dParams) => `function(x) {
  ${planeThread(grid, 'nc', 'oh', 'ow', 'OW')}
  const xb = nc * this.constants.H * this.constants.W;
  let s = 0.0;${avgWindow('oh', 'ow').replace(/\n {4}/g, '\n  ')}
  const inv = 1.0 / (${avgDivisor(p)});
  for (let kh = 0; kh < this.constants.KH; kh++) {
    const ih = h0 + kh;
    if (ih >= hs && ih < he) {
      for (let kw = 0; kw < this.constants.KW; kw++) {
        const iw = w0 + kw;
        if (iw >= ws && iw < we) {
          s += x[xb + ih * this.constants.W + iw] * inv;
        }
      }
    }
  }
  return s;
}`;

/** Average pooling of x [N, C, H, W] -> [N, C, OH, OW]. */
export function gpuAvgPool2d(cache: KernelCache, x: Flat, xShape: readonly number[], p: Pool2dParams): KernelResult {
  const { OH, OW } = poolOut(xShape[2], xShape[3], p);
  const g = planes(xShape, OH, OW);
  const grid = planeGrid(cache, g.NC, OH, OW);
  const key = `avgpool:${planeKey(g)}:${paramKey(p)}:${grid.length}d`;
  const k = cache.get(key, () => avgSource(grid, p), { output: grid, constants: { ...windowConstants(p), H: g.H, W: g.W, OH, OW }, ...OWNED });
  return cache.run(key, k, x);
}

// gx[nc][ih][iw]: the windows holding the cell, (oh, ow) increasing (kh, kw descending), each gy times 1 / divisor.
const avgBackwardSource = (grid: readonly number[], p: Pool2dParams) => `function(gy) {
  ${planeThread(grid, 'nc', 'ih', 'iw', 'W')}
  const ob = nc * this.constants.OH;
  let s = 0.0;
  for (let jh = 0; jh < this.constants.KH; jh++) {
    const th = ih + this.constants.PH - (this.constants.KH - 1 - jh);
    const oh = Math.floor((th + 0.5) / this.constants.SH);
    if (th >= 0 && oh * this.constants.SH === th && oh < this.constants.OH) {
      for (let jw = 0; jw < this.constants.KW; jw++) {
        const tw = iw + this.constants.PW - (this.constants.KW - 1 - jw);
        const ow = Math.floor((tw + 0.5) / this.constants.SW);
        if (tw >= 0 && ow * this.constants.SW === tw && ow < this.constants.OW) {${avgWindow('oh', 'ow').replace(/\n {4}/g, '\n          ')}
          s += gy[(ob + oh) * this.constants.OW + ow] * (1.0 / (${avgDivisor(p)}));
        }
      }
    }
  }
  return s;
}`;

/** gx [N, C, H, W] of average pooling from gy [N, C, OH, OW]. */
export function gpuAvgPool2dBackward(cache: KernelCache, gy: Flat, xShape: readonly number[], p: Pool2dParams): KernelResult {
  const { OH, OW } = poolOut(xShape[2], xShape[3], p);
  const g = planes(xShape, OH, OW);
  const grid = planeGrid(cache, g.NC, g.H, g.W);
  const key = `avgpoolgx:${planeKey(g)}:${paramKey(p)}:${grid.length}d`;
  const k = cache.get(key, () => avgBackwardSource(grid, p), { output: grid, constants: { ...windowConstants(p), H: g.H, W: g.W, OH, OW }, ...OWNED });
  return cache.run(key, k, gy);
}

/** Cell [hs, he) of output row `o` over `size` inputs in `out` cells, as floats (see the file comment). */
const adaptiveCell = (o: string, s: string, e: string, size: string, out: string) => `
  const ${s} = Math.floor((${o} * this.constants.${size} + 0.5) / this.constants.${out});
  const ${e} = Math.floor(((${o} + 1) * this.constants.${size} + this.constants.${out} - 0.5) / this.constants.${out});`;

/** The largest adaptive cell over `size` inputs in `out` cells. */
function maxCell(size: number, out: number): number {
  let m = 0;
  for (let i = 0; i < out; i++) m = Math.max(m, Math.ceil(((i + 1) * size) / out) - Math.floor((i * size) / out));
  return m;
}

const adaptiveSource = (grid: readonly number[]) => `function(x) {
  ${planeThread(grid, 'nc', 'oh', 'ow', 'OW')}${adaptiveCell('oh', 'hs', 'he', 'H', 'OH')}${adaptiveCell('ow', 'ws', 'we', 'W', 'OW')}
  const xb = nc * this.constants.H * this.constants.W;
  const inv = 1.0 / ((he - hs) * (we - ws));
  let s = 0.0;
  for (let kh = 0; kh < this.constants.CH; kh++) {
    const ih = hs + kh;
    if (ih < he) {
      for (let kw = 0; kw < this.constants.CW; kw++) {
        const iw = ws + kw;
        if (iw < we) {
          s += x[xb + ih * this.constants.W + iw] * inv;
        }
      }
    }
  }
  return s;
}`;

/** PyTorch's adaptive average pooling of x [N, C, H, W] to [N, C, outSize[0], outSize[1]]. */
export function gpuAdaptiveAvgPool2d(cache: KernelCache, x: Flat, xShape: readonly number[], outSize: readonly [number, number]): KernelResult {
  const [OH, OW] = outSize;
  const g = planes(xShape, OH, OW);
  const grid = planeGrid(cache, g.NC, OH, OW);
  const key = `adaptivepool:${planeKey(g)}:${grid.length}d`;
  const constants = { H: g.H, W: g.W, OH, OW, CH: maxCell(g.H, OH), CW: maxCell(g.W, OW) };
  const k = cache.get(key, () => adaptiveSource(grid), { output: grid, constants, ...OWNED });
  return cache.run(key, k, x);
}

// gx[nc][ih][iw]: output cells oh0 .. oh0 + RH - 1 (oh0 = floor(ih*OH/H)) that contain ih, likewise for iw.
const adaptiveBackwardSource = (grid: readonly number[]) => `function(gy) {
  ${planeThread(grid, 'nc', 'ih', 'iw', 'W')}
  const oh0 = Math.floor((ih * this.constants.OH + 0.5) / this.constants.H);
  const ow0 = Math.floor((iw * this.constants.OW + 0.5) / this.constants.W);
  const ob = nc * this.constants.OH;
  let s = 0.0;
  for (let jh = 0; jh < this.constants.RH; jh++) {
    const oh = oh0 + jh;
    if (oh < this.constants.OH) {${adaptiveCell('oh', 'hs', 'he', 'H', 'OH').replace(/\n/g, '\n    ')}
      if (hs <= ih && ih < he) {
        for (let jw = 0; jw < this.constants.RW; jw++) {
          const ow = ow0 + jw;
          if (ow < this.constants.OW) {${adaptiveCell('ow', 'ws', 'we', 'W', 'OW').replace(/\n/g, '\n          ')}
            if (ws <= iw && iw < we) {
              s += gy[(ob + oh) * this.constants.OW + ow] * (1.0 / ((he - hs) * (we - ws)));
            }
          }
        }
      }
    }
  }
  return s;
}`;

/** gx [N, C, H, W] of adaptive average pooling from gy [N, C, OH, OW]. */
export function gpuAdaptiveAvgPool2dBackward(cache: KernelCache, gy: Flat, gyShape: readonly number[], xShape: readonly number[]): KernelResult {
  const g = planes(xShape, gyShape[2], gyShape[3]);
  const grid = planeGrid(cache, g.NC, g.H, g.W);
  const key = `adaptivepoolgx:${planeKey(g)}:${grid.length}d`;
  const constants = { H: g.H, W: g.W, OH: g.OH, OW: g.OW, RH: Math.ceil(g.OH / g.H) + 1, RW: Math.ceil(g.OW / g.W) + 1 };
  const k = cache.get(key, () => adaptiveBackwardSource(grid), { output: grid, constants, ...OWNED });
  return cache.run(key, k, gy);
}
