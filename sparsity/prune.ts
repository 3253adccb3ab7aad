// One pruning run, whatever the method: the pipeline behind `ptslab prune` and every cell of `ptslab run`.
// Given a dense model, a way to build a fresh copy, calibration sources and a config, it looks the method up in the
// registry, validates its options against the method's schema (every problem at once, before any work), builds the
// calibration data when the method reads it, runs the method, zeroes the masks for good, optionally re-calibrates
// BatchNorm, counts the zeros actually in the weights, and reports per-layer sparsity, timings, the FCPTS curves and
// the exact-sparsity correction. Nothing here knows which methods exist.

import type { TeacherCache } from './teacher-cache.js';
import type { z } from 'zod';
import { ArgumentError, NumericError, manualSeed, noGrad, type Tensor } from '../core/index.js';
import type { Module } from '../nn/index.js';
import type { Dataset } from '../nn/data/index.js';
import { bnRecalibrate } from './baselines.js';
import { calibration } from './calibration.js';
import type { OnStep, StepLog } from './distill.js';
import type { Correction } from './fcpts.js';
import { applyMasks, layerReports, type LayerReport } from './masks.js';
import { BUILTIN_METHODS, commonOptions, RESERVED_KEYS, type BuiltinMethodName, type CommonOptions, type MethodSpec } from './methods/index.js';
import { prunableLayers } from './prunable.js';
import { registry as defaultRegistry, type Registry } from './registry.js';

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type ShapeOf<M> = M extends { options: z.ZodObject<infer S> } ? S : never;
type BuiltinShapes = UnionToIntersection<ShapeOf<(typeof BUILTIN_METHODS)[BuiltinMethodName]>>;
/** The options of every built-in method, flat (keys several methods take have one schema), all optional. */
export type BuiltinMethodOptions = { [K in keyof BuiltinShapes]?: BuiltinShapes[K] extends z.ZodType ? z.input<BuiltinShapes[K]> : never };

/** The built-in method names (the registry may hold more: `registry.methodNames()`). */
export const PRUNE_METHODS = Object.keys(BUILTIN_METHODS) as BuiltinMethodName[];
export type PruneMethod = BuiltinMethodName;

/** The common options and the methods' own, flat (what a config's `options` holds). */
export type PruneOptions = CommonOptions & BuiltinMethodOptions & { [option: string]: unknown };

/** A pruning run's config: the method, the common options and the method's own options, flat. */
export type PruneConfig = PruneOptions & {
    /** A registered method's name. */
    method: string;
    sparsity: number;
    seed?: number;
    /** Re-calibrate BatchNorm statistics on the calibration images after pruning (where the method allows it). */
    bnRecal?: boolean;
  };

export interface PruneData {
  /** The dense model, pruned in place. */
  model: Module;
  /** A fresh model of the same architecture (weights are copied in). */
  makeModel: () => Module;
  /** Training split with augmentation (calibration images are drawn from it). */
  calibSource: Dataset;
  /** The same split without augmentation (BN re-calibration, POT). */
  calibSourcePlain: Dataset;
  onStep?: OnStep;
  /** Progress lines of the slow one-shot paths (POT: one per reconstructed layer). */
  log?: (line: string) => void;
  /** See DistillInput.onNumericError. */
  onNumericError?: (state: Record<string, Tensor>, iteration: number) => string | void;
  /**
   * A teacher-logit cache shared with other runs on the same dense model and calibration data (same source, calib
   * and seed, hence the same views): a grid's FCPTS and erk-kd cells then run the teacher on each view once between
   * them (sparsity/teacher-cache.ts). Default: a fresh cache per run.
   */
  teacherCache?: TeacherCache;
}

export interface PruneOutcome {
  layers: LayerReport[];
  prunableParams: number;
  zeroParams: number;
  achievedSparsity: number;
  seconds: number;
  history: StepLog[];
  /** FCPTS: learned sparsity before the exact correction and the offset applied. */
  correction?: Correction;
}

/** A copy of the model with the same weights and buffers. */
export function copyModel(model: Module, makeModel: () => Module): Module {
  const c = makeModel();
  c.loadStateDict(model.stateDict(), { strict: true });
  return c;
}

/** Zeros actually present in the prunable weights (what achievedSparsity is counted from). */
export function countZeros(model: Module, keepDense?: readonly string[]): { prunable: number; zeros: number } {
  let prunable = 0;
  let zeros = 0;
  for (const l of prunableLayers(model, { keepDense })) {
    prunable += l.weight.size;
    for (const v of l.weight.toArray()) if (v === 0) zeros++;
  }
  return { prunable, zeros };
}

const issues = (e: z.ZodError, at: string): string[] => e.issues.map((i) => `${[at, ...i.path.map(String)].filter(Boolean).join('.')}: ${i.message.replace(/^Invalid input: /, '')}`);

/**
 * Check a config against its method: the method exists, the common options and the method's own options fit their
 * schemas, BN re-calibration applies; with `strict`, every other key is a problem naming the methods it applies to.
 * Returns the method and its parsed options, or the problems (one line each, key first).
 */
export function checkPruneConfig(cfg: PruneConfig, o: { registry?: Registry; strict?: boolean } = {}): { spec: MethodSpec; options: Record<string, unknown>; problems: string[] } | { spec: null; options: null; problems: string[] } {
  const reg = o.registry ?? defaultRegistry;
  const problems: string[] = [];
  if (!reg.hasMethod(String(cfg.method))) return { spec: null, options: null, problems: [`method: unknown method '${String(cfg.method)}', expected one of ${reg.methodNames().join(', ')}`] };
  const spec = reg.method(cfg.method);
  if (!(typeof cfg.sparsity === 'number' && cfg.sparsity >= 0 && cfg.sparsity < 1)) problems.push(`sparsity: must be a number in [0, 1), got ${String(cfg.sparsity)}`);
  if (cfg.seed !== undefined && !(Number.isInteger(cfg.seed) && cfg.seed >= 0)) problems.push(`seed: must be a non-negative integer, got ${String(cfg.seed)}`);
  if (cfg.bnRecal && spec.bnRecal === 'never') problems.push(`bnRecal: BN re-calibration does not apply to ${spec.name}`);
  const pick = (keys: readonly string[]) => Object.fromEntries(keys.filter((k) => cfg[k] !== undefined).map((k) => [k, cfg[k]]));
  const common = commonOptions.safeParse(pick(Object.keys(commonOptions.shape)));
  if (!common.success) problems.push(...issues(common.error, ''));
  const own = spec.options.safeParse(pick(Object.keys(spec.options.shape)));
  if (!own.success) problems.push(...issues(own.error, '').map((p) => `${p} (method ${spec.name}${spec.source ? `, plugin ${spec.source}` : ''})`));
  if (o.strict ?? true) {
    const keys = reg.optionKeys();
    for (const k of Object.keys(cfg)) {
      if (cfg[k] === undefined || (RESERVED_KEYS as readonly string[]).includes(k) || k in spec.options.shape) continue;
      const takers = keys.get(k)?.methods;
      problems.push(takers ? `${k}: does not apply to method ${spec.name} (it applies to ${takers.join(', ')})` : `${k}: unknown option (no registered method takes it)`);
    }
  }
  return problems.length ? { spec: null, options: null, problems } : { spec, options: own.data as Record<string, unknown>, problems };
}

/**
 * The config with only the keys that apply to its method (the common ones and the method's own). Grids give every
 * cell the shared options; this is the cell's own view of them.
 */
export function applicableConfig(cfg: PruneConfig, reg: Registry = defaultRegistry): PruneConfig {
  if (!reg.hasMethod(cfg.method)) return cfg;
  const own = reg.method(cfg.method).options.shape;
  return Object.fromEntries(Object.entries(cfg).filter(([k]) => (RESERVED_KEYS as readonly string[]).includes(k) || k in own)) as PruneConfig;
}

export async function prune(data: PruneData, cfg: PruneConfig, o: { registry?: Registry } = {}): Promise<PruneOutcome> {
  const reg = o.registry ?? defaultRegistry;
  const checked = checkPruneConfig(cfg, { registry: reg });
  if (!checked.spec) throw new ArgumentError(`prune: ${checked.problems.join('; ')}`);
  const { spec, options } = checked;
  const layers = prunableLayers(data.model, { keepDense: cfg.keepDense });
  for (const [name, t] of Object.entries(data.model.stateDict())) {
    if (!t.toArray().every(Number.isFinite)) throw new NumericError(`prune: the dense model's ${name} holds NaN or Inf`);
  }
  const seed = cfg.seed ?? 0;
  manualSeed(seed);
  const calib = calibration({ augmented: data.calibSource, plain: data.calibSourcePlain }, { images: cfg.calib, seed, batchSize: cfg.batchSize });
  const start = performance.now();
  const { model } = data;
  const r = await spec.run(
    {
      model,
      makeModel: data.makeModel,
      copy: () => copyModel(model, data.makeModel),
      layers,
      sparsity: cfg.sparsity,
      seed,
      keepDense: cfg.keepDense,
      calib,
      terms: reg.terms(),
      onStep: data.onStep,
      log: data.log,
      onNumericError: data.onNumericError,
      teacherCache: data.teacherCache,
    },
    options,
  );
  applyMasks(layers, r.masks);
  if (cfg.bnRecal) bnRecalibrate(model, await calib.batches());
  model.eval();
  const { prunable, zeros } = noGrad(() => countZeros(model, cfg.keepDense));
  return {
    layers: layerReports(layers, r.masks),
    prunableParams: prunable,
    zeroParams: zeros,
    achievedSparsity: zeros / prunable,
    seconds: (performance.now() - start) / 1000,
    history: r.history ?? [],
    ...(r.correction ? { correction: r.correction } : {}),
  };
}
