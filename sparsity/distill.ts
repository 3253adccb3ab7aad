// The distillation loop FCPTS and erk-kd share: the student (the model being pruned) runs with masked weights and
// learns to reproduce a frozen dense teacher under an objective (sparsity/objective.ts). What differs between the
// two is only how the masks come about, a `MaskSchedule`: learned thresholds (FCPTS: threshold logits trained with
// the weights, differentiable layer sparsities through the bridge) or fixed masks (erk-kd: ERK's or a given
// allocation's, constant sparsities).
//
// One iteration: the schedule's masks for this step; S = sum n_l S_l / N; the student runs in train mode with the
// masks applied as parametrizations of each layer's weight (stacked over any the user registered, and removed after
// the loop); the teacher runs without gradient; objective terms see both, plus the outputs of the modules they ask
// for; SGD steps weights, biases, BN affine (weight decay) and the schedule's parameters (no weight decay); the
// cosine-with-warm-up schedule steps per iteration. A NaN/Inf stops the run and hands over the last good state.
// With an eval-mode teacher, an objective on logits only and batches whose samples carry view keys (the
// calibration's keyedLoader), the teacher's logits come from a cache (sparsity/teacher-cache.ts): the teacher runs
// only on views it has not seen, with the same logits, so the run is unchanged.

import { ArgumentError, NumericError, Tensor, backend, noGrad, tensor } from '../core/index.js';
import { CosineWarmupLR, SGD, withParametrizations, type Module, type Parametrization } from '../nn/index.js';
import { enableSparseInference, type SparseInference } from '../nn/sparse-inference.js';
import { blockNames, captureModuleOutputs } from './features.js';
import { evaluate, neededModules, objectiveFromConfig, type Objective, type ObjectiveConfig, type TermSpec } from './objective.js';
import type { ModuleLayer } from './prunable.js';
import type { CalibrationBatch } from './calibration.js';
import { cacheApplies, teacherCacheOf, type TeacherCache, type TeacherCacheOptions } from './teacher-cache.js';

export interface StepLog {
  step: number;
  lr: number;
  /** Unweighted objective terms. */
  terms: Record<string, number>;
  loss: number;
  /** Global sparsity of the current masks (exact count). */
  sparsity: number;
}

/**
 * What an iteration can tell beyond its StepLog, computed only when asked (on a device backend each value is a
 * readback): layerSparsity() gives each prunable layer's sparsity S_l used in this iteration's loss, in layer order.
 */
export interface StepDetail {
  layerSparsity(): number[];
}

/** Called after each iteration; the loop waits for a returned promise (a page yields to paint there). */
export type OnStep = (log: StepLog, detail: StepDetail) => unknown;

export interface DistillInput {
  /** The dense model; it is trained (and, by the caller, sparsified) in place. */
  model: Module;
  /** A frozen dense copy of the model. */
  teacher: Module;
  /**
   * The calibration batch for an iteration (augmentation included): the images, or the images with each sample's
   * view key (Calibration.keyedLoader), which lets the teacher's logits be cached.
   */
  batch: (step: number) => Tensor | CalibrationBatch | Promise<Tensor | CalibrationBatch>;
  /**
   * The teacher-logit cache (used only where it applies: eval-mode teacher, logits-only objective, keyed batches):
   * true or omitted a fresh one of 256 MiB at most, { maxBytes } a fresh one of that bound, a TeacherCache to use
   * (and read its stats() after, or share it between runs of the same teacher and data), false none.
   */
  teacherCache?: boolean | TeacherCache | TeacherCacheOptions;
  /** Number of calibration images (sets the default warm-up of one epoch). */
  calibSize: number;
  onStep?: OnStep;
  /**
   * Called once when a NaN/Inf stops the run, with the last good state (weights, buffers and the schedule's state,
   * e.g. threshold logits as `threshold.<layer>`, copied every `goodStateEvery` iterations, default 50) and its
   * iteration; the caller saves it and may return where.
   */
  onNumericError?: (state: Record<string, Tensor>, iteration: number) => string | void;
  goodStateEvery?: number;
  /** Where objective terms named in a config are looked up (default: the built-in terms). */
  terms?: ReadonlyMap<string, TermSpec>;
}

export interface DistillConfig {
  sparsity: number;
  iters: number;
  batchSize: number;
  /** Default 0.04 * batchSize / 256 (the paper's recipe). */
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  /** Linear warm-up length; default one epoch of the calibration set. */
  warmupIters?: number;
  /** The teacher's BN/dropout mode (see FcptsConfig.teacherMode). */
  teacherMode?: 'eval' | 'train';
  /** The objective, as a config or as terms. */
  objective?: ObjectiveConfig | Objective;
}

/** How the student's prunable weights are masked while it distils. */
export interface MaskSchedule {
  /** Parameters the schedule trains (threshold logits), in an SGD group without weight decay. */
  readonly params: readonly Tensor[];
  /** Start an iteration: the masks for this step, and each layer's (differentiable) sparsity S_l. */
  begin(): Tensor[];
  /** Layer i's weight parametrization, reading the state begin() set. */
  transform(i: number): Parametrization;
  /** Extra state for the last-good snapshot, by key. */
  state(): Record<string, Tensor>;
  /** Throw a NumericError naming the layer when its state is not finite. */
  checkFinite(step: number): void;
}

const isObjective = (o: ObjectiveConfig | Objective | undefined): o is Objective =>
  o !== undefined && Object.values(o).some((v) => typeof v === 'object' && v !== null && 'fn' in v);

export function checkDistillConfig(where: string, cfg: DistillConfig): void {
  if (!(cfg.sparsity >= 0 && cfg.sparsity < 1)) throw new ArgumentError(`${where}: sparsity must be in [0, 1), got ${cfg.sparsity}`);
  if (!(Number.isInteger(cfg.iters) && cfg.iters > 0)) throw new ArgumentError(`${where}: iters must be a positive integer, got ${cfg.iters}`);
  if (!(Number.isInteger(cfg.batchSize) && cfg.batchSize > 0)) throw new ArgumentError(`${where}: batchSize must be a positive integer, got ${cfg.batchSize}`);
}

/** Run the loop; returns the per-step log. The model's weights are trained; masks are not applied for good here. */
export async function distill(input: DistillInput, layers: readonly ModuleLayer[], cfg: DistillConfig, masks: MaskSchedule): Promise<StepLog[]> {
  const { model, teacher } = input;
  const N = layers.reduce((s, l) => s + l.weight.size, 0);
  const objective = isObjective(cfg.objective) ? cfg.objective : objectiveFromConfig(cfg.objective, input.terms);
  const lr = cfg.lr ?? (0.04 * cfg.batchSize) / 256;
  const opt = new SGD(
    [{ params: model.parameters(), weightDecay: cfg.weightDecay ?? 3e-4 }, ...(masks.params.length ? [{ params: [...masks.params], weightDecay: 0 }] : [])],
    { lr, momentum: cfg.momentum ?? 0.9 },
  );
  const warmup = Math.min(cfg.warmupIters ?? Math.ceil(input.calibSize / cfg.batchSize), cfg.iters);
  const sched = new CosineWarmupLR(opt, { totalSteps: cfg.iters, warmupSteps: warmup, warmupStartFactor: 0 });
  const history: StepLog[] = [];
  const blocks = blockNames(model);
  const tapped = neededModules(objective, blocks);
  teacher.train(cfg.teacherMode === 'train');
  for (const p of teacher.parameters()) p.requiresGrad = false;

  // The last good state, copied every goodStateEvery iterations, handed over if a NaN/Inf stops the run.
  const every = Math.max(1, input.goodStateEvery ?? 50);
  const snapshot = (): Record<string, Tensor> => {
    const st: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(model.stateDict())) st[k] = v.clone();
    for (const [k, v] of Object.entries(masks.state())) st[k] = v.detach().clone();
    return st;
  };
  let good = { state: snapshot(), iteration: -1 };
  const studentTap = tapped.length ? captureModuleOutputs(model, tapped) : null;
  const teacherTap = tapped.length ? captureModuleOutputs(teacher, tapped) : null;
  const cache = cacheApplies(cfg.teacherMode, tapped) ? teacherCacheOf(input.teacherCache) : null;
  // A frozen eval-mode teacher whose module outputs nobody reads runs fused (BatchNorm folded into its convs, the
  // ReLU modules after them in the conv kernels: nn/sparse-inference.ts), on host backends (folded weights live on the
  // host); set up on the first batch, which is its probe, and removed after the loop.
  const fuseTeacher = cfg.teacherMode !== 'train' && tapped.length === 0 && !deviceOf(teacher);
  let fusedTeacher = null as SparseInference | null;
  try {
    await withParametrizations(layers.map((l, i) => [l.module, 'weight', masks.transform(i)] as const), async () => {
      // the model's parameters stay where they are for the whole run (Module.moveTo happens before)
      const upload = deviceOf(model);
      for (let step = 0; step < cfg.iters; step++) {
        if (step > 0 && step % every === 0) good = { state: snapshot(), iteration: step - 1 };
        const b = await input.batch(step);
        const { images: batchImages, keys } = b instanceof Tensor ? { images: b, keys: undefined } : b;
        // one upload per batch where the backend keeps arrays on a device (the model was moved there)
        const x = upload ? batchImages.detach().moveTo(backend()) : batchImages;
        if (keys && keys.length !== x.shape[0]) throw new ArgumentError(`distill: batch ${step} has ${keys.length} view keys for ${x.shape[0]} images`);
        const layerSparsity = masks.begin();
        const layerS = new Map<string, Tensor>();
        let global: Tensor = tensor(0);
        layers.forEach((l, i) => {
          layerS.set(l.name, layerSparsity[i]);
          global = global.add(layerSparsity[i].mul(l.weight.size / N));
        });
        if (fuseTeacher && !fusedTeacher) fusedTeacher = enableSparseInference(teacher, 'off', { fuse: true, probe: x });
        model.train();
        const studentLogits = model.call(x);
        const teacherLogits = cache && keys ? cache.teacherLogits(teacher, x, keys) : noGrad(() => teacher.call(x));
        const { total, values } = evaluate(objective, {
          studentLogits,
          teacherLogits,
          studentFeatures: studentTap?.outputs ?? new Map(),
          teacherFeatures: teacherTap?.outputs ?? new Map(),
          blocks,
          globalSparsity: global,
          targetSparsity: cfg.sparsity,
          layerSparsity: layerS,
          step,
          totalSteps: cfg.iters,
        });
        const loss = total.item();
        if (!Number.isFinite(loss)) throw new NumericError(`distill: loss is ${loss} at iteration ${step} (terms ${JSON.stringify(values)})`);
        opt.zeroGrad();
        total.backward();
        opt.step();
        sched.step();
        checkFiniteWeights(layers, step);
        masks.checkFinite(step);
        const log: StepLog = { step, lr: opt.paramGroups[0].lr, terms: values, loss, sparsity: global.item() };
        history.push(log);
        await input.onStep?.(log, { layerSparsity: () => layerSparsity.map((t) => t.item()) });
        studentTap?.clear();
        teacherTap?.clear();
      }
    });
  } catch (e) {
    if (e instanceof NumericError && input.onNumericError) {
      const where = input.onNumericError(good.state, good.iteration);
      const at = good.iteration < 0 ? 'before the first iteration' : `after iteration ${good.iteration}`;
      throw new NumericError(`${e.message}; the last good state (${at}) was saved${where ? ` to ${where}` : ''}`);
    }
    throw e;
  } finally {
    studentTap?.remove();
    teacherTap?.remove();
    fusedTeacher?.remove();
  }
  return history;
}

/** Whether the model's parameters live on a device (Module.moveTo), not on the host. */
const deviceOf = (model: Module): boolean => model.parameters().some((p) => !p.isHost);

function checkFiniteWeights(layers: readonly ModuleLayer[], step: number): void {
  for (const l of layers) {
    // on a device: count the non-finite weights there (w - w is 0 only for finite w), read back only to name one
    if (!l.weight.isHost && noGrad(() => l.weight.sub(l.weight).eq(0).sum()).item() === l.weight.size) continue;
    const w = l.weight.toArray();
    for (let i = 0; i < w.length; i++) {
      if (!Number.isFinite(w[i])) throw new NumericError(`distill: weight ${l.name} holds ${w[i]} after iteration ${step}`);
    }
  }
}
