// erk-kd as a registered method: FCPTS's distillation loop under fixed masks (ERK's at the target, or a given
// allocation's), no thresholds learned: the baseline that isolates what FCPTS's learned allocation adds.

import { z } from 'zod';
import { erkKd as runErkKd } from '../fcpts.js';
import { defineMethod, distillInputOf, distillOptions } from './types.js';

export const erkKd = defineMethod({
  name: 'erk-kd',
  description: "distillation (FCPTS's loop and objective) under fixed ERK masks, or an --allocation's",
  options: z.strictObject(distillOptions).partial(),
  bnRecal: 'optional',
  calibration: true,
  iterations: (o) => o.iters ?? 1600,
  run: async (ctx, o) => {
    const r = await runErkKd(distillInputOf(ctx), { ...o, sparsity: ctx.sparsity, iters: o.iters ?? 1600, batchSize: ctx.calib.batchSize, keepDense: ctx.keepDense });
    return { masks: r.masks, history: r.history };
  },
});
