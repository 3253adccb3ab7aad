// FCPTS end to end: learn one magnitude threshold per layer jointly with the weights, by SGD on
// L = L_rec (distillation from a frozen dense teacher) + lambda * L_c (|S - S*|), then make the global sparsity
// exact. See ../shared/docs/method.md for the method and where the paper and the released code differ.
//
// One iteration: t_l = sigmoid(s_l); S_l = bridge(w_l, t_l) (exact count forward, density backward);
// S = sum n_l S_l / N; the student runs with w_l * [|w_l| > t_l] (detached or straight-through mask); the teacher
// runs without gradient; objective terms see both; SGD steps weights, biases, BN affine (weight decay) and the
// s_l (no weight decay); the cosine-with-warm-up schedule steps per iteration.

import { ArgumentError, NumericError, noGrad, tensor, type Tensor } from '../core/index.js';
import { CosineWarmupLR, SGD, type Module } from '../nn/index.js';
import { allocateLayers } from './allocate.js';
import { initialLogits, layerSparsity, thresholdOf, type ThresholdMode } from './bridge.js';
import { estimator, type EstimatorName } from './density.js';
import { masksFromCounts, exactGlobalMasks, prunedCount, type Mask } from './masks.js';
import { maskTensor, maskedWeight, type GradMode } from './mask-ops.js';
import { evaluate, needsFeatures, objectiveFromConfig, type Objective, type ObjectiveConfig } from './objective.js';
import { prunableLayers, type ModuleLayer } from './prunable.js';
import { captureBlockOutputs } from './features.js';

export interface FcptsConfig {
  sparsity: number;
  iters: number;
  batchSize: number;
  /** Default 0.04 * batchSize / 256 (the paper's recipe). */
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  /** Linear warm-up length; default one epoch of the calibration set. */
  warmupIters?: number;
  estimator?: EstimatorName;
  /**
   * How the thresholds learn: 'ste' (default; the paper's joint learning, the reconstruction loss reaches them through
   * a straight-through mask) or 'detached' (the released code: only the control loss moves them). The ablation on
   * fmnist-resnet20 decided the default: STE 93.47 / 93.08 vs detached 93.32 / 92.87 at 80% / 90% (erk-kd 93.39 / 92.88).
   */
  gradMode?: GradMode;
  thresholdMode?: ThresholdMode;
  /**
   * The teacher's BN/dropout mode: 'eval' (default; the dense model's own predictions) or 'train' (batch statistics,
   * as the released code runs it). On fmnist-resnet20 'train' was the better one at 70/80/90%: 93.79 / 93.56 / 93.09
   * against 93.63 / 93.32 / 92.87 detached, and with STE 93.79 / 93.58 / 93.27 against 93.63 / 93.47 / 93.08 (one
   * seed each; experiments/results/fmnist-resnet20-ablations).
   */
  teacherMode?: 'eval' | 'train';
  /** The objective, as a config or as terms. */
  objective?: ObjectiveConfig | Objective;
  keepDense?: readonly string[];
  erkPower?: number;
  /** erk-kd: keep the ERK masks fixed and only distil (no thresholds learned). */
  freezeMasks?: boolean;
  /** Sparsity of the ERK initialisation (default: the target); another value tests the control loss's pull. */
  initSparsity?: number;
  /**
   * Start from (fcpts) or keep (erk-kd) this allocation instead of ERK's: each prunable layer's sparsity by weight
   * name, totalling the initial sparsity (e.g. another run's learned allocation).
   */
  allocation?: Readonly<Record<string, number>>;
}

export interface StepLog {
  step: number;
  lr: number;
  /** Unweighted objective terms. */
  terms: Record<string, number>;
  loss: number;
  /** Global sparsity of the current thresholds (exact count). */
  sparsity: number;
}

export interface FcptsInput {
  /** The dense model; it is sparsified in place. */
  model: Module;
  /** A frozen dense copy of the model. */
  teacher: Module;
  /** The calibration batch for an iteration (augmentation included). */
  batch: (step: number) => Tensor | Promise<Tensor>;
  /** Number of calibration images (sets the default warm-up of one epoch). */
  calibSize: number;
  onStep?: (log: StepLog) => void;
  /**
   * Called once when a NaN/Inf stops the run, with the last good state (weights, buffers and the threshold logits
   * as `threshold.<layer>`, copied every `goodStateEvery` iterations, default 50) and its iteration; the caller saves it.
   */
  onNumericError?: (state: Record<string, Tensor>, iteration: number) => string | void;
  goodStateEvery?: number;
}

export interface LayerReport {
  name: string;
  params: number;
  sparsity: number;
}

export interface FcptsResult {
  masks: Mask[];
  layers: LayerReport[];
  history: StepLog[];
  /** The common log-offset of the exact correction. */
  delta: number;
  /** Global sparsity of the learned thresholds before the correction. */
  learnedSparsity: number;
}

const isObjective = (o: ObjectiveConfig | Objective | undefined): o is Objective =>
  o !== undefined && Object.values(o).some((v) => typeof v === 'object' && v !== null && 'fn' in v);

export async function fcpts(input: FcptsInput, cfg: FcptsConfig): Promise<FcptsResult> {
  const { model, teacher } = input;
  if (!(cfg.sparsity >= 0 && cfg.sparsity < 1)) throw new ArgumentError(`fcpts: sparsity must be in [0, 1), got ${cfg.sparsity}`);
  if (!(Number.isInteger(cfg.iters) && cfg.iters > 0)) throw new ArgumentError(`fcpts: iters must be a positive integer, got ${cfg.iters}`);
  const layers = prunableLayers(model, { keepDense: cfg.keepDense });
  const N = layers.reduce((s, l) => s + l.weight.size, 0);
  const mode = cfg.thresholdMode ?? 'absolute';
  const gradMode = cfg.gradMode ?? 'ste';
  const est = estimator(cfg.estimator ?? 'histogram');
  const objective = isObjective(cfg.objective) ? cfg.objective : objectiveFromConfig(cfg.objective);
  const lr = cfg.lr ?? (0.04 * cfg.batchSize) / 256;

  // ERK initialisation (or the given allocation): thresholds at its sparsities, or fixed masks for erk-kd.
  const initSparsity = cfg.initSparsity ?? cfg.sparsity;
  const erk = allocateLayers(layers, cfg.allocation ? { method: 'given', sparsity: initSparsity, allocation: cfg.allocation } : { method: 'erk', sparsity: initSparsity, erkPower: cfg.erkPower ?? 1 });
  const s = initialLogits(layers, erk.counts.map((c, i) => c / layers[i].weight.size), mode).map((v) =>
    tensor(v, [], { requiresGrad: !cfg.freezeMasks }),
  );
  const fixed = cfg.freezeMasks ? masksFromCounts(layers, erk.counts).map((m, i) => maskTensor(m, layers[i].weight)) : null;
  const fixedSparsity = erk.counts.map((c, i) => c / layers[i].weight.size);

  const weights = model.parameters();
  const opt = new SGD(
    [
      { params: weights, weightDecay: cfg.weightDecay ?? 3e-4 },
      ...(cfg.freezeMasks ? [] : [{ params: s, weightDecay: 0 }]),
    ],
    { lr, momentum: cfg.momentum ?? 0.9 },
  );
  const warmup = Math.min(cfg.warmupIters ?? Math.ceil(input.calibSize / cfg.batchSize), cfg.iters);
  const sched = new CosineWarmupLR(opt, { totalSteps: cfg.iters, warmupSteps: warmup, warmupStartFactor: 0 });
  const history: StepLog[] = [];
  const withFeatures = needsFeatures(objective);
  const studentTap = withFeatures ? captureBlockOutputs(model) : null;
  const teacherTap = withFeatures ? captureBlockOutputs(teacher) : null;
  teacher.train(cfg.teacherMode === 'train');
  for (const p of teacher.parameters()) p.requiresGrad = false;

  // The last good state, copied every goodStateEvery iterations, handed over if a NaN/Inf stops the run.
  const every = Math.max(1, input.goodStateEvery ?? 50);
  const snapshot = (): Record<string, Tensor> => {
    const st: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(model.stateDict())) st[k] = v.clone();
    layers.forEach((l, i) => (st[`threshold.${l.name}`] = s[i].detach().clone()));
    return st;
  };
  let good = { state: snapshot(), iteration: -1 };
  try {
    for (let step = 0; step < cfg.iters; step++) {
      if (step > 0 && step % every === 0) good = { state: snapshot(), iteration: step - 1 };
      const x = await input.batch(step);
      const thresholds = layers.map((l, i) => (fixed ? null : thresholdOf(s[i], l.weight, mode)));
      layers.forEach((l, i) => {
        l.module.weightTransform = fixed ? (w) => w.mul(fixed[i]) : (w) => maskedWeight(w, thresholds[i]!, gradMode);
      });
      const layerS = new Map<string, Tensor>();
      let global: Tensor = tensor(0);
      layers.forEach((l, i) => {
        const Sl = fixed ? tensor(fixedSparsity[i]) : layerSparsity(l.weight, thresholds[i]!, est);
        layerS.set(l.name, Sl);
        global = global.add(Sl.mul(l.weight.size / N));
      });
      model.train();
      const studentLogits = model.call(x);
      const teacherLogits = noGrad(() => teacher.call(x));
      const { total, values } = evaluate(objective, {
        studentLogits,
        teacherLogits,
        studentFeatures: studentTap?.outputs ?? new Map(),
        teacherFeatures: teacherTap?.outputs ?? new Map(),
        globalSparsity: global,
        targetSparsity: cfg.sparsity,
        layerSparsity: layerS,
        step,
        totalSteps: cfg.iters,
      });
      const loss = total.item();
      if (!Number.isFinite(loss)) throw new NumericError(`fcpts: loss is ${loss} at iteration ${step} (terms ${JSON.stringify(values)})`);
      opt.zeroGrad();
      total.backward();
      opt.step();
      sched.step();
      checkFinite(layers, s, step);
      const log: StepLog = { step, lr: opt.paramGroups[0].lr, terms: values, loss, sparsity: global.item() };
      history.push(log);
      input.onStep?.(log);
      studentTap?.clear();
      teacherTap?.clear();
    }
  } catch (e) {
    if (e instanceof NumericError && input.onNumericError) {
      const where = input.onNumericError(good.state, good.iteration);
      const at = good.iteration < 0 ? 'before the first iteration' : `after iteration ${good.iteration}`;
      throw new NumericError(`${e.message}; the last good state (${at}) was saved${where ? ` to ${where}` : ''}`);
    }
    throw e;
  } finally {
    for (const l of layers) l.module.weightTransform = null;
    studentTap?.remove();
    teacherTap?.remove();
  }

  // The exact correction: one common log-offset on all thresholds, ties by global magnitude.
  let masks: Mask[];
  let delta = 0;
  let learned: number;
  if (fixed) {
    masks = fixed.map(maskFromTensor);
    learned = masks.reduce((a, m) => a + prunedCount(m), 0) / N;
  } else {
    const t = layers.map((l, i) => noGrad(() => thresholdOf(s[i], l.weight, mode)).item());
    learned = layers.reduce((a, l, i) => a + countAtMost(l.weight, t[i]), 0) / N;
    const exact = exactGlobalMasks(layers, t, cfg.sparsity);
    masks = exact.masks;
    delta = exact.delta;
  }
  applyMasks(layers, masks);
  return {
    masks,
    layers: layers.map((l, i) => ({ name: l.name, params: l.weight.size, sparsity: prunedCount(masks[i]) / l.weight.size })),
    history,
    delta,
    learnedSparsity: learned,
  };
}

function maskFromTensor(t: Tensor): Mask {
  return Uint8Array.from(t.toArray(), (v) => (v !== 0 ? 1 : 0));
}

function countAtMost(w: Tensor, t: number): number {
  let n = 0;
  for (const v of w.toArray()) if (Math.abs(v) <= t) n++;
  return n;
}

/** Zero the pruned weights for good. */
export function applyMasks(layers: readonly ModuleLayer[], masks: readonly Mask[]): void {
  noGrad(() => layers.forEach((l, i) => l.weight.copy_(l.weight.mul(maskTensor(masks[i], l.weight)))));
}

function checkFinite(layers: readonly ModuleLayer[], s: readonly Tensor[], step: number): void {
  for (const l of layers) {
    const w = l.weight.data;
    for (let i = 0; i < w.length; i++) {
      if (!Number.isFinite(w[i])) throw new NumericError(`fcpts: weight ${l.name} holds ${w[i]} after iteration ${step}`);
    }
  }
  s.forEach((v, i) => {
    if (!Number.isFinite(v.item())) throw new NumericError(`fcpts: threshold logit of ${layers[i].name} is ${v.item()} after iteration ${step}`);
  });
}
