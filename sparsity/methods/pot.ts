// POT as a registered method (sparsity/pot.ts): BN folding, global L2 allocation, channel statistics and bias
// correction, layer-wise reconstruction on a plain calibration subset. Its BatchNorms become biases, so BN
// re-calibration never applies.

import { z } from 'zod';
import { pot as runPot } from '../pot.js';
import { defineMethod, posInt } from './types.js';

export const pot = defineMethod({
  name: 'pot',
  description: 'POT (Lazarevich et al. 2021): BN folding, global L2 magnitude, statistics and bias correction, layer-wise reconstruction',
  options: z.strictObject({
    potIters: posInt.describe('Adam iterations per layer (default 2000)'),
    potImages: posInt.describe('calibration images for bias correction and reconstruction (default 256)'),
  }).partial(),
  bnRecal: 'never',
  calibration: true,
  run: async (ctx, o) => {
    const dense = ctx.copy();
    const batches = await ctx.calib.batches(Math.min(o.potImages ?? 256, ctx.calib.size));
    const start = performance.now();
    let done = 0;
    const onLayer = (name: string, loss: number, iters: number) =>
      ctx.log?.(`pot: layer ${++done} ${name}: reconstruction loss ${loss.toExponential(3)} after ${iters} steps (${((performance.now() - start) / 1000).toFixed(0)} s)`);
    const r = runPot(ctx.model, dense, batches, { sparsity: ctx.sparsity, keepDense: ctx.keepDense, reconIters: o.potIters ?? 2000, onLayer });
    return { masks: r.masks };
  },
});
