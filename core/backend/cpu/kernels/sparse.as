// Sparse direct convolution for inference with unstructured-sparse weights (core/backend/cpu/sparse.ts). It reads
// the image padded and phase-split by padPhases (direct.as), so every tap of every output pixel is a stride-1 read at
// a per-tap offset, exactly as convDirect does; but a row of the weights keeps only its nonzero taps (CSR: the nonzero
// j of output channel o are rows[o] <= j < rows[o + 1], with its value vals[j] and the byte offset offs[j] of its tap),
// so the work is nonzeros x pixels. Pixels run over the flattened index q = oh * Wq + ow, 32 at a time in eight v128
// accumulators; lanes with ow >= OW or q >= OH * Wq are computed and dropped. A 1x1 conv or a linear layer is the same
// loop on an unpadded [K][P] input (SpMM).

import { madd } from './common';

/**
 * out[o][oh][ow] = bias[o] + sum_j vals[j] * xs[oh * Wq + ow + offs[j]] for output channels [o0, o1) of one image.
 * bias: address of O floats, or 0. out: the image's output [O][OH][OW]. tmp: 256 bytes of scratch (a tile that
 * crosses a row end and where its lanes go). xs must be readable 32 floats past the last tap's last pixel.
 */
export function sparseConv(
  xs: usize, rows: usize, offs: usize, vals: usize, bias: usize, o0: i32, o1: i32, OH: i32, OW: i32, Wq: i32, out: usize,
  tmp: usize,
): void {
  const nq = OH * Wq;
  const plane = <usize>(OH * OW) << 2;
  const lanes = tmp + 128;
  let oh = 0, ow = 0;
  for (let q0 = 0; q0 < nq; q0 += 32) {
    const xq = xs + (<usize>q0 << 2);
    const inRow = ow + 32 <= OW;
    if (!inRow) {
      // where each lane of this tile lands in an output plane (-1: dropped), once for all output channels
      let h = oh, w = ow;
      for (let l = 0; l < 32; l++) {
        store<i32>(lanes + (<usize>l << 2), w < OW && h < OH ? (h * OW + w) << 2 : -1);
        if (++w >= Wq) { w = 0; h++; }
      }
    }
    const at = out + (<usize>(oh * OW + ow) << 2);
    for (let o = o0; o < o1; o++) {
      const b = f32x4.splat(bias ? load<f32>(bias + (<usize>o << 2)) : 0);
      let c0 = b, c1 = b, c2 = b, c3 = b, c4 = b, c5 = b, c6 = b, c7 = b;
      const j1 = load<i32>(rows + (<usize>o << 2), 4);
      for (let j = load<i32>(rows + (<usize>o << 2)); j < j1; j++) {
        const xp = xq + <usize>load<i32>(offs + (<usize>j << 2));
        const s = v128.load32_splat(vals + (<usize>j << 2));
        c0 = madd(s, v128.load(xp), c0); c1 = madd(s, v128.load(xp, 16), c1);
        c2 = madd(s, v128.load(xp, 32), c2); c3 = madd(s, v128.load(xp, 48), c3);
        c4 = madd(s, v128.load(xp, 64), c4); c5 = madd(s, v128.load(xp, 80), c5);
        c6 = madd(s, v128.load(xp, 96), c6); c7 = madd(s, v128.load(xp, 112), c7);
      }
      if (inRow) {
        const cp = at + <usize>o * plane;
        v128.store(cp, c0); v128.store(cp, c1, 16); v128.store(cp, c2, 32); v128.store(cp, c3, 48);
        v128.store(cp, c4, 64); v128.store(cp, c5, 80); v128.store(cp, c6, 96); v128.store(cp, c7, 112);
        continue;
      }
      v128.store(tmp, c0); v128.store(tmp, c1, 16); v128.store(tmp, c2, 32); v128.store(tmp, c3, 48);
      v128.store(tmp, c4, 64); v128.store(tmp, c5, 80); v128.store(tmp, c6, 96); v128.store(tmp, c7, 112);
      const op = out + <usize>o * plane;
      for (let l = 0; l < 32; l++) {
        const d = load<i32>(lanes + (<usize>l << 2));
        if (d >= 0) store<f32>(op + <usize>d, load<f32>(tmp + (<usize>l << 2)));
      }
    }
    ow += 32;
    while (ow >= Wq) { ow -= Wq; oh++; }
  }
}
