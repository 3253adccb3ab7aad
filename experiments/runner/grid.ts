// Grid expansion for `ptslab run`: a validated config becomes a list of cells (ablations x methods x sparsities x
// seeds, in that nesting order, so one method's cells are consecutive and index-mod-n sharding spreads the expensive
// ones over the shards). Each cell has a stable key (`fcpts-s0.9-seed0`, `lamp+bnrecal-s0.5-seed1-kde`) that names its
// folder, and the CellSpec handed to runCell. Options merge, later wins: config `options` < `methodOptions[method]` <
// the ablation's options < the smoke settings (with --smoke). Also here: the --only filter and shard selection.

import { BNRECAL_SUFFIX, applicableConfig, parseLabel, registry, type PruneConfig, type Registry } from '../../sparsity/index.js';
import type { CellSpec } from '../prune-cell.js';
import type { ExperimentConfig, MethodOptions } from './config.js';

/** Smoke settings applied before a config's own `smoke` section: seconds per cell on small data. */
export const SMOKE_DEFAULTS = { iters: 4, calib: 64, batchSize: 32, potIters: 5, potImages: 64, eval: { images: 256 } } as const;

export interface Cell {
  /** Position in the full grid (before filters): the shard assignment is index mod n. */
  index: number;
  key: string;
  /** Method label as reported: `lamp`, `lamp+bnrecal`. */
  method: string;
  sparsity: number;
  seed: number;
  ablation: string | null;
  spec: CellSpec;
}

/** Merge option sets; later wins, `objective` merges key by key. */
export function mergeOptions(...sets: Array<MethodOptions | undefined>): MethodOptions {
  const out: MethodOptions = {};
  for (const s of sets) {
    if (!s) continue;
    const { objective, ...rest } = s;
    Object.assign(out, Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)));
    if (objective) out.objective = { ...out.objective, ...objective };
  }
  return out;
}

/** The method labels of the grid: the listed ones, plus `<m>+bnrecal` for one-shot methods when bnRecal asks. */
export function methodLabels(cfg: ExperimentConfig, reg: Registry = registry): string[] {
  const oneShot = reg.oneShotNames();
  const extra = cfg.bnRecal === true ? cfg.methods.filter((m) => oneShot.includes(m)) : cfg.bnRecal === false ? [] : cfg.bnRecal;
  const out: string[] = [];
  for (const m of cfg.methods) {
    out.push(m);
    if ((extra as readonly string[]).includes(m) && !cfg.methods.includes(`${m}${BNRECAL_SUFFIX}` as never)) out.push(`${m}${BNRECAL_SUFFIX}`);
  }
  return out;
}

export const cellKey = (method: string, sparsity: number, seed: number, ablation: string | null): string =>
  `${method}-s${sparsity}-seed${seed}${ablation ? `-${ablation}` : ''}`;

/** Every cell of a config. `smoke` applies the smoke settings (built-in defaults, then the config's `smoke`). */
export function expandGrid(cfg: ExperimentConfig, o: { smoke?: boolean; registry?: Registry } = {}): Cell[] {
  const reg = o.registry ?? registry;
  const { eval: smokeEval, ...smokeOpts } = { ...SMOKE_DEFAULTS, ...cfg.smoke, eval: { ...SMOKE_DEFAULTS.eval, ...cfg.smoke.eval } };
  const ev = o.smoke ? { ...cfg.eval, ...smokeEval } : cfg.eval;
  const ablations = cfg.ablations.length ? cfg.ablations : [null];
  const cells: Cell[] = [];
  for (const ab of ablations) {
    for (const label of methodLabels(cfg, reg)) {
      if (ab?.methods && !ab.methods.some((m) => m === label)) continue;
      const { method: base, bnRecal } = parseLabel(label);
      for (const sparsity of cfg.sparsities) {
        for (const seed of cfg.seeds) {
          let abOpts: MethodOptions | undefined;
          if (ab) {
            const { name: _n, methods: _m, ...rest } = ab;
            abOpts = rest;
          }
          const merged = mergeOptions(cfg.options, cfg.methodOptions[base], abOpts, o.smoke ? (smokeOpts as MethodOptions) : undefined);
          if (o.smoke && merged.calib !== undefined && merged.batchSize !== undefined && merged.batchSize > merged.calib) merged.batchSize = merged.calib;
          // the cell keeps the options that apply to its method (the shared ones go to every method that takes them)
          const prune: PruneConfig = applicableConfig({ ...merged, method: base, sparsity, seed, bnRecal }, reg);
          const spec: CellSpec = {
            model: cfg.model.name ?? null,
            arch: cfg.model.arch,
            weights: cfg.model.weights,
            dataset: cfg.model.dataset,
            dataDir: cfg.model.dataDir,
            widthMult: cfg.model.widthMult,
            shortcut: cfg.model.shortcut,
            rename: cfg.model.rename,
            folderImageSize: cfg.model.imageSize,
            mean: cfg.model.mean,
            std: cfg.model.std,
            augment: cfg.model.augment,
            evalImages: ev.images,
            imageSize: ev.crop !== undefined || ev.resize !== undefined ? { crop: ev.crop ?? 224, resize: ev.resize ?? Math.round(((ev.crop ?? 224) * 256) / 224) } : undefined,
            prune,
          };
          for (const k of Object.keys(spec) as Array<keyof CellSpec>) if (spec[k] === undefined) delete spec[k];
          cells.push({ index: cells.length, key: cellKey(label, sparsity, seed, ab?.name ?? null), method: label, sparsity, seed, ablation: ab?.name ?? null, spec });
        }
      }
    }
  }
  return cells;
}

export const ONLY_KEYS = ['method', 'sparsity', 'seed', 'ablation', 'key'] as const;
export type OnlyFilter = Partial<Record<(typeof ONLY_KEYS)[number], string[]>>;

/** Parse `--only key=value,...`: a repeated key or `a|b` means either value. Throws Error with a one-line message. */
export function parseOnly(text: string): OnlyFilter {
  const f: OnlyFilter = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq).trim() as (typeof ONLY_KEYS)[number];
    if (eq < 0 || !(ONLY_KEYS as readonly string[]).includes(k)) throw new Error(`--only: expected key=value with key one of ${ONLY_KEYS.join(', ')}, got '${part}'`);
    (f[k] ??= []).push(...part.slice(eq + 1).split('|').map((s) => s.trim()));
  }
  return f;
}

export function matchesOnly(c: Pick<Cell, 'key' | 'method' | 'sparsity' | 'seed' | 'ablation'>, f: OnlyFilter): boolean {
  const num = (vals: string[] | undefined, x: number) => !vals || vals.some((v) => Number(v) === x);
  return (
    (!f.method || f.method.includes(c.method)) &&
    num(f.sparsity, c.sparsity) &&
    num(f.seed, c.seed) &&
    (!f.ablation || f.ablation.includes(c.ablation ?? '')) &&
    (!f.key || f.key.includes(c.key))
  );
}

/**
 * The `--only` values that match no cell of the grid, as `key=value` (each value is checked alone, so one misspelt
 * alternative in `method=lamp|lmap` is caught even though `lamp` matches).
 */
export function unmatchedOnly(cells: readonly Pick<Cell, 'key' | 'method' | 'sparsity' | 'seed' | 'ablation'>[], f: OnlyFilter): string[] {
  const out: string[] = [];
  for (const k of ONLY_KEYS) for (const v of f[k] ?? []) if (!cells.some((c) => matchesOnly(c, { [k]: [v] }))) out.push(`${k}=${v}`);
  return out;
}

export interface Shard {
  index: number;
  count: number;
  /** Where it came from: --shard, SLURM or Kubernetes. */
  source: string;
}

/** Parse `--shard i/n` (0 <= i < n). */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new Error(`--shard: expected i/n with 0 <= i < n, got '${text}'`);
  return { index: Number(m[1]), count: Number(m[2]), source: '--shard' };
}

/**
 * The shard from the environment: SLURM job arrays (SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN, out of
 * SLURM_ARRAY_TASK_COUNT) or Kubernetes indexed jobs (JOB_COMPLETION_INDEX, out of the config's `shards` or
 * PTSLAB_SHARDS). Null when neither is set.
 */
export function shardFromEnv(env: NodeJS.ProcessEnv, configShards?: number): Shard | null {
  const int = (name: string, v: string | undefined): number => {
    if (v === undefined || !/^\d+$/.test(v)) throw new Error(`${name} must be a non-negative integer, got '${v}'`);
    return Number(v);
  };
  if (env.SLURM_ARRAY_TASK_ID !== undefined && env.SLURM_ARRAY_TASK_COUNT !== undefined) {
    const count = int('SLURM_ARRAY_TASK_COUNT', env.SLURM_ARRAY_TASK_COUNT);
    const index = int('SLURM_ARRAY_TASK_ID', env.SLURM_ARRAY_TASK_ID) - (env.SLURM_ARRAY_TASK_MIN ? int('SLURM_ARRAY_TASK_MIN', env.SLURM_ARRAY_TASK_MIN) : 0);
    if (index < 0 || index >= count) throw new Error(`SLURM array task ${index} is outside 0..${count - 1} (use --array=0-${count - 1})`);
    return { index, count, source: 'SLURM' };
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) {
    const index = int('JOB_COMPLETION_INDEX', env.JOB_COMPLETION_INDEX);
    const count = env.PTSLAB_SHARDS !== undefined ? int('PTSLAB_SHARDS', env.PTSLAB_SHARDS) : configShards;
    if (count === undefined) throw new Error('JOB_COMPLETION_INDEX is set but the shard count is not: set `shards` in the config or PTSLAB_SHARDS');
    if (index >= count) throw new Error(`JOB_COMPLETION_INDEX ${index} is outside 0..${count - 1}`);
    return { index, count, source: 'Kubernetes' };
  }
  return null;
}

export const inShard = (c: Cell, s: Shard | null): boolean => !s || c.index % s.count === s.index;
