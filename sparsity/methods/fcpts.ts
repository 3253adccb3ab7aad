// FCPTS as a registered method: learned per-layer thresholds under distillation, then the exact correction
// (sparsity/fcpts.ts). The teacher is a frozen copy of the dense model; calibration batches are augmented.

import { z } from 'zod';
import { fcpts as runFcpts } from '../fcpts.js';
import { defineMethod, distillInputOf, distillOptions } from './types.js';

export const fcpts = defineMethod({
  name: 'fcpts',
  description: 'learn one magnitude threshold per layer by distillation + |S - S*|, then prune exactly (Gong et al. 2024)',
  options: z.strictObject({
    ...distillOptions,
    estimator: z.enum(['histogram', 'kde']).describe('density estimate of the bridge function (default histogram)'),
    gradMode: z.enum(['detached', 'ste']).describe('ste: thresholds learn from the whole loss (paper); detached: from the control loss only (released code)'),
    thresholdMode: z.enum(['absolute', 'relative']).describe('t = sigmoid(s), or sigmoid(s) * max|w| (default absolute)'),
    initSparsity: z.number().min(0).lt(1).describe('sparsity of the ERK initialisation (default the target)'),
  }).partial(),
  bnRecal: 'optional',
  calibration: true,
  iterations: (o) => o.iters ?? 1600,
  run: async (ctx, o) => {
    const r = await runFcpts(distillInputOf(ctx), { ...o, sparsity: ctx.sparsity, iters: o.iters ?? 1600, batchSize: ctx.calib.batchSize, keepDense: ctx.keepDense });
    return { masks: r.masks, history: r.history, correction: r.correction };
  },
});
