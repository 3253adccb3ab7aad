// Experiment configs for `ptslab run`: the zod schema, loading from YAML or JSON, `${ENV}` substitution in the model's
// weight and data paths, and the checks that files exist. Every problem is reported before anything runs, one line
// per problem, each starting with the key path (`methods[2]: expected one of ...`, `model.weights: file not found:
// /x.pth`), as a ConfigError (the CLI exits 2 on it). experiments/README.md documents every key.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PtslabError } from '../../core/errors.js';
import { ALLOCATION_METHODS, PRUNE_METHODS, type PruneMethod } from '../../sparsity/index.js';
import { ARCHS, DATASETS, DATASET_INFO } from '../../nn/train/index.js';
import { BUNDLED_MODELS, bundledModelInfo } from '../models/index.js';
import { readAllocation } from '../allocation-file.js';

/** A config that cannot be used; `problems` holds one "key.path: message" line each. */
export class ConfigError extends PtslabError {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.join('; ')}`);
  }
}

/** Methods whose result can also be reported after BatchNorm re-calibration (the `+bnrecal` label). */
export const ONE_SHOT_METHODS = ALLOCATION_METHODS;
export const BNRECAL_SUFFIX = '+bnrecal';
/** Every method label a config may name: the prune methods, and `<method>+bnrecal` for all but pot. */
export const METHOD_LABELS = [...PRUNE_METHODS, ...PRUNE_METHODS.filter((m) => m !== 'pot').map((m) => `${m}${BNRECAL_SUFFIX}`)] as const;

const posInt = z.number().int().positive();
const unit = z.number().min(0).lt(1);
const objective = z.strictObject({
  reconstruction: z.enum(['kl', 'mse', 'mse-features']),
  temperature: z.number().positive(),
  control: z.enum(['abs', 'pow2']),
  lambda: z.number().min(0),
  featureWeight: z.number().min(0),
}).partial();

/** Per-layer sparsities by weight name, inline or as the path of a JSON file (a result.json: its learned allocation). */
const allocation = z.union([
  z.record(z.string(), z.number().min(0).max(1)),
  z.string().transform((file, ctx) => {
    try {
      return readAllocation(file);
    } catch (e) {
      ctx.issues.push({ code: 'custom', message: (e as Error).message.replace(/^allocation: /, ''), input: file });
      return z.NEVER;
    }
  }),
]);

/** Method options: PruneConfig without method, sparsity, seed and bnRecal (those come from the grid). */
const optionsShape = {
  iters: posInt,
  calib: posInt,
  batchSize: posInt,
  lr: z.number().positive(),
  momentum: z.number().min(0).max(1),
  weightDecay: z.number().min(0),
  warmupIters: z.number().int().min(0),
  estimator: z.enum(['histogram', 'kde']),
  gradMode: z.enum(['detached', 'ste']),
  thresholdMode: z.enum(['absolute', 'relative']),
  teacherMode: z.enum(['eval', 'train']),
  objective,
  keepDense: z.array(z.string()),
  erkPower: z.number().min(0),
  initSparsity: unit,
  allocation,
  potIters: posInt,
  potImages: posInt,
};
const options = z.strictObject(optionsShape).partial();
export type MethodOptions = z.infer<typeof options>;

const evalOptions = z.strictObject({
  /** Held-out images (a seeded subset; default all). */
  images: posInt,
  /** ImageNet only: centre-crop side (also the training crop) and the resize side before it. */
  crop: posInt,
  resize: posInt,
}).partial();
export type EvalOptions = z.infer<typeof evalOptions>;

const model = z.strictObject({
  name: z.string(),
  arch: z.enum(ARCHS),
  weights: z.string(),
  dataset: z.enum(DATASETS),
  dataDir: z.string(),
  widthMult: z.number().positive(),
}).partial();

const name = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only');
const method = z.enum(METHOD_LABELS);
const methodOptions = z.strictObject(Object.fromEntries(PRUNE_METHODS.map((m) => [m, options])) as Record<PruneMethod, typeof options>).partial();

export const configSchema = z.strictObject({
  name: name.optional(),
  description: z.string().optional(),
  model,
  methods: z.array(method).min(1),
  sparsities: z.array(z.number().gt(0).lt(1)).min(1),
  seeds: z.array(z.number().int().min(0)).min(1).default([0]),
  /** Shared defaults for every method. */
  options: options.default({}),
  /** Per-method overrides, merged over `options`. */
  methodOptions: methodOptions.default({}),
  /** Named option sets crossed with the grid; `methods` limits one to some methods. */
  ablations: z.array(options.extend({ name, methods: z.array(method).min(1).optional() })).default([]),
  /** Also report one-shot methods after BN re-calibration: true (every one-shot method listed) or a list. */
  bnRecal: z.union([z.boolean(), z.array(z.enum(ONE_SHOT_METHODS))]).default(false),
  eval: evalOptions.default({}),
  /** What `--smoke` overrides: method options plus `eval`, merged over the built-in smoke settings. */
  smoke: z.strictObject({ ...optionsShape, eval: evalOptions }).partial().default({}),
  /** Number of shards when the index comes from JOB_COMPLETION_INDEX (Kubernetes indexed jobs). */
  shards: posInt.optional(),
  /** Which target sparsity the allocation and FCPTS-curve plots show (default 0.9 if in the grid, else the highest). */
  plots: z.strictObject({ sparsity: z.number().gt(0).lt(1) }).partial().default({}),
});

export type ExperimentConfig = z.infer<typeof configSchema> & { name: string; file: string };

/** Smoke settings applied before a config's own `smoke` section: seconds per cell on small data. */
export const SMOKE_DEFAULTS = { iters: 4, calib: 64, batchSize: 32, potIters: 5, potImages: 64, eval: { images: 256 } } as const;

const pathOf = (path: PropertyKey[]): string =>
  path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)), '') || '(top level)';

function issueLine(i: z.core.$ZodIssue): string[] {
  const at = pathOf(i.path);
  switch (i.code) {
    case 'unrecognized_keys':
      return i.keys.map((k) => `${pathOf([...i.path, k])}: unknown key`);
    case 'invalid_value':
      return [`${at}: expected one of ${i.values.map(String).join(', ')}`];
    case 'invalid_union': {
      // the branches whose type fit the value say what is wrong with it; if none fit, every branch's type is listed
      const fit = i.errors.filter((b) => !b.every((e) => e.code === 'invalid_type' && e.path.length === 0));
      const shown = fit.length ? fit : i.errors;
      return shown.length ? shown.flatMap((branch) => branch.map((e) => issueLine({ ...e, path: [...i.path, ...e.path] } as z.core.$ZodIssue)).flat()).slice(0, 2) : [`${at}: ${i.message}`];
    }
    default:
      return [`${at}: ${i.message.replace(/^Invalid input: /, '')}`];
  }
}

/** `${VAR}` and `${VAR:-default}` in a string; a missing variable (without default) is a problem naming it. */
export function substituteEnv(value: string, at: string, env: NodeJS.ProcessEnv, problems: string[]): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, v: string, dflt: string | undefined) => {
    const x = env[v];
    if (x !== undefined && x !== '') return x;
    if (dflt !== undefined) return dflt;
    problems.push(`${at}: environment variable ${v} is not set`);
    return '';
  });
}

function checkModel(m: z.infer<typeof model>, problems: string[], checkFiles: boolean): void {
  if (m.name !== undefined) {
    const other = (['arch', 'weights', 'dataset', 'dataDir', 'widthMult'] as const).filter((k) => m[k] !== undefined);
    if (other.length) problems.push(`model.${other[0]}: not allowed with a bundled model (model.name)`);
    else if (!BUNDLED_MODELS.some((b) => b.name === m.name)) {
      problems.push(`model.name: expected one of ${BUNDLED_MODELS.map((b) => b.name).join(', ')}`);
    } else if (checkFiles) {
      const info = bundledModelInfo(m.name);
      if (!info.trained) problems.push(`model.name: bundled model '${m.name}' is not trained yet: file not found: ${info.weights}`);
    }
    return;
  }
  for (const k of ['arch', 'weights', 'dataset'] as const) if (m[k] === undefined) problems.push(`model.${k}: required (or give model.name, a bundled model)`);
  if (m.dataset && DATASET_INFO[m.dataset].needsDir && m.dataDir === undefined) problems.push(`model.dataDir: required for dataset ${m.dataset}`);
  if (!checkFiles) return;
  if (m.weights && !(existsSync(m.weights) && statSync(m.weights).isFile())) problems.push(`model.weights: file not found: ${m.weights}`);
  if (m.dataDir && !(existsSync(m.dataDir) && statSync(m.dataDir).isDirectory())) problems.push(`model.dataDir: folder not found: ${m.dataDir}`);
}

/** Validate a parsed config object. `file` names it in errors; `checkFiles` checks weights and data folders exist. */
export function validateConfig(raw: unknown, file: string, o: { env?: NodeJS.ProcessEnv; checkFiles?: boolean } = {}): ExperimentConfig {
  const problems: string[] = [];
  let input = raw;
  if (input && typeof input === 'object' && !Array.isArray(input)) {
    const r = { ...(input as Record<string, unknown>) };
    if (typeof r.model === 'string') r.model = { name: r.model };
    if (r.model && typeof r.model === 'object' && !Array.isArray(r.model)) {
      const m = { ...(r.model as Record<string, unknown>) };
      for (const k of ['weights', 'dataDir'] as const) if (typeof m[k] === 'string') m[k] = substituteEnv(m[k] as string, `model.${k}`, o.env ?? process.env, problems);
      r.model = m;
    }
    input = r;
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(file, [...problems, ...parsed.error.issues.flatMap(issueLine)]);
  const c = parsed.data;
  if (!problems.length) checkModel(c.model, problems, o.checkFiles ?? true);
  const seen = new Set<string>();
  c.ablations.forEach((a, i) => {
    if (seen.has(a.name)) problems.push(`ablations[${i}].name: duplicate name '${a.name}'`);
    seen.add(a.name);
  });
  for (const [list, key] of [[c.methods, 'methods'], [c.sparsities, 'sparsities'], [c.seeds, 'seeds']] as const) {
    const dup = (list as readonly unknown[]).findIndex((x, i) => (list as readonly unknown[]).indexOf(x) !== i);
    if (dup >= 0) problems.push(`${key}[${dup}]: duplicate value ${String((list as readonly unknown[])[dup])}`);
  }
  if (Array.isArray(c.bnRecal)) {
    c.bnRecal.forEach((m, i) => {
      if (!c.methods.includes(m)) problems.push(`bnRecal[${i}]: '${m}' is not in methods`);
    });
  }
  if (c.eval.crop !== undefined && c.eval.resize !== undefined && c.eval.resize < c.eval.crop) problems.push(`eval.resize: must be >= eval.crop (${c.eval.crop})`);
  if (problems.length) throw new ConfigError(file, problems);
  return { ...c, name: c.name ?? basename(file, extname(file)), file };
}

/** Read and validate a .yaml/.yml/.json config file. */
export function loadConfig(file: string, o: { env?: NodeJS.ProcessEnv; checkFiles?: boolean } = {}): ExperimentConfig {
  if (!existsSync(file)) throw new ConfigError(file, ['(file): config file not found']);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [`(file): cannot read the config: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text, { logLevel: 'error' });
  } catch (e) {
    throw new ConfigError(file, [`(syntax): ${(e as Error).message.split('\n')[0]}`]);
  }
  return validateConfig(raw, file, o);
}
