// FCPTS objectives as plain functions of a context: each term is `(ctx) => Tensor` (a scalar), and an objective is
// a weighted sum of named terms. Ablations swap or add terms by name from a config (`objectiveFromConfig`) or pass
// their own functions; nothing in the training loop knows which terms exist.
//
//   L = L_rec + lambda * L_c,  L_c = |S - S*| (abs) or (S - S*)^2 (pow2),  S = sum_l n_l S_l / N
//   L_rec: KL with temperature on logits (default T = 4), MSE on logits, or MSE on block outputs + a logit loss.

import { ArgumentError, F, NumericError, type Tensor } from '../core/index.js';

export interface ObjectiveContext {
  readonly studentLogits: Tensor;
  readonly teacherLogits: Tensor;
  /** Block outputs captured by forward hooks, by module name (empty unless a term asks for features). */
  readonly studentFeatures: ReadonlyMap<string, Tensor>;
  readonly teacherFeatures: ReadonlyMap<string, Tensor>;
  /** Differentiable global sparsity S (through the bridge function). */
  readonly globalSparsity: Tensor;
  readonly targetSparsity: number;
  /** Differentiable per-layer sparsities S_l, by weight name. */
  readonly layerSparsity: ReadonlyMap<string, Tensor>;
  readonly step: number;
  readonly totalSteps: number;
}

export type ObjectiveTerm = (ctx: ObjectiveContext) => Tensor;

export interface WeightedTerm {
  readonly fn: ObjectiveTerm;
  readonly weight: number;
  /** The term needs block outputs (the loop installs forward hooks only then). */
  readonly needsFeatures?: boolean;
}

export type Objective = Readonly<Record<string, WeightedTerm>>;

/** Evaluate every term; returns the weighted total and each unweighted value (for logs and curves). */
export function evaluate(obj: Objective, ctx: ObjectiveContext): { total: Tensor; values: Record<string, number> } {
  let total: Tensor | null = null;
  const values: Record<string, number> = {};
  for (const [name, t] of Object.entries(obj)) {
    const v = t.fn(ctx);
    if (v.size !== 1) throw new ArgumentError(`objective term '${name}' must return a scalar, got shape [${v.shape}]`);
    const x = v.item();
    if (!Number.isFinite(x)) throw new NumericError(`objective term '${name}' is ${x} at iteration ${ctx.step}`);
    values[name] = x;
    if (t.weight !== 0) total = total === null ? v.mul(t.weight) : total.add(v.mul(t.weight));
  }
  if (total === null) throw new ArgumentError('objective has no term with a non-zero weight');
  return { total, values };
}

export const needsFeatures = (obj: Objective): boolean => Object.values(obj).some((t) => t.needsFeatures);

// Terms.

/** T^2 * KL(softmax(teacher / T) || softmax(student / T)), batch mean. */
export const klLogits = (temperature = 4): ObjectiveTerm => (c) => F.klDiv(c.studentLogits, c.teacherLogits.detach(), { temperature });

export const mseLogits = (): ObjectiveTerm => (c) => F.mseLoss(c.studentLogits, c.teacherLogits.detach());

/** Mean over captured blocks of MSE(student block output, teacher block output). */
export const mseFeatures = (): ObjectiveTerm => (c) => {
  let sum: Tensor | null = null;
  for (const [name, s] of c.studentFeatures) {
    const t = c.teacherFeatures.get(name);
    if (!t) throw new ArgumentError(`mseFeatures: teacher has no captured output for block '${name}'`);
    const l = F.mseLoss(s, t.detach());
    sum = sum === null ? l : sum.add(l);
  }
  if (sum === null) throw new ArgumentError('mseFeatures: no block outputs were captured');
  return sum.div(c.studentFeatures.size);
};

export type ControlForm = 'abs' | 'pow2';

/** L_c = |S - S*| or (S - S*)^2. */
export const controlLoss = (form: ControlForm = 'abs'): ObjectiveTerm => (c) => {
  const d = c.globalSparsity.sub(c.targetSparsity);
  return form === 'abs' ? d.abs() : d.mul(d);
};

// Config.

export interface ObjectiveConfig {
  /** Reconstruction: 'kl' (default), 'mse' on logits, or 'mse-features' (block outputs + a KL logit loss). */
  reconstruction?: 'kl' | 'mse' | 'mse-features';
  temperature?: number;
  control?: ControlForm;
  /** Weight of the control loss (lambda). */
  lambda?: number;
  /** Weight of the feature term in 'mse-features'. */
  featureWeight?: number;
}

/** The FCPTS objective from a config: L_rec + lambda * L_c. */
export function objectiveFromConfig(cfg: ObjectiveConfig = {}): Objective {
  const T = cfg.temperature ?? 4;
  const rec = cfg.reconstruction ?? 'kl';
  const terms: Record<string, WeightedTerm> = {};
  if (rec === 'kl' || rec === 'mse-features') terms.kl = { fn: klLogits(T), weight: 1 };
  if (rec === 'mse') terms.mse = { fn: mseLogits(), weight: 1 };
  if (rec === 'mse-features') terms.features = { fn: mseFeatures(), weight: cfg.featureWeight ?? 1, needsFeatures: true };
  if (!['kl', 'mse', 'mse-features'].includes(rec)) {
    throw new ArgumentError(`objective.reconstruction must be 'kl', 'mse' or 'mse-features', got '${rec}'`);
  }
  const form = cfg.control ?? 'abs';
  if (form !== 'abs' && form !== 'pow2') throw new ArgumentError(`objective.control must be 'abs' or 'pow2', got '${form}'`);
  terms.control = { fn: controlLoss(form), weight: cfg.lambda ?? 1 };
  return terms;
}
