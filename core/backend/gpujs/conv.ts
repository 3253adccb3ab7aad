// 2-D convolution on gpu.js, device-resident and whole-batch: every function takes its operands Flat (host arrays or
// textures from any kernel of this cache, read flat x[i]) and returns one OWNED kernel result (a fresh texture on
// WebGL) for the whole batch; nothing comes back to the host. Direct convolution, one thread per output element:
// - forward:         y[n][o][oh][ow] = bias[o] + sum_{c, kh, kw} w[o][c][kh][kw] x[n][g*Cg + c][ih][iw]
//                    with ih = oh*SH - PH + kh*DH (same for w), taps in the padding skipped, g = o / Og;
// - backward input:  gx[n][ci][ih][iw] gathers every (kh, kw) whose output position oh = (ih + PH - kh*DH) / SH is a
//                    whole number inside the output (same for w), over the Og output channels of ci's group: the
//                    exact transpose of the forward for any stride and dilation, with no atomics;
// - backward weight: gw[o][c][kh][kw] = sum_n sum_{oh, ow} gy[n][o][oh][ow] x[n][ci][ih][iw], summed over samples on
//                    the device: a per-sample partial [N][O][Kg] (thread.z = n, a pipeline intermediate that stays a
//                    texture) reduced over n by a second kernel, or one kernel looping over n where the partial
//                    would not fit (N = 1, or N*O*Kg past the exact range).
// Kg = C/groups*KH*KW is the length of a weight row; the weight gradient is a 2-D output [Kg, O] whose thread splits
// its tap k = (c*KH + kh)*KW + kw by small divisions.
//
// Layouts of the [N*rows, h, w] outputs (planeGrid in gemm.ts): 'flat' 2-D [h*w, N*rows], a thread splits its
// in-plane index (< 2^20) into (oh, ow) and its row into (n, o) (row < N*O < 2^20); 'split' 3-D [w, h, N*rows] for
// planes that exceed a texture side. Index arithmetic is float32 on WebGL: every flat index stays below MAX_EXACT =
// 2^24 and every divided index below MAX_QUOTIENT = 2^20 (convFits checks both, and that the outputs fit textures).

import type { Conv2dParams } from '../types.js';
import { convOut } from '../reference.js';
import { MAX_EXACT, MAX_QUOTIENT, OWNED, asOperand, planeGrid, planeThread, present, type Flat, type KernelCache } from './kernels.js';
import type { KernelResult } from './loader.js';


interface Geometry {
  N: number; C: number; H: number; W: number; O: number; Cg: number; KH: number; KW: number; OH: number; OW: number;
  Og: number; Kg: number;
}

function geometry(xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): Geometry {
  const [N, C, H, W] = xShape;
  const [O, Cg, KH, KW] = wShape;
  const { OH, OW } = convOut(H, W, KH, KW, p);
  return { N, C, H, W, O, Cg, KH, KW, OH, OW, Og: O / p.groups, Kg: Cg * KH * KW };
}

/** Whether the kernels' index arithmetic is exact and their outputs fit textures for this conv (else delegate). */
export function convFits(cache: KernelCache, xShape: readonly number[], wShape: readonly number[], p: Conv2dParams): boolean {
  const g = geometry(xShape, wShape, p);
  return (
    g.OH > 0 && g.OW > 0 && g.N * g.C * g.H * g.W > 0 && g.O * g.Kg > 0 &&
    g.N * g.C * g.H * g.W < MAX_EXACT && g.N * g.O * g.OH * g.OW < MAX_EXACT && g.O * g.Kg < MAX_EXACT &&
    g.N * g.O < MAX_QUOTIENT && g.N * g.C < MAX_QUOTIENT && g.Kg < MAX_QUOTIENT &&
    [[g.OW, g.OH, g.N * g.O], [g.W, g.H, g.N * g.C], [g.Kg, g.O]].every((d) => cache.fitsTexture(d))
  );
}

const paramKey = (g: Geometry, p: Conv2dParams) =>
  `${g.N}x${g.C}x${g.H}x${g.W}:${g.O}x${g.Cg}x${g.KH}x${g.KW}:s${p.stride}:p${p.padding}:d${p.dilation}:g${p.groups}`;

const constants = (g: Geometry, p: Conv2dParams) => ({
  N: g.N, C: g.C, H: g.H, W: g.W, O: g.O, Cg: g.Cg, KH: g.KH, KW: g.KW, OH: g.OH, OW: g.OW, Og: g.Og, Kg: g.Kg,
  SH: p.stride[0], SW: p.stride[1], PH: p.padding[0], PW: p.padding[1], DH: p.dilation[0], DW: p.dilation[1],
});

/** Prelude: the thread's (n, channel) from its row = n*CH + channel (CH names a constant), without a big division. */
const sampleOf = (row: string, ch: string, CH: string) => `
  const n = Math.floor((${row} + 0.5) / this.constants.${CH});
  const ${ch} = ${row} - n * this.constants.${CH};`;

const forwardSource = (grid: readonly number[], hasBias: boolean) => `function(x, w${hasBias ? ', bias' : ''}) {
  ${planeThread(grid, 'row', 'oh', 'ow', 'OW')}${sampleOf('row', 'o', 'O')}
  const grp = Math.floor((o + 0.5) / this.constants.Og);
  let s = ${hasBias ? 'bias[o]' : '0.0'};
  for (let c = 0; c < this.constants.Cg; c++) {
    const xb = (n * this.constants.C + grp * this.constants.Cg + c) * this.constants.H;
    const wb = (o * this.constants.Cg + c) * this.constants.KH;
    for (let kh = 0; kh < this.constants.KH; kh++) {
      const ih = oh * this.constants.SH - this.constants.PH + kh * this.constants.DH;
      if (ih >= 0 && ih < this.constants.H) {
        for (let kw = 0; kw < this.constants.KW; kw++) {
          const iw = ow * this.constants.SW - this.constants.PW + kw * this.constants.DW;
          if (iw >= 0 && iw < this.constants.W) {
            s += x[(xb + ih) * this.constants.W + iw] * w[(wb + kh) * this.constants.KW + kw];
          }
        }
      }
    }
  }
  return s;
}`;

// gx[n][ci][ih][iw]: the (kh, kw) taps whose output position is integral and inside the output, times the Og output
// channels of ci's group.
const inputGradSource = (grid: readonly number[]) => `function(gy, w) {
  ${planeThread(grid, 'row', 'ih', 'iw', 'W')}${sampleOf('row', 'ci', 'C')}
  const grp = Math.floor((ci + 0.5) / this.constants.Cg);
  const c = ci - grp * this.constants.Cg;
  let s = 0.0;
  for (let kh = 0; kh < this.constants.KH; kh++) {
    const th = ih + this.constants.PH - kh * this.constants.DH;
    const oh = Math.floor((th + 0.5) / this.constants.SH);
    if (th >= 0 && oh * this.constants.SH === th && oh < this.constants.OH) {
      for (let kw = 0; kw < this.constants.KW; kw++) {
        const tw = iw + this.constants.PW - kw * this.constants.DW;
        const ow = Math.floor((tw + 0.5) / this.constants.SW);
        if (tw >= 0 && ow * this.constants.SW === tw && ow < this.constants.OW) {
          for (let j = 0; j < this.constants.Og; j++) {
            const o = grp * this.constants.Og + j;
            s += gy[((n * this.constants.O + o) * this.constants.OH + oh) * this.constants.OW + ow] *
              w[((o * this.constants.Cg + c) * this.constants.KH + kh) * this.constants.KW + kw];
          }
        }
      }
    }
  }
  return s;
}`;

// gw partial for sample n (thread.z), or the full sum over n (loopN): thread (k, o), k = (c*KH + kh)*KW + kw.
const weightGradSource = (loopN: boolean) => `function(gy, x) {
  const k = this.thread.x;
  const o = this.thread.y;
  const kk = this.constants.KH * this.constants.KW;
  const c = Math.floor((k + 0.5) / kk);
  const rem = k - c * kk;
  const kh = Math.floor((rem + 0.5) / this.constants.KW);
  const kw = rem - kh * this.constants.KW;
  const ci = Math.floor((o + 0.5) / this.constants.Og) * this.constants.Cg + c;
  let s = 0.0;
  ${loopN ? 'for (let n = 0; n < this.constants.N; n++) {' : 'const n = this.thread.z;'}
    let t = 0.0;
    for (let oh = 0; oh < this.constants.OH; oh++) {
      const ih = oh * this.constants.SH - this.constants.PH + kh * this.constants.DH;
      if (ih >= 0 && ih < this.constants.H) {
        const gb = ((n * this.constants.O + o) * this.constants.OH + oh) * this.constants.OW;
        const xb = ((n * this.constants.C + ci) * this.constants.H + ih) * this.constants.W;
        for (let ow = 0; ow < this.constants.OW; ow++) {
          const iw = ow * this.constants.SW - this.constants.PW + kw * this.constants.DW;
          if (iw >= 0 && iw < this.constants.W) {
            t += gy[gb + ow] * x[xb + iw];
          }
        }
      }
    }
    s += t;${loopN ? '\n  }' : ''}
  return s;
}`;

// gw[o][k] = sum over n of part[n][o][k].
const sampleSumSource = `function(part) {
  const k = this.thread.x;
  const o = this.thread.y;
  let s = 0.0;
  for (let n = 0; n < this.constants.N; n++) {
    s += part[(n * this.constants.O + o) * this.constants.Kg + k];
  }
  return s;
}`;

/** y = conv2d(x, w) + bias for the whole batch: x [N, C, H, W], w [O, C/groups, KH, KW], bias [O] or null. */
export function gpuConv2d(
  cache: KernelCache, x: Flat, xShape: readonly number[], w: Flat, wShape: readonly number[], bias: Flat | null, p: Conv2dParams,
): KernelResult {
  const g = geometry(xShape, wShape, p);
  const grid = planeGrid(cache, g.N * g.O, g.OH, g.OW);
  const key = `conv:${paramKey(g, p)}:${grid.length}d:${present(x, w, bias)}`;
  const k = cache.get(key, () => forwardSource(grid, bias !== null), { output: grid, constants: constants(g, p), ...OWNED });
  return bias ? cache.run(key, k, x, w, bias) : cache.run(key, k, x, w);
}

/** gx [N, C, H, W] of conv2d from gy [N, O, OH, OW]. */
export function gpuConv2dBackwardInput(
  cache: KernelCache, gy: Flat, w: Flat, wShape: readonly number[], xShape: readonly number[], p: Conv2dParams,
): KernelResult {
  const g = geometry(xShape, wShape, p);
  const grid = planeGrid(cache, g.N * g.C, g.H, g.W);
  const key = `convgx:${paramKey(g, p)}:${grid.length}d`;
  const k = cache.get(key, () => inputGradSource(grid), { output: grid, constants: constants(g, p), ...OWNED });
  return cache.run(key, k, gy, w);
}

/** Whether the per-sample partial [N][O][Kg] of the weight gradient is worth it (N > 1) and fits. */
const partialFits = (cache: KernelCache, g: Geometry) =>
  g.N > 1 && g.N * g.O * g.Kg < MAX_EXACT && cache.fitsTexture([g.Kg, g.O, g.N]);

/** gw [O, C/groups, KH, KW] of conv2d, summed over the batch on the device. */
export function gpuConv2dBackwardWeight(
  cache: KernelCache, gy: Flat, x: Flat, xShape: readonly number[], wShape: readonly number[], p: Conv2dParams,
): KernelResult {
  const g = geometry(xShape, wShape, p);
  const c = constants(g, p);
  const base = `${paramKey(g, p)}`;
  if (!partialFits(cache, g)) {
    const key = `convgw:${base}`;
    const k = cache.get(key, () => weightGradSource(true), { output: [g.Kg, g.O], constants: c, ...OWNED });
    return cache.run(key, k, gy, x);
  }
  const kp = cache.get(`convgwpart:${base}`, () => weightGradSource(false), {
    output: [g.Kg, g.O, g.N],
    constants: c,
    pipeline: true,
  });
  const part = asOperand(cache.run(`convgwpart:${base}`, kp, gy, x), g.N * g.O * g.Kg);
  const sumKey = `convgwsum:${g.N}x${g.O}x${g.Kg}`;
  const ks = cache.get(sumKey, () => sampleSumSource, { output: [g.Kg, g.O], constants: { N: g.N, O: g.O, Kg: g.Kg }, ...OWNED });
  return cache.run(sumKey, ks, part);
}
