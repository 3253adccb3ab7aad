// One pruning cell, end to end: load the dense model and its data with the experiment kit (experiments/kit.ts),
// check the options against the method and the model before any work, prune with sparsity/prune.ts, evaluate, and write DIR/model.safetensors,
// DIR/result.json and DIR/history.json (FCPTS curves). `ptslab prune` is a thin CLI over this; `ptslab run` calls it
// once per grid cell. Files are written atomically and fsynced (nn/io/atomic.ts).

import { TeacherCache } from '../sparsity/teacher-cache.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError, type Tensor } from '../core/index.js';
import { serializeSafetensors, type Module } from '../nn/index.js';
import { writeAtomic, writeJsonAtomic } from '../nn/io/atomic.js';
import {
  blockNames, checkPruneConfig, neededModules, objectiveFromConfig, prunableLayers, prune, registry,
  type ObjectiveConfig, type PluginRecord, type PruneConfig, type Registry, type StepLog,
} from '../sparsity/index.js';
import { loadExperiment, type Experiment } from './kit.js';
import { modelMacs } from '../sparsity/macs.js';
import { cellResult } from './cell-result.js';

export interface CellSpec {
  /** A bundled model name, or null with arch + weights. */
  model: string | null;
  arch?: string;
  weights?: string;
  dataset?: string;
  dataDir?: string;
  widthMult?: number;
  shortcut?: 'A' | 'B';
  /** Prefix renames of the checkpoint's keys ('linear.=fc.'). */
  rename?: string[];
  /** image-folder: input side, normalisation and calibration augmentation (experiments/kit.ts). */
  folderImageSize?: number;
  mean?: number[];
  std?: number[];
  augment?: 'none' | 'cifar' | 'imagenet';
  /** How many held-out images to evaluate (default all). */
  evalImages?: number;
  /** ImageNet only: training crop and evaluation resize/crop sides (default 224 / 256; the FCPTS code used 224 / 224). */
  imageSize?: { crop: number; resize: number };
  /** The dense model's top-1 on this same evaluation set, when already known (skips evaluating the dense model). */
  denseTop1?: number;
  prune: PruneConfig;
}

import type { CellResult } from './cell-result.js';
export type { CellResult };

/** Pretty-printed JSON written atomically and fsynced (the runner's cell.json, run.json, error.json go through it too). */
export { writeJsonAtomic };

export interface CellRunOptions {
  out: string | null;
  commit: string | null;
  version: string;
  onStep?: (log: StepLog) => void;
  log?: (line: string) => void;
  /** Evaluation progress (images done of total), of the dense and of the pruned model. */
  onEval?: (done: number, total: number) => void;
  /** Plugins loaded for this cell (recorded in result.json with their sha256). */
  plugins?: PluginRecord[];
  /** Teacher-logit caches shared between the cells of one run, by teacherKey (see PruneData.teacherCache). */
  teacherCaches?: Map<string, TeacherCache>;
}

/**
 * What fixes the teacher's logits of every calibration view: the dense model, its data and augmentation (the spec
 * without method, sparsity and method options), and the calibration subset (calib and seed).
 */
export const teacherKey = (s: CellSpec): string =>
  JSON.stringify({ ...s, evalImages: undefined, denseTop1: undefined, prune: undefined, calib: s.prune.calib ?? null, seed: s.prune.seed ?? 0 });

/** Load the cell's model and check its options against the method and the model, before any data is read. */
export function prepareCell(spec: CellSpec, reg: Registry = registry, loaded?: Experiment): Experiment {
  const checked = checkPruneConfig(spec.prune, { registry: reg });
  if (!checked.spec) throw new ArgumentError(checked.problems.join('; '));
  const exp = loaded ?? loadCellModel(spec);
  checkAgainstModel(exp.model, spec.prune);
  if ('objective' in checked.spec.options.shape) {
    // the modules the objective's terms read must exist in the model
    const objective = objectiveFromConfig(spec.prune.objective as ObjectiveConfig | undefined, reg.terms());
    const have = new Set(exp.model.namedModules().map(([n]) => n));
    const missing = neededModules(objective, blockNames(exp.model)).filter((n) => !have.has(n));
    if (missing.length) throw new ArgumentError(`objective: the terms read module ${missing.map((m) => `'${m}'`).join(', ')}, which ${exp.arch} does not have (modules: ${[...have].filter(Boolean).slice(0, 8).join(', ')}, ...)`);
  }
  return exp;
}

/** The cell's dense model and data (nothing read yet). */
export const loadCellModel = (spec: CellSpec): Experiment =>
  loadExperiment({ model: spec.model ?? undefined, arch: spec.arch, weights: spec.weights, dataset: spec.dataset, dataDir: spec.dataDir, widthMult: spec.widthMult, shortcut: spec.shortcut, rename: spec.rename, imageSize: spec.imageSize,
    folderImageSize: spec.folderImageSize, mean: spec.mean, std: spec.std, augment: spec.augment });

/** keepDense names, and an allocation's layers and total, against the model's prunable layers. */
export function checkAgainstModel(model: Module, cfg: PruneConfig): void {
  const layers = prunableLayers(model, { keepDense: cfg.keepDense });
  if (cfg.allocation) {
    const names = layers.map((l) => l.name);
    const alloc = cfg.allocation as Record<string, number>;
    const missing = names.filter((n) => !(n in alloc));
    const extra = Object.keys(alloc).filter((n) => !names.includes(n));
    if (missing.length || extra.length) {
      const list = (xs: string[]) => `${xs.slice(0, 5).join(', ')}${xs.length > 5 ? `, ... (${xs.length - 5} more)` : ''}`;
      throw new ArgumentError(`allocation: does not match the model's ${names.length} prunable layers${missing.length ? `; ${missing.length} missing (${list(missing)})` : ''}${extra.length ? `; ${extra.length} not prunable layers of the model (${list(extra)})` : ''}`);
    }
    const N = layers.reduce((a, l) => a + l.weight.size, 0);
    const total = layers.reduce((a, l) => a + alloc[l.name] * l.weight.size, 0) / N;
    // an allocation is what the method starts from (initSparsity, where it takes one) or prunes to
    const want = typeof cfg.initSparsity === 'number' ? cfg.initSparsity : cfg.sparsity;
    if (Math.abs(total - want) > layers.length / N + 1e-9) {
      throw new ArgumentError(`allocation: its layers total ${(100 * total).toFixed(3)}% sparsity, the target is ${(100 * want).toFixed(3)}%`);
    }
  }
}

export async function runCell(spec: CellSpec, o: CellRunOptions): Promise<CellResult> {
  const exp = prepareCell(spec);
  let denseTop1 = spec.denseTop1 ?? (spec.evalImages || spec.imageSize ? null : exp.recordedTop1);
  if (denseTop1 === null) {
    o.log?.('evaluating the dense model');
    denseTop1 = (await exp.evaluate(exp.model, { images: spec.evalImages, onBatch: o.onEval })).top1;
  }
  const onNumericError = (state: Record<string, Tensor>): string | void => {
    if (!o.out) return;
    mkdirSync(o.out, { recursive: true });
    const file = join(o.out, 'last-good.safetensors');
    writeAtomic(file, serializeSafetensors(state));
    return file;
  };
  let teacherCache: TeacherCache | undefined;
  if (o.teacherCaches) {
    const key = teacherKey(spec);
    teacherCache = o.teacherCaches.get(key) ?? o.teacherCaches.set(key, new TeacherCache()).get(key);
  }
  const outcome = await prune({ model: exp.model, makeModel: exp.makeModel, calibSource: exp.calibSource, calibSourcePlain: exp.calibSourcePlain, onStep: o.onStep, log: o.log, onNumericError, teacherCache }, spec.prune);
  o.log?.(`pruned in ${outcome.seconds.toFixed(1)} s; evaluating`);
  const acc = await exp.evaluate(exp.model, { images: spec.evalImages, onBatch: o.onEval });
  // the input size of this model's images: one held-out image (the cell's transform, so imageSize is honoured)
  const macs = modelMacs(exp.model, exp.heldOut({ images: 1 }).get(0).image.shape);
  const result = cellResult({
    config: spec.prune, experiment: exp, outcome, top1: acc.top1, denseTop1, evalImages: acc.count, macs,
    commit: o.commit, version: o.version, plugins: o.plugins,
  });

  if (o.out) {
    mkdirSync(o.out, { recursive: true });
    writeAtomic(join(o.out, 'model.safetensors'), serializeSafetensors(exp.model.stateDict(), {
      method: result.method, sparsity: String(result.achievedSparsity), arch: exp.arch, dataset: exp.dataset,
      ...((exp.model as { shortcut?: string }).shortcut ? { shortcut: (exp.model as { shortcut?: string }).shortcut! } : {}),
    }));
    writeJsonAtomic(join(o.out, 'history.json'), outcome.history);
    writeJsonAtomic(join(o.out, 'result.json'), result);
  }
  return result;
}
