// The task bodies of the cpu backend's parallel jobs, run by the main thread and by every pool worker alike. A job
// is a kind plus integer parameters (byte addresses in the shared wasm memory, sizes) published in a shared control
// block; its work is cut into numbered tasks that threads claim with an atomic counter, so a thread slowed by other
// processes simply claims fewer. Each task writes a disjoint part of the output: no locks, no reductions across
// threads.

import { PtslabError } from '../../errors.js';
import type { Kernels } from './wasm.js';

export const enum JobKind {
  /** C = A * B per (image, group, column chunk, row chunk); B packed from a plain matrix or by im2col. */
  Gemm = 1,
  /** Weight gradient: C[g] = sum over images of gy * im2col(x)^T, per (group, row chunk, column chunk). */
  WeightGrad = 2,
  /** col2im of a GEMM result into the input gradient, per (image, group, channel chunk). */
  Col2im = 3,
  /** Depthwise forward or stride-1 backward-input (flipped kernel), per chunk of planes. */
  DwForward = 4,
  /** Depthwise backward-input by scatter (any stride), per chunk of planes. */
  DwBackInput = 5,
  /** Depthwise weight gradient per chunk of channels. */
  DwBackWeight = 6,
  /** Pack B of a Gemm job once for all its row chunks, per (image, group, column chunk). */
  PackGemmB = 7,
  /** Pack B of a WeightGrad job once for all its row chunks, per (group, column chunk, image). */
  PackWeightGradB = 8,
  /** Pack A (k-block-major panels) per (group, k-block). */
  PackA = 9,
  /** Batch-norm mean and variance per chunk of channels. */
  BnStats = 10,
  /** Batch-norm affine forward per chunk of channels. */
  BnForward = 11,
  /** Batch-norm backward (channel sums, then gx) per chunk of channels. */
  BnBackward = 12,
  /** Direct convolution (conv-direct.ts) per (image, chunk of weight panels): pad the image, then convDirect. */
  ConvDirect = 13,
  /** Direct weight gradient, partial sums per (chunk of images, group of output channels, group of taps). */
  ConvDirectWeight = 14,
  /** Sum of Count partial results of N floats each (N apart from X) into Wt, per range of Chunk floats. */
  SumPartials = 15,
  /** Stop the worker. */
  Exit = 99,
}

/** Parameter slots (indices into the job's Int32Array). */
export const enum P {
  // shared by the GEMM kinds
  ABase, AImg, AGrp, Mp, K, BKind, BBase, BImg, BGrp, Rs, Cs, N,
  H, W, KH, KW, Sh, Sw, Ph, Pw, Dh, Dw, OW,
  CBase, CImg, CGrp, Ldc, NImg, NGrp, NChunks, NC, KC, Scratch, ScratchPer, MChunks, Mpc,
  // depthwise and col2im reuse H..OW and these
  OH, Planes, Chunk, C, Flip, X, Wt, Out, Count,
  /** Address of B packed by a Pack*B job beforehand (0: each task packs its own blocks into scratch). */
  Prepacked,
  // PackA: strided source per group, rows M, columns K, packed destination per group, k-blocks per group
  PaSrc, PaSrcGrp, PaRs, PaCs, PaM, PaK, PaDst, PaDstGrp, PaBlocks,
  // batch norm: x, gy, output (y or gx), float64 per-channel parameters and sums, N, C, plane size; Chunk: channels
  BnX, BnGy, BnOut, BnPar, BnSums, BnN, BnC, BnHW,
  // direct convolution: phases per channel (Na x Nb planes of Hq x Wq floats), tap offsets, output channels, taps
  // per weight-gradient task, size of a padded image in bytes
  Na, Nb, Hq, Wq, Offs, O, Taps, XsImg,
}

export const PARAM_SLOTS = 80;

const ceil8 = (n: number) => (n + 7) & ~7;

/** Pack block [k0, k0 + kc) x [n0, n0 + nc) of a Gemm job's B (plain strided matrix, or im2col of an image). */
function packGemmB(k: Kernels, p: Int32Array, b: number, k0: number, kc: number, n0: number, nc: number, dst: number) {
  if (p[P.BKind] === 0) k.packB(b, p[P.Rs], p[P.Cs], k0, kc, n0, nc, p[P.N], dst);
  else k.packIm2col(b, p[P.H], p[P.W], p[P.KH], p[P.KW], p[P.Sh], p[P.Sw], p[P.Ph], p[P.Pw], p[P.Dh], p[P.Dw], p[P.OW], p[P.N], k0, kc, n0, nc, dst);
}

/** Pack pixels [p0, p0 + pc) x taps [n0, n0 + nc) of a WeightGrad job's B (x^T, or im2col(x)^T). */
function packWeightGradB(k: Kernels, p: Int32Array, x: number, p0: number, pc: number, n0: number, nc: number, dst: number) {
  if (p[P.BKind] === 0) k.packB(x, p[P.Rs], p[P.Cs], p0, pc, n0, nc, p[P.N], dst);
  else k.packIm2colT(x, p[P.H], p[P.W], p[P.KH], p[P.KW], p[P.Sh], p[P.Sw], p[P.Ph], p[P.Pw], p[P.Dh], p[P.Dw], p[P.OW], p[P.N], p0, pc, n0, nc, dst);
}

/** Run task t of the job described by p on thread tid (0 = main). */
export function runTask(k: Kernels, kind: JobKind, p: Int32Array, t: number, tid: number): void {
  const scratch = p[P.Scratch] + tid * p[P.ScratchPer];
  switch (kind) {
    case JobKind.Gemm: {
      const nChunks = p[P.NChunks], mChunks = p[P.MChunks];
      const chunk = t % nChunks;
      let rest = (t / nChunks) | 0;
      const mc = rest % mChunks;
      rest = (rest / mChunks) | 0;
      const g = rest % p[P.NGrp];
      const img = (rest / p[P.NGrp]) | 0;
      const N = p[P.N], K = p[P.K], KC = p[P.KC], mpAll = p[P.Mp];
      const n0 = chunk * p[P.NC];
      const nc = Math.min(p[P.NC], ceil8(N) - n0);
      const m0 = mc * p[P.Mpc];
      const mp = Math.min(p[P.Mpc], p[P.Mp] - m0);
      // packed A is k-block major: block k0 holds all panels, each kc x 4, so one block is contiguous
      const a = p[P.ABase] + img * p[P.AImg] + g * p[P.AGrp];
      const b = p[P.BBase] + img * p[P.BImg] + g * p[P.BGrp];
      const c = p[P.CBase] + img * p[P.CImg] + g * p[P.CGrp] + (m0 * 4 * p[P.Ldc] + n0) * 4;
      const pre = p[P.Prepacked] && p[P.Prepacked] + ((img * p[P.NGrp] + g) * nChunks + chunk) * K * p[P.NC] * 4;
      for (let k0 = 0; k0 < K; k0 += KC) {
        const kc = Math.min(KC, K - k0);
        let bp = scratch;
        if (pre) bp = pre + k0 * nc * 4;
        else packGemmB(k, p, b, k0, kc, n0, nc, scratch);
        k.gemm(a + (k0 * mpAll + m0 * kc) * 16, kc * 16, bp, kc, mp, nc >> 3, c, p[P.Ldc], k0 > 0 ? 1 : 0);
      }
      return;
    }
    case JobKind.PackA: {
      const blocks = p[P.PaBlocks], g = (t / blocks) | 0, k0 = (t % blocks) * p[P.KC];
      const kc = Math.min(p[P.KC], p[P.PaK] - k0), mp = (p[P.PaM] + 3) >> 2;
      k.packA(p[P.PaSrc] + g * p[P.PaSrcGrp] + k0 * p[P.PaCs] * 4, p[P.PaRs], p[P.PaCs], p[P.PaM], kc, p[P.PaDst] + g * p[P.PaDstGrp] + k0 * mp * 16, kc, 0);
      return;
    }
    case JobKind.PackGemmB: {
      const nChunks = p[P.NChunks], chunk = t % nChunks, rest = (t / nChunks) | 0;
      const g = rest % p[P.NGrp], img = (rest / p[P.NGrp]) | 0;
      const N = p[P.N], K = p[P.K], KC = p[P.KC];
      const n0 = chunk * p[P.NC], nc = Math.min(p[P.NC], ceil8(N) - n0);
      const b = p[P.BBase] + img * p[P.BImg] + g * p[P.BGrp];
      const pre = p[P.Prepacked] + ((img * p[P.NGrp] + g) * nChunks + chunk) * K * p[P.NC] * 4;
      for (let k0 = 0; k0 < K; k0 += KC) packGemmB(k, p, b, k0, Math.min(KC, K - k0), n0, nc, pre + k0 * nc * 4);
      return;
    }
    case JobKind.PackWeightGradB: {
      const nChunks = p[P.NChunks], img = t % p[P.NImg], rest = (t / p[P.NImg]) | 0;
      const chunk = rest % nChunks, g = (rest / nChunks) | 0;
      const Kc = p[P.N], Pn = p[P.K], KC = p[P.KC];
      const n0 = chunk * p[P.NC], nc = Math.min(p[P.NC], ceil8(Kc) - n0);
      const x = p[P.BBase] + img * p[P.BImg] + g * p[P.BGrp];
      const pre = p[P.Prepacked] + (g * nChunks + chunk) * p[P.NImg] * Pn * p[P.NC] * 4;
      for (let p0 = 0; p0 < Pn; p0 += KC) packWeightGradB(k, p, x, p0, Math.min(KC, Pn - p0), n0, nc, pre + (img * Pn + p0) * nc * 4);
      return;
    }
    case JobKind.WeightGrad: {
      // Rows: output channels of group g (A = packed gy over all images); columns: taps (c, kh, kw); reduction: pixels.
      const nChunks = p[P.NChunks], mChunks = p[P.MChunks];
      const chunk = t % nChunks;
      let rest = (t / nChunks) | 0;
      const mc = rest % mChunks;
      const g = (rest / mChunks) | 0;
      const Kc = p[P.N], Pn = p[P.K], KC = p[P.KC], mpAll = p[P.Mp];
      const n0 = chunk * p[P.NC];
      const nc = Math.min(p[P.NC], ceil8(Kc) - n0);
      const m0 = mc * p[P.Mpc];
      const mp = Math.min(p[P.Mpc], p[P.Mp] - m0);
      const a = p[P.ABase] + g * p[P.AGrp];
      const c = p[P.CBase] + g * p[P.CGrp] + (m0 * 4 * p[P.Ldc] + n0) * 4;
      const pre = p[P.Prepacked] && p[P.Prepacked] + (g * nChunks + chunk) * p[P.NImg] * Pn * p[P.NC] * 4;
      let first = true;
      for (let img = 0; img < p[P.NImg]; img++) {
        const x = p[P.BBase] + img * p[P.BImg] + g * p[P.BGrp];
        for (let p0 = 0; p0 < Pn; p0 += KC) {
          const pc = Math.min(KC, Pn - p0);
          let bp = scratch;
          if (pre) bp = pre + (img * Pn + p0) * nc * 4;
          else packWeightGradB(k, p, x, p0, pc, n0, nc, scratch);
          k.gemm(a + ((img * Pn + p0) * mpAll + m0 * pc) * 16, pc * 16, bp, pc, mp, nc >> 3, c, p[P.Ldc], first ? 0 : 1);
          first = false;
        }
      }
      return;
    }
    case JobKind.Col2im: {
      // tasks: (image, group, channel chunk); C = channels per group
      const per = p[P.Chunk], Cg = p[P.C];
      const nCh = Math.ceil(Cg / per);
      const ch = t % nCh;
      const rest = (t / nCh) | 0;
      const g = rest % p[P.NGrp];
      const img = (rest / p[P.NGrp]) | 0;
      const dcol = p[P.CBase] + img * p[P.CImg] + g * p[P.CGrp];
      const gx = p[P.Out] + img * p[P.X] + g * Cg * p[P.H] * p[P.W] * 4;
      k.col2im(dcol, p[P.Ldc], ch * per, Math.min(Cg, (ch + 1) * per), p[P.H], p[P.W], p[P.KH], p[P.KW], p[P.Sh], p[P.Sw], p[P.Ph], p[P.Pw], p[P.Dh], p[P.Dw], p[P.OH], p[P.OW], gx);
      return;
    }
    case JobKind.DwForward:
    case JobKind.DwBackInput: {
      // planes of [N * C]; input planes H x W, output planes OH x OW; weights per channel (plane % C)
      const per = p[P.Chunk], C = p[P.C], khw = p[P.KH] * p[P.KW];
      const end = Math.min(p[P.Planes], (t + 1) * per);
      for (let q = t * per; q < end; q++) {
        const w = p[P.Wt] + (q % C) * khw * 4;
        if (kind === JobKind.DwForward) {
          k.dwPlane(p[P.X] + q * p[P.H] * p[P.W] * 4, p[P.H], p[P.W], w, p[P.KH], p[P.KW], p[P.Sh], p[P.Sw], p[P.Ph], p[P.Pw], p[P.Dh], p[P.Dw], p[P.OH], p[P.OW], p[P.Out] + q * p[P.OH] * p[P.OW] * 4, 0, p[P.Flip], scratch);
        } else {
          // here X is gy (planes OH x OW) and Out is gx (planes H x W)
          k.dwPlaneBackInput(p[P.X] + q * p[P.OH] * p[P.OW] * 4, p[P.OH], p[P.OW], w, p[P.KH], p[P.KW], p[P.Sh], p[P.Sw], p[P.Ph], p[P.Pw], p[P.Dh], p[P.Dw], p[P.H], p[P.W], p[P.Out] + q * p[P.H] * p[P.W] * 4, scratch);
        }
      }
      return;
    }
    case JobKind.DwBackWeight: {
      // X = x [N, C, H, W], CBase = gy [N, C, OH, OW], Out = gw [C, KH, KW] (zeroed by the caller)
      const per = p[P.Chunk], C = p[P.C], khw = p[P.KH] * p[P.KW];
      const HW = p[P.H] * p[P.W], OHW = p[P.OH] * p[P.OW];
      const end = Math.min(C, (t + 1) * per);
      for (let c = t * per; c < end; c++) {
        for (let img = 0; img < p[P.NImg]; img++) {
          const q = img * C + c;
          k.dwPlaneBackWeight(p[P.CBase] + q * OHW * 4, p[P.OH], p[P.OW], p[P.X] + q * HW * 4, p[P.H], p[P.W], p[P.KH], p[P.KW], p[P.Sh], p[P.Sw], p[P.Ph], p[P.Pw], p[P.Dh], p[P.Dw], p[P.Out] + c * khw * 4, scratch);
        }
      }
      return;
    }
    case JobKind.ConvDirect: {
      const mc = p[P.MChunks], img = (t / mc) | 0, p0 = (t % mc) * p[P.Mpc], p1 = Math.min(p[P.Mp], p0 + p[P.Mpc]);
      k.padPhases(p[P.X] + img * p[P.BImg], p[P.C], p[P.H], p[P.W], p[P.Sh], p[P.Sw], p[P.Na], p[P.Nb], p[P.Ph], p[P.Pw], p[P.Hq], p[P.Wq], scratch);
      k.convDirect(scratch, p[P.Offs], p[P.K], p[P.ABase], p0, p1, p[P.O], p[P.OH], p[P.OW], p[P.Wq], p[P.Out] + img * p[P.CImg], scratch + p[P.ScratchPer] - 128);
      return;
    }
    case JobKind.ConvDirectWeight: {
      // task t: (image chunk, group of output channels, group of taps); pads the chunk's images and lays its gy out
      // pixel-major in scratch
      const tg = Math.ceil(p[P.K] / p[P.Taps]), og = p[P.MChunks];
      const k0 = (t % tg) * p[P.Taps], o0 = (((t / tg) | 0) % og) * p[P.Mpc] * 4, chunk = (t / (tg * og)) | 0;
      const n0 = chunk * p[P.Chunk], nn = Math.min(p[P.Chunk], p[P.NImg] - n0);
      for (let i = 0; i < nn; i++) {
        k.padPhases(p[P.X] + (n0 + i) * p[P.BImg], p[P.C], p[P.H], p[P.W], p[P.Sh], p[P.Sw], p[P.Na], p[P.Nb], p[P.Ph], p[P.Pw], p[P.Hq], p[P.Wq], scratch + i * p[P.XsImg]);
      }
      const width = p[P.Mpc] * 4, pixels = p[P.OH] * p[P.OW], gt = scratch + p[P.Chunk] * p[P.XsImg];
      for (let i = 0; i < nn; i++) {
        k.transposePlanes(p[P.CBase] + ((n0 + i) * p[P.O] + o0) * pixels * 4, Math.min(width, p[P.O] - o0), pixels, gt + i * pixels * width * 4, width);
      }
      k.convDirectBackWeight(gt, pixels * width * 4, width >> 4, o0, p[P.O], p[P.OH], p[P.OW], scratch, p[P.XsImg], p[P.Wq], p[P.Offs],
        k0, Math.min(p[P.K], k0 + p[P.Taps]), nn, p[P.Out] + chunk * p[P.O] * p[P.K] * 4, p[P.K]);
      return;
    }
    case JobKind.SumPartials: {
      const i0 = t * p[P.Chunk];
      k.sumStrided(p[P.X], p[P.Count], p[P.N], i0, Math.min(p[P.N], i0 + p[P.Chunk]), p[P.Wt]);
      return;
    }
    case JobKind.BnStats:
    case JobKind.BnForward:
    case JobKind.BnBackward: {
      const per = p[P.Chunk], N = p[P.BnN], C = p[P.BnC], HW = p[P.BnHW];
      const end = Math.min(C, (t + 1) * per);
      for (let c = t * per; c < end; c++) {
        if (kind === JobKind.BnStats) k.bnStats(p[P.BnX], N, C, HW, c, p[P.BnSums]);
        else if (kind === JobKind.BnForward) k.bnForward(p[P.BnX], N, C, HW, c, p[P.BnPar], p[P.BnOut]);
        else k.bnBackward(p[P.BnGy], p[P.BnX], N, C, HW, c, p[P.BnPar], p[P.BnSums], p[P.BnOut]);
      }
      return;
    }
    default:
      throw new PtslabError(`cpu backend: unknown job kind ${kind}`);
  }
}
