// What a pruning method is: a `MethodSpec` declares its name, its options as one zod object schema (the option
// type is z.infer of it, so no shape is written twice), what applies to it (BatchNorm re-calibration, calibration
// images, iterations) and a `run` that returns the masks. The registry (sparsity/registry.ts) holds the built-in
// specs of this folder and those plugins add; `prune`, config validation, the CLI's choices and `--help` all read
// it. The options every method shares (sparsity, seed, calibration size, batch size, layers kept dense, BN
// re-calibration) are not part of a method's schema: they come in the context.

import type { TeacherCache } from '../teacher-cache.js';
import { z } from 'zod';
import type { Tensor } from '../../core/index.js';
import type { Module } from '../../nn/index.js';
import type { Calibration } from '../calibration.js';
import type { DistillInput, OnStep, StepLog } from '../distill.js';
import type { Correction } from '../fcpts.js';
import type { Mask } from '../masks.js';
import { objectiveConfigSchema, type TermSpec } from '../objective.js';
import type { ModuleLayer } from '../prunable.js';

/**
 * Whether BatchNorm re-calibration applies after the method: 'one-shot' (it does, and a config's `bnRecal: true`
 * adds the method's `+bnrecal` row), 'optional' (it does when asked for by name or `--bn-recal`), 'never'.
 */
export type BnRecal = 'one-shot' | 'optional' | 'never';

export interface MethodContext {
  /** The dense model; the method prunes it in place (prune() zeroes the returned masks for good afterwards). */
  readonly model: Module;
  /** A fresh model of the same architecture (random weights). */
  readonly makeModel: () => Module;
  /** A copy of the model with its current weights and buffers (before run prunes it: the dense teacher). */
  copy(): Module;
  /** The prunable layers (every Conv2d / Linear weight minus keepDense), in model order. */
  readonly layers: readonly ModuleLayer[];
  readonly sparsity: number;
  readonly seed: number;
  readonly keepDense?: readonly string[];
  /** Calibration images (only built for a method that declares `calibration: true`). */
  readonly calib: Calibration;
  /** Objective terms by name (built-in and plugins'). */
  readonly terms: ReadonlyMap<string, TermSpec>;
  readonly onStep?: OnStep;
  /** Progress lines of slow one-pass methods. */
  readonly log?: (line: string) => void;
  readonly onNumericError?: (state: Record<string, Tensor>, iteration: number) => string | void;
  /** A teacher-logit cache shared with other runs on the same dense model and calibration data (PruneData.teacherCache). */
  readonly teacherCache?: TeacherCache;
}

export interface MethodResult {
  /** One mask per prunable layer (1 = kept), in ctx.layers order, pruning exactly round(S* N) weights. */
  masks: Mask[];
  /** Per-iteration log of an iterative method (FCPTS curves). */
  history?: StepLog[];
  /** FCPTS: the exact-sparsity correction it applied. */
  correction?: Correction;
}

export interface MethodSpec<O extends z.ZodObject = z.ZodObject> {
  readonly name: string;
  /** One line for --help and docs. */
  readonly description: string;
  /** The method's own options (strict object; every key optional unless the method cannot run without it). */
  readonly options: O;
  readonly bnRecal: BnRecal;
  /** Set by the registry for a plugin's method: the plugin file. */
  readonly source?: string;
  /** The method reads calibration images. */
  readonly calibration: boolean;
  /** Iterations it runs for these options (progress bars); absent for one-pass methods. */
  iterations?(o: z.output<O>): number;
  run(ctx: MethodContext, o: z.output<O>): MethodResult | Promise<MethodResult>;
}

/** Declare a method (identity, so that `run` sees its options' type). */
export const defineMethod = <O extends z.ZodObject>(m: MethodSpec<O>): MethodSpec<O> => m;

// Option schemas shared by several methods (one definition each, so keys that several methods take agree).

export const posInt = z.number().int().positive();
/** Per-layer sparsities by weight name. */
export const allocationSchema = z.record(z.string(), z.number().min(0).max(1));

export const erkPower = z.number().min(0).describe('ERK exponent (default 1)');

/** The options every method gets through its context; a method's schema may not declare these keys. */
export const commonOptions = z.strictObject({
  calib: posInt.describe('calibration images (default 1024)'),
  batchSize: posInt.describe('batch size of calibration batches (default 64)'),
  keepDense: z.array(z.string()).describe('layers to keep dense (module or weight names)'),
}).partial();
export type CommonOptions = z.infer<typeof commonOptions>;
/** Keys a method schema cannot use: the common options and what the grid sets. */
export const RESERVED_KEYS = ['method', 'sparsity', 'seed', 'bnRecal', ...Object.keys(commonOptions.shape)] as const;

/** The distillation loop's options (FCPTS and erk-kd). */
export const distillOptions = {
  iters: posInt.describe('iterations (default 1600)'),
  lr: z.number().positive().describe('learning rate (default 0.04 * batch / 256)'),
  momentum: z.number().min(0).max(1).describe('SGD momentum (default 0.9)'),
  weightDecay: z.number().min(0).describe('weight decay (default 3e-4)'),
  warmupIters: z.number().int().min(0).describe('linear warm-up iterations (default one epoch of the calibration set)'),
  teacherMode: z.enum(['eval', 'train']).describe("the teacher's BatchNorm mode (default eval)"),
  objective: objectiveConfigSchema,
  erkPower,
  allocation: allocationSchema.describe('per-layer sparsities to start from (fcpts) or keep (erk-kd) instead of ERK'),
};

/** The distillation loop's input for a method run: the model, a frozen copy as teacher, augmented calibration batches. */
export const distillInputOf = (ctx: MethodContext): DistillInput => ({
  model: ctx.model,
  teacher: ctx.copy(),
  batch: ctx.calib.keyedLoader(),
  calibSize: ctx.calib.size,
  onStep: ctx.onStep,
  onNumericError: ctx.onNumericError,
  teacherCache: ctx.teacherCache,
  terms: ctx.terms,
});
