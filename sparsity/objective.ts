// FCPTS objectives as plain functions of a context: each term is `(ctx) => Tensor` (a scalar), and an objective is
// a weighted sum of named terms. Terms are registered by name (`TermSpec`: options as one zod schema, what the term
// needs from the step, and a factory), so a config names a term with its weight and options, and plugins add terms
// the same way the built-in ones are declared here; nothing in the training loop knows which terms exist.
//
//   L = L_rec + lambda * L_c,  L_c = |S - S*| (abs) or (S - S*)^2 (pow2),  S = sum_l n_l S_l / N
//   L_rec: KL with temperature on logits (default T = 4), MSE on logits, or MSE on block outputs + a logit loss.

import { z } from 'zod';
import { ArgumentError, F, NumericError, type Tensor } from '../core/index.js';

export interface ObjectiveContext {
  readonly studentLogits: Tensor;
  readonly teacherLogits: Tensor;
  /** Outputs of the modules the terms asked for (`needs.modules`), captured by forward hooks, by module name. */
  readonly studentFeatures: ReadonlyMap<string, Tensor>;
  readonly teacherFeatures: ReadonlyMap<string, Tensor>;
  /** The model's block names (what `needs: { modules: 'blocks' }` resolves to). */
  readonly blocks: readonly string[];
  /** Differentiable global sparsity S (through the bridge function). */
  readonly globalSparsity: Tensor;
  readonly targetSparsity: number;
  /** Differentiable per-layer sparsities S_l, by weight name. */
  readonly layerSparsity: ReadonlyMap<string, Tensor>;
  readonly step: number;
  readonly totalSteps: number;
}

export type ObjectiveTerm = (ctx: ObjectiveContext) => Tensor;

/** What a term reads beyond logits and sparsities: the outputs of named modules (or every block), hooked only then. */
export interface TermNeeds {
  readonly modules?: readonly string[] | 'blocks';
}

export interface WeightedTerm {
  readonly fn: ObjectiveTerm;
  readonly weight: number;
  readonly needs?: TermNeeds;
  /** Where the term was registered, when a plugin did (named in its errors). */
  readonly source?: string;
}

export type Objective = Readonly<Record<string, WeightedTerm>>;

/** Evaluate every term; returns the weighted total and each unweighted value (for logs and curves). */
export function evaluate(obj: Objective, ctx: ObjectiveContext): { total: Tensor; values: Record<string, number> } {
  let total: Tensor | null = null;
  const values: Record<string, number> = {};
  for (const [key, t] of Object.entries(obj)) {
    const name = t.source ? `${key}' (plugin ${t.source})` : `${key}'`;
    const v = t.fn(ctx);
    if (!v || typeof (v as Tensor).item !== 'function') throw new ArgumentError(`objective term '${name} must return a scalar Tensor, got ${v === null ? 'null' : typeof v}`);
    if (v.size !== 1) throw new ArgumentError(`objective term '${name} must return a scalar, got shape [${v.shape}]`);
    const x = v.item();
    if (!Number.isFinite(x)) throw new NumericError(`objective term '${name} is ${x} at iteration ${ctx.step}`);
    values[key] = x;
    if (t.weight !== 0) total = total === null ? v.mul(t.weight) : total.add(v.mul(t.weight));
  }
  if (total === null) throw new ArgumentError('objective has no term with a non-zero weight');
  return { total, values };
}

/** The modules whose outputs the objective's terms read ('blocks' resolved with `blocks`), each once. */
export function neededModules(obj: Objective, blocks: readonly string[]): string[] {
  const out = new Set<string>();
  for (const t of Object.values(obj)) {
    const m = t.needs?.modules;
    for (const name of m === 'blocks' ? blocks : (m ?? [])) out.add(name);
  }
  return [...out];
}

// Terms.

/** T^2 * KL(softmax(teacher / T) || softmax(student / T)), batch mean. */
export const klLogits = (temperature = 4): ObjectiveTerm => (c) => F.klDiv(c.studentLogits, c.teacherLogits.detach(), { temperature });

export const mseLogits = (): ObjectiveTerm => (c) => F.mseLoss(c.studentLogits, c.teacherLogits.detach());

/** Mean over modules (default: every block) of MSE(student module output, teacher module output). */
export const mseFeatures = (modules?: readonly string[]): ObjectiveTerm => (c) => {
  const names = modules ?? c.blocks;
  let sum: Tensor | null = null;
  for (const name of names) {
    const s = c.studentFeatures.get(name);
    const t = c.teacherFeatures.get(name);
    if (!s || !t) throw new ArgumentError(`mseFeatures: no captured output for module '${name}' (declare it in the term's needs)`);
    const l = F.mseLoss(s, t.detach());
    sum = sum === null ? l : sum.add(l);
  }
  if (sum === null) throw new ArgumentError('mseFeatures: no module outputs to compare');
  return sum.div(names.length);
};

export type ControlForm = 'abs' | 'pow2';

/** L_c = |S - S*| or (S - S*)^2. */
export const controlLoss = (form: ControlForm = 'abs'): ObjectiveTerm => (c) => {
  const d = c.globalSparsity.sub(c.targetSparsity);
  return form === 'abs' ? d.abs() : d.mul(d);
};

// The term registry's entries.

/** A named objective term: its options (one zod object schema), what it needs, and a factory. */
export interface TermSpec<O extends z.ZodObject = z.ZodObject> {
  readonly name: string;
  readonly description: string;
  readonly options: O;
  /** Set by the registry for a plugin's term: the plugin file. */
  readonly source?: string;
  needs?(o: z.output<O>): TermNeeds;
  make(o: z.output<O>): ObjectiveTerm;
}

/** Declare a term (identity, for inference of its options' type). */
export const defineTerm = <O extends z.ZodObject>(t: TermSpec<O>): TermSpec<O> => t;

/** The built-in terms, typed over their names. */
export const BUILTIN_TERMS = {
  kl: defineTerm({
    name: 'kl',
    description: 'T^2 KL(softmax(teacher/T) || softmax(student/T)) on logits, batch mean',
    options: z.strictObject({ temperature: z.number().positive().optional() }),
    make: (o) => klLogits(o.temperature ?? 4),
  }),
  mse: defineTerm({ name: 'mse', description: 'MSE between student and teacher logits', options: z.strictObject({}), make: () => mseLogits() }),
  features: defineTerm({
    name: 'features',
    description: 'mean MSE of module outputs (default every block: ResNet layerN.M, MobileNetV2 features.K)',
    options: z.strictObject({ modules: z.array(z.string()).min(1).optional() }),
    needs: (o) => ({ modules: o.modules ?? 'blocks' }),
    make: (o) => mseFeatures(o.modules),
  }),
  control: defineTerm({
    name: 'control',
    description: 'the control loss |S - S*| (abs) or (S - S*)^2 (pow2)',
    options: z.strictObject({ form: z.enum(['abs', 'pow2']).optional() }),
    make: (o) => controlLoss(o.form ?? 'abs'),
  }),
} satisfies Record<string, TermSpec>;
export type BuiltinTermName = keyof typeof BUILTIN_TERMS;

/** Build one weighted term by name from a term table, validating its options; errors name the term and the key. */
export function makeTerm(terms: ReadonlyMap<string, TermSpec>, name: string, weight: number, options: Record<string, unknown> = {}): WeightedTerm {
  const spec = terms.get(name);
  if (!spec) throw new ArgumentError(`objective term '${name}' is not registered; registered terms: ${[...terms.keys()].join(', ')}`);
  if (!(typeof weight === 'number' && Number.isFinite(weight) && weight >= 0)) throw new ArgumentError(`objective.terms.${name}.weight: must be a number >= 0, got ${String(weight)}`);
  const parsed = spec.options.safeParse(options);
  if (!parsed.success) {
    throw new ArgumentError(`objective.terms.${name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`);
  }
  return { fn: spec.make(parsed.data), weight, needs: spec.needs?.(parsed.data), ...(spec.source ? { source: spec.source } : {}) };
}

// Config.

/** A registered term as a config names it: its weight and its options. */
export type TermConfig = { weight: number } & Record<string, unknown>;

export interface ObjectiveConfig {
  /** Reconstruction: 'kl' (default), 'mse' on logits, or 'mse-features' (block outputs + a KL logit loss). */
  reconstruction?: 'kl' | 'mse' | 'mse-features';
  temperature?: number;
  control?: ControlForm;
  /** Weight of the control loss (lambda). */
  lambda?: number;
  /** Weight of the feature term in 'mse-features'. */
  featureWeight?: number;
  /** More terms by registered name (built-in or from a plugin), each with its weight and options; added to the above. */
  terms?: Readonly<Record<string, TermConfig>>;
}

/** The config's zod schema (the shape above). */
export const objectiveConfigSchema = z.strictObject({
  reconstruction: z.enum(['kl', 'mse', 'mse-features']).describe('kl (default) or mse on logits, or mse-features (block outputs + kl)'),
  temperature: z.number().positive().describe('KL temperature (default 4)'),
  control: z.enum(['abs', 'pow2']).describe('control loss |S - S*| (abs, default) or (S - S*)^2'),
  lambda: z.number().min(0).describe('weight of the control loss (default 1)'),
  featureWeight: z.number().min(0).describe("weight of mse-features' block term (default 1)"),
  terms: z.record(z.string(), z.looseObject({ weight: z.number().min(0) })),
}).partial();

const builtinTermTable: ReadonlyMap<string, TermSpec> = new Map(Object.entries(BUILTIN_TERMS));

/** The FCPTS objective from a config: L_rec + lambda * L_c, plus any named terms (looked up in `terms`). */
export function objectiveFromConfig(cfg: ObjectiveConfig = {}, terms: ReadonlyMap<string, TermSpec> = builtinTermTable): Objective {
  const T = cfg.temperature ?? 4;
  const rec = cfg.reconstruction ?? 'kl';
  if (!['kl', 'mse', 'mse-features'].includes(rec)) {
    throw new ArgumentError(`objective.reconstruction must be 'kl', 'mse' or 'mse-features', got '${rec}'`);
  }
  const form = cfg.control ?? 'abs';
  if (form !== 'abs' && form !== 'pow2') throw new ArgumentError(`objective.control must be 'abs' or 'pow2', got '${form}'`);
  const out: Record<string, WeightedTerm> = {};
  const b = builtinTermTable;
  if (rec === 'kl' || rec === 'mse-features') out.kl = makeTerm(b, 'kl', 1, { temperature: T });
  if (rec === 'mse') out.mse = makeTerm(b, 'mse', 1);
  if (rec === 'mse-features') out.features = makeTerm(b, 'features', cfg.featureWeight ?? 1);
  out.control = makeTerm(b, 'control', cfg.lambda ?? 1, { form });
  for (const [name, { weight, ...opts }] of Object.entries(cfg.terms ?? {})) {
    if (Object.hasOwn(out, name)) throw new ArgumentError(`objective.terms.${name}: already in the objective (set it with the shorthand keys: reconstruction, temperature, control, lambda, featureWeight)`);
    out[name] = makeTerm(terms, name, weight, opts);
  }
  return out;
}
