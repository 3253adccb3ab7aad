// Experiment configs for `ptslab run`: the zod schema, loading from YAML or JSON, `${ENV}` substitution in the model's
// weight and data paths, and the checks that files exist. Every problem is reported before anything runs, one line
// per problem, each starting with the key path (`methods[2]: expected one of ...`, `model.weights: file not found:
// /x.pth`), as a ConfigError (the CLI exits 2 on it). experiments/README.md documents every key.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { PtslabError } from '../../core/errors.js';
import {
  applicableConfig, checkPruneConfig, commonOptions, loadPlugins, objectiveFromConfig, registry,
  type ObjectiveConfig, type PluginRecord, type PruneOptions, type Registry,
} from '../../sparsity/index.js';
import { expandGrid } from './grid.js';
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

const posInt = z.number().int().positive();

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

/**
 * The method options a config may set, derived from the registry: the common options and every registered method's
 * own, each key with the schema of the first method that declares it (`allocation` also takes a file path). Which
 * method takes which key, and the other methods' schemas, are checked per cell (checkPruneConfig).
 */
export function optionsShape(reg: Registry = registry): Record<string, z.ZodType> {
  const shape: Record<string, z.ZodType> = { ...commonOptions.shape };
  for (const [key, o] of reg.optionKeys()) shape[key] = key === 'allocation' ? allocation : (o.schemas[0] as z.ZodType);
  for (const [k, v] of Object.entries(shape)) shape[k] = v instanceof z.ZodOptional ? (v.unwrap() as z.ZodType) : v;
  return shape;
}
export type MethodOptions = PruneOptions;

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
  shortcut: z.enum(['A', 'B']),
  /** Prefix renames of the checkpoint's keys, in order ('linear.=fc.'). */
  rename: z.array(z.string().regex(/^[^=\s]+=[^=\s]*$/, "a rule is FROM=TO, e.g. 'linear.=fc.'")),
  /** image-folder: per-channel normalisation (0-1 scale), input side, calibration augmentation. */
  mean: z.array(z.number()).min(1),
  std: z.array(z.number().positive()).min(1),
  imageSize: z.number().int().positive(),
  augment: z.enum(['none', 'cifar', 'imagenet']),
}).partial();

const name = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only');

/** The config schema for the methods and terms a registry holds (the built-ins plus loaded plugins). */
export function configSchema(reg: Registry = registry) {
  const shape = optionsShape(reg);
  const options = z.strictObject(shape).partial();
  const labels = reg.methodLabels() as [string, ...string[]];
  const method = z.enum(labels);
  return z.strictObject({
    name: name.optional(),
    description: z.string().optional(),
    /** Plugin files (paths relative to the config) registering methods and objective terms. */
    plugins: z.array(z.string()).default([]),
    model,
    methods: z.array(method).min(1),
    sparsities: z.array(z.number().gt(0).lt(1)).min(1),
    seeds: z.array(z.number().int().min(0)).min(1).default([0]),
    /** Shared defaults: each method takes the keys that apply to it. */
    options: options.default({}),
    /** Per-method overrides, merged over `options`; every key must apply to that method. */
    methodOptions: z.strictObject(Object.fromEntries(reg.methodNames().map((m) => [m, options]))).partial().default({}),
    /** Named option sets crossed with the grid; `methods` limits one to some methods. */
    ablations: z.array(options.extend({ name, methods: z.array(method).min(1).optional() })).default([]),
    /** Also report one-shot methods after BN re-calibration: true (every one-shot method listed) or a list. */
    bnRecal: z.union([z.boolean(), z.array(z.enum(reg.oneShotNames() as [string, ...string[]]))]).default(false),
    eval: evalOptions.default({}),
    /** What `--smoke` overrides: method options plus `eval`, merged over the built-in smoke settings. */
    smoke: z.strictObject({ ...shape, eval: evalOptions }).partial().default({}),
    /** Number of shards when the index comes from JOB_COMPLETION_INDEX (Kubernetes indexed jobs). */
    shards: posInt.optional(),
    /** Which target sparsity the allocation and FCPTS-curve plots show (default 0.9 if in the grid, else the highest). */
    plots: z.strictObject({ sparsity: z.number().gt(0).lt(1) }).partial().default({}),
  });
}

type Parsed = z.infer<ReturnType<typeof configSchema>>;
export type ExperimentConfig = Omit<Parsed, 'options' | 'methodOptions' | 'ablations' | 'smoke'> & {
  options: MethodOptions;
  methodOptions: Partial<Record<string, MethodOptions>>;
  ablations: Array<MethodOptions & { name: string; methods?: string[] }>;
  smoke: MethodOptions & { eval?: EvalOptions };
  name: string;
  file: string;
  /** The loaded plugins (path and sha256), when loaded with loadConfigWithPlugins. */
  pluginRecords?: PluginRecord[];
};


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
    const other = (['arch', 'weights', 'dataset', 'dataDir', 'widthMult', 'shortcut', 'rename', 'mean', 'std', 'imageSize', 'augment'] as const).filter((k) => m[k] !== undefined);
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
  for (const k of ['mean', 'std', 'imageSize', 'augment'] as const) if (m[k] !== undefined && m.dataset !== 'image-folder') problems.push(`model.${k}: applies to dataset image-folder, not ${m.dataset}`);
  if ((m.mean === undefined) !== (m.std === undefined)) problems.push(`model.${m.mean === undefined ? 'mean' : 'std'}: required with model.${m.mean === undefined ? 'std' : 'mean'}`);
  else if (m.mean && m.std && m.mean.length !== m.std.length) problems.push(`model.std: ${m.std.length} values, model.mean has ${m.mean.length}`);
  if (!checkFiles) return;
  if (m.weights && !(existsSync(m.weights) && statSync(m.weights).isFile())) problems.push(`model.weights: file not found: ${m.weights}`);
  if (m.dataDir && !(existsSync(m.dataDir) && statSync(m.dataDir).isDirectory())) problems.push(`model.dataDir: folder not found: ${m.dataDir}`);
}

/** Validate a parsed config object. `file` names it in errors; `checkFiles` checks weights and data folders exist. */
export function validateConfig(raw: unknown, file: string, o: ConfigOptions = {}): ExperimentConfig {
  const reg = o.registry ?? registry;
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
  const parsed = configSchema(reg).safeParse(input);
  if (!parsed.success) {
    const unloaded = pluginsOf(raw, file).filter((f) => !o.pluginRecords?.some((r) => resolve(r.path) === resolve(f)));
    const hint = unloaded.length && !o.pluginRecords ? [`plugins: not loaded (${unloaded.join(', ')}): validate with loadConfigWithPlugins`] : [];
    throw new ConfigError(file, [...problems, ...parsed.error.issues.flatMap(issueLine), ...hint]);
  }
  const c = parsed.data as unknown as ExperimentConfig;
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
  if (!problems.length) problems.push(...methodProblems(c, reg));
  const out = { ...c, plugins: c.plugins.map((f) => resolveFrom(file, f)), name: c.name ?? basename(file, extname(file)), file, ...(o.pluginRecords ? { pluginRecords: o.pluginRecords } : {}) };
  if (!problems.length) {
    // every cell's options against its method (types, required keys, objective terms), before anything runs
    for (const cell of expandGrid(out, { registry: reg })) {
      const p = applicableConfig(cell.spec.prune, reg);
      const checked = checkPruneConfig(p, { registry: reg });
      problems.push(...checked.problems.map((l) => `cell ${cell.key}: ${l}`));
      if (checked.spec && 'objective' in checked.spec.options.shape) {
        try {
          objectiveFromConfig(p.objective as ObjectiveConfig | undefined, reg.terms());
        } catch (e) {
          problems.push(`cell ${cell.key}: ${(e as Error).message}`);
        }
      }
      if (problems.length >= 8) break;
    }
  }
  if (problems.length) throw new ConfigError(file, [...new Set(problems)]);
  return out;
}

export interface ConfigOptions {
  env?: NodeJS.ProcessEnv;
  checkFiles?: boolean;
  /** The methods and terms names are checked against (default the process-wide registry). */
  registry?: Registry;
  /** Plugins already loaded for this config (loadConfigWithPlugins sets them). */
  pluginRecords?: PluginRecord[];
}

const resolveFrom = (configFile: string, f: string): string => (isAbsolute(f) ? f : join(dirname(configFile), f));

/** The `plugins:` of a raw config, resolved against the config's folder (nothing when absent or malformed). */
function pluginsOf(raw: unknown, file: string): string[] {
  const list = raw && typeof raw === 'object' ? (raw as { plugins?: unknown }).plugins : undefined;
  return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string').map((f) => resolveFrom(file, f)) : [];
}

/**
 * Per-method options whose key does not apply to that method. (Shared `options` and ablations may hold keys for
 * some methods only: each method takes the keys that apply to it; the schema already rejects keys no method takes.)
 */
function methodProblems(c: ExperimentConfig, reg: Registry): string[] {
  const problems: string[] = [];
  const keys = reg.optionKeys();
  const common = Object.keys(commonOptions.shape);
  const applies = (k: string, methods: readonly string[]) => common.includes(k) || methods.some((m) => keys.get(k)?.methods.includes(m));
  const report = (at: string, opts: Record<string, unknown>, methods: readonly string[]) => {
    for (const k of Object.keys(opts)) {
      if (opts[k] === undefined || applies(k, methods)) continue;
      problems.push(`${at}.${k}: applies to ${keys.get(k)?.methods.join(', ') ?? 'no registered method'}, not to ${methods.join(', ')}`);
    }
  };
  for (const [m, opts] of Object.entries(c.methodOptions)) report(`methodOptions.${m}`, opts ?? {}, [m]);
  return problems;
}

/** Read a config, load the plugins it lists (relative to its folder) into the registry, then validate it. */
export async function loadConfigWithPlugins(file: string, o: ConfigOptions = {}): Promise<ExperimentConfig> {
  const raw = readConfigFile(file);
  let pluginRecords: PluginRecord[];
  try {
    pluginRecords = await loadPlugins(pluginsOf(raw, file), { registry: o.registry });
  } catch (e) {
    throw new ConfigError(file, [`plugins: ${(e as Error).message}`]);
  }
  return validateConfig(raw, file, { ...o, pluginRecords });
}

/** Read and validate a .yaml/.yml/.json config file (its plugins must already be loaded: loadConfigWithPlugins). */
export function loadConfig(file: string, o: ConfigOptions = {}): ExperimentConfig {
  return validateConfig(readConfigFile(file), file, o);
}

function readConfigFile(file: string): unknown {
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
  return raw;
}
