// `ptslab prune`: sparsify one model with one method at one sparsity and write DIR/model.safetensors and
// DIR/result.json (see experiments/prune-cell.ts). `--method`'s choices and every method option flag come from the
// method registry (each method's zod schema: type, choices, description), including what `--plugin` files register;
// a flag given for a method it does not apply to is a usage error, and so is everything else that can be known
// before the dense model is evaluated.

import type { Argv, CommandModule, Options } from 'yargs';
import { z } from 'zod';
import { ArgumentError } from '../../core/index.js';
import { selectBackend } from '../../core/backend/select.js';
import {
  applicableConfig, checkPruneConfig, loadPlugins, objectiveFromConfig, registry,
  type ObjectiveConfig, type PluginRecord, type PruneConfig, type Registry, type TermConfig,
} from '../../sparsity/index.js';
import { prepareCell, runCell, type CellSpec } from '../../experiments/prune-cell.js';
import { makeProgress } from '../../experiments/runner/progress.js';
import { readAllocation } from '../../experiments/allocation-file.js';
import { BUNDLED_MODELS } from '../../experiments/models/index.js';
import { ARCHS, DATASETS } from '../../nn/train/index.js';
import { FOLDER_OPTIONS, RENAME_OPTION, SHORTCUT_OPTION, backendChoices, numberList, checkNumbers, gitCommit, runCommand, usageFailures, UsageError, type ModelArgs } from './common.js';
import { packageVersion } from './version.js';

interface PruneArgs extends ModelArgs {
  method: string;
  sparsity: number;
  calib?: number;
  batch?: number;
  seed: number;
  'bn-recal': boolean;
  'keep-dense'?: string[];
  term?: string[];
  plugin?: string[];
  'eval-images'?: number;
  'image-size'?: number;
  rename?: string[];
  mean?: string;
  std?: string;
  augment?: 'none' | 'cifar' | 'imagenet';
  out?: string;
  json: boolean;
  backend?: string;
  verbose?: boolean;
  [flag: string]: unknown;
}

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const unwrap = (s: z.ZodType): z.ZodType => (s instanceof z.ZodOptional ? unwrap(s.unwrap() as z.ZodType) : s);

/** A method option as a flag: its name, where it goes in the config, and its yargs shape (from its zod schema). */
interface OptionFlag {
  flag: string;
  /** ['iters'] or ['objective', 'lambda']. */
  path: [string] | [string, string];
  yargs: Options;
  /** How to read the flag's value (allocation: a file). */
  read?: (v: unknown) => unknown;
  methods: string[];
}

/** A schema's description, wherever in its optional wrappers `.describe()` was called. */
const descriptionOf = (s: z.ZodType): string | undefined => s.description ?? (s instanceof z.ZodOptional ? descriptionOf(s.unwrap() as z.ZodType) : undefined);

function yargsShape(schema: z.ZodType, describe: string): Options | null {
  const s = unwrap(schema);
  if (s instanceof z.ZodNumber) return { type: 'number', describe };
  if (s instanceof z.ZodBoolean) return { type: 'boolean', describe };
  if (s instanceof z.ZodEnum) return { choices: s.options as string[], describe };
  if (s instanceof z.ZodString) return { type: 'string', describe };
  if (s instanceof z.ZodArray) return { type: 'array', string: true, describe };
  return null;
}

/** Every registered method's options as flags (objective keys flattened, e.g. --lambda; allocation read from a file). */
export function optionFlags(reg: Registry = registry): OptionFlag[] {
  const out: OptionFlag[] = [];
  for (const o of reg.optionKeys().values()) {
    const schema = unwrap(o.schemas[0]);
    const about = descriptionOf(o.schemas[0]);
    const who = `[${o.methods.join(', ')}]`;
    if (o.key === 'allocation') {
      out.push({ flag: 'allocation', path: ['allocation'], yargs: { type: 'string', describe: `per-layer sparsities: a result.json or { "layer.weight": sparsity } ${who}` }, read: (v) => readAllocation(String(v)), methods: o.methods });
    } else if (schema instanceof z.ZodObject) {
      for (const [sub, subSchema] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
        const y = yargsShape(subSchema, `${descriptionOf(subSchema) ?? `${o.key}.${sub}`} ${who}`);
        if (y) out.push({ flag: kebab(sub), path: [o.key, sub], yargs: y, methods: o.methods });
      }
    } else {
      const y = yargsShape(schema, `${about ?? o.key} ${who}`);
      if (y) out.push({ flag: kebab(o.key), path: [o.key], yargs: y, methods: o.methods });
    }
  }
  return out;
}

function builder(y: Argv): Argv<PruneArgs> {
  let b = y
    .option('model', { type: 'string', choices: BUNDLED_MODELS.map((m) => m.name), describe: 'a bundled model (see ptslab models)' })
    .option('arch', { type: 'string', choices: ARCHS, describe: 'architecture, with --weights and --dataset' })
    .option('weights', { type: 'string', describe: 'a .safetensors or .pth checkpoint' })
    .option('dataset', { type: 'string', choices: DATASETS })
    .option('data-dir', { type: 'string' })
    .option('width-mult', { type: 'number' })
    .option('shortcut', SHORTCUT_OPTION)
        .option('rename', RENAME_OPTION)
    .option('method', { choices: registry.methodNames(), demandOption: true, describe: registry.methods().map((m) => `${m.name}: ${m.description}`).join('; ') })
    .option('sparsity', { type: 'number', demandOption: true, describe: 'global target in [0, 1)' })
    .option('calib', { type: 'number', describe: 'calibration images (default 1024)' })
    .option('batch', { type: 'number', describe: 'calibration batch size (default 64)' })
    .option('seed', { type: 'number', default: 0 })
    .option('bn-recal', { type: 'boolean', default: false, describe: `re-calibrate BatchNorm statistics after pruning [${registry.methods().filter((m) => m.bnRecal !== 'never').map((m) => m.name).join(', ')}]` })
    .option('keep-dense', { type: 'array', string: true, describe: 'layers to keep dense (module or weight names)' })
    .option('term', { type: 'array', string: true, describe: 'add a registered objective term: NAME=WEIGHT[,option=value...] (repeatable) [methods with an objective]' })
    .option('plugin', { type: 'array', string: true, describe: 'a plugin file registering methods and objective terms (repeatable)' })
    .option('eval-images', { type: 'number', describe: 'evaluate on a seeded subset of N held-out images (the same subset as ptslab eval --eval-images N)' })
    .option('image-size', { type: 'number', describe: 'ImageNet: training crop and evaluation centre crop N (resize round(N * 256 / 224) before it; default 224); image-folder: resize the short side to N and centre-crop N x N (nothing when already N x N)' })
    .options(FOLDER_OPTIONS)
    .option('out', { type: 'string', describe: 'output folder (default runs/prune-<model>-<method>-<sparsity>)' })
    .option('json', { type: 'boolean', default: false, describe: 'print result.json to stdout' })
    .option('backend', { type: 'string', choices: backendChoices() })
    .option('verbose', { type: 'boolean', default: false });
  for (const f of optionFlags()) b = b.option(f.flag, f.yargs);
  const numeric: Record<string, Parameters<typeof checkNumbers>[1][string]> = {
    'width-mult': '>0', sparsity: '[0,1)', calib: 'int>0', batch: 'int>0', seed: 'int>=0', 'eval-images': 'int>0', 'image-size': 'int>0',
  };
  return usageFailures(b.check((a) => checkNumbers(a, numeric)) as unknown as Argv<PruneArgs>);
}

/** Split on commas outside [...], {...} and "..." (so a JSON list can be an option's value). */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' && text[i - 1] !== '\\') quoted = !quoted;
    else if (!quoted && (c === '[' || c === '{')) depth++;
    else if (!quoted && (c === ']' || c === '}')) depth--;
    else if (!quoted && depth === 0 && c === ',') {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** One --term value: NAME=WEIGHT[,key=value...] (values parsed as numbers, booleans or JSON where they parse). */
function parseTerm(text: string): [string, TermConfig] {
  const [head, ...rest] = splitTopLevel(text);
  const m = /^([A-Za-z][A-Za-z0-9_-]*)=(.+)$/.exec(head.trim());
  const weight = m ? Number(m[2]) : NaN;
  if (!m || !Number.isFinite(weight)) throw new UsageError(`--term: expected NAME=WEIGHT[,option=value...], got '${text}'`);
  const opts: Record<string, unknown> = {};
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new UsageError(`--term ${m[1]}: expected option=value, got '${kv}'`);
    const v = kv.slice(eq + 1).trim();
    let parsed: unknown = v;
    try {
      parsed = JSON.parse(v);
    } catch {
      // a bare word stays a string
    }
    opts[kv.slice(0, eq).trim()] = parsed;
  }
  return [m[1], { weight, ...opts }];
}

/** The prune config from the flags given (defaults are the method's), checked against the method: usage errors. */
export function pruneConfigFromArgs(a: PruneArgs): PruneConfig {
  if (!(a.sparsity >= 0 && a.sparsity < 1)) throw new UsageError(`--sparsity must be in [0, 1), got ${a.sparsity}`);
  const cfg: PruneConfig = { method: a.method, sparsity: a.sparsity, seed: a.seed, bnRecal: a['bn-recal'] };
  if (a.calib !== undefined) cfg.calib = a.calib;
  if (a.batch !== undefined) cfg.batchSize = a.batch;
  if (a['keep-dense'] !== undefined) cfg.keepDense = a['keep-dense'];
  const given: string[] = [];
  for (const f of optionFlags()) {
    const v = a[f.flag];
    if (v === undefined) continue;
    given.push(f.flag);
    if (!f.methods.includes(a.method)) throw new UsageError(`--${f.flag} does not apply to method ${a.method} (it applies to ${f.methods.join(', ')})`);
    const value = f.read ? f.read(v) : v;
    if (f.path.length === 1) cfg[f.path[0]] = value;
    else cfg[f.path[0]] = { ...(cfg[f.path[0]] as object | undefined), [f.path[1]]: value };
  }
  if (a.term?.length) {
    if (!registry.method(a.method).options.shape.objective) throw new UsageError(`--term does not apply to method ${a.method} (it has no objective)`);
    cfg.objective = { ...(cfg.objective as object | undefined), terms: Object.fromEntries(a.term.map(parseTerm)) };
  }
  if (a['bn-recal'] && registry.method(a.method).bnRecal === 'never') throw new UsageError(`--bn-recal does not apply to method ${a.method}`);
  const checked = checkPruneConfig(cfg);
  const flagOf = (line: string) => {
    const key = line.split(':')[0].split('.');
    const f = optionFlags().find((o) => o.path.join('.') === key.join('.') || (o.path.length === 1 && o.path[0] === key[0]));
    return f ? `--${f.flag}${line.slice(line.indexOf(':'))}` : line;
  };
  if (!checked.spec) throw new UsageError(checked.problems.map(flagOf).join('; '));
  if ('objective' in checked.spec.options.shape) {
    try {
      objectiveFromConfig(cfg.objective as ObjectiveConfig | undefined, registry.terms());
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return cfg;
}

export const pruneCommand: CommandModule<object, PruneArgs> = {
  command: 'prune',
  describe: 'sparsify a model with one registered method (fcpts, a baseline or a plugin\'s) and evaluate it',
  builder,
  handler: (a) =>
    runCommand(a.verbose, async () => {
      if (!a.model && !a.arch) throw new UsageError('give --model <bundled name> or --arch with --weights and --dataset');
      if (a.model && a.arch) throw new UsageError('give either --model or --arch, not both');
      const plugins = await loadPluginsOrUsage(a.plugin ?? []);
      selectBackend(a.backend);
      const cfg = pruneConfigFromArgs(a);
      const out = a.out ?? `runs/prune-${a.model ?? a.arch}-${a.method}-${a.sparsity}`;
      const iters = registry.method(cfg.method).iterations?.(applicableConfig(cfg)) ?? null;
      const size = a['image-size'];
      if (size !== undefined && a.dataset !== 'imagenet' && a.dataset !== 'image-folder') throw new UsageError(`--image-size applies to --dataset imagenet or image-folder, not to ${a.dataset ?? `the bundled ${a.model}`}`);
      const folder = a.dataset === 'image-folder';
      const spec: CellSpec = {
        model: a.model ?? null, arch: a.arch, weights: a.weights, dataset: a.dataset, dataDir: a['data-dir'], widthMult: a['width-mult'], shortcut: a.shortcut, evalImages: a['eval-images'], prune: cfg,
        ...(a.rename?.length ? { rename: a.rename } : {}),
        ...(size !== undefined && !folder ? { imageSize: { crop: size, resize: Math.round((size * 256) / 224) } } : {}),
        ...(size !== undefined && folder ? { folderImageSize: size } : {}),
        ...(a.mean !== undefined ? { mean: numberList('mean', a.mean) } : {}),
        ...(a.std !== undefined ? { std: numberList('std', a.std) } : {}),
        ...(a.augment !== undefined ? { augment: a.augment } : {}),
      };
      // everything knowable before work: the method's options, the checkpoint, keepDense and allocation vs the model
      try {
        prepareCell(spec);
      } catch (e) {
        if (e instanceof ArgumentError) throw new UsageError(e.message);
        throw e;
      }
      // a progress bar with it/s and ETA on a terminal, timestamped lines otherwise (as ptslab run)
      const progress = makeProgress(1);
      progress.startCell(1, 1, `${cfg.method}-s${cfg.sparsity}`, iters);
      let r;
      try {
        r = await runCell(spec, {
          plugins,
          out,
          commit: gitCommit(),
          version: packageVersion(),
          log: (l) => progress.log(l),
          onStep: (s) => progress.step(s),
          onEval: (done, total) => progress.evaluating(done, total),
        });
      } finally {
        progress.endCell();
        progress.stop();
      }
      if (a.json) console.log(JSON.stringify(r));
      else {
        console.log(`${r.method} on ${r.model}: target ${(100 * r.targetSparsity).toFixed(1)}%, achieved ${(100 * r.achievedSparsity).toFixed(4)}% (${r.zeroParams}/${r.prunableParams}), top-1 ${r.top1.toFixed(2)}% (dense ${r.denseTop1.toFixed(2)}%), ${r.seconds} s`);
        console.log(`wrote ${out}/model.safetensors and ${out}/result.json`);
      }
    }),
};

/** Load --plugin files (before the flags are derived: see scripts/cli.ts); a bad plugin is a usage error. */
export async function loadPluginsOrUsage(files: readonly string[]): Promise<PluginRecord[]> {
  try {
    return await loadPlugins(files);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
