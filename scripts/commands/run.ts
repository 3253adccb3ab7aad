// `ptslab run <config>`: run an experiment grid (methods x sparsities x seeds x ablations) from a YAML/JSON config,
// one folder per cell under DIR/cells/<key>/, resumable (finished cells are skipped), shardable (--shard i/n, SLURM
// job arrays, Kubernetes indexed jobs), and tabulated into DIR/results.{json,csv,md} plus SVG plots. The runner lives
// in experiments/runner/; this file is the command line over it. Config problems exit 2 before anything runs; failed
// cells are recorded, the run goes on, and the command exits 1 at the end listing them.

import type { Argv, CommandModule } from 'yargs';
import { selectBackend } from '../../core/backend/select.js';
import { ConfigError, loadConfigWithPlugins, type ExperimentConfig } from '../../experiments/runner/config.js';
import { expandGrid, inShard, matchesOnly, parseOnly, parseShard, shardFromEnv, unmatchedOnly, type Cell, type OnlyFilter, type Shard } from '../../experiments/runner/grid.js';
import { makeProgress } from '../../experiments/runner/progress.js';
import { runGrid } from '../../experiments/runner/run.js';
import { ArgumentError } from '../../core/index.js';
import { loadCellModel, prepareCell } from '../../experiments/prune-cell.js';
import type { Experiment } from '../../experiments/kit.js';
import { registry } from '../../sparsity/index.js';
import { gitCommit, runCommand, usageFailures, UsageError } from './common.js';
import { packageVersion } from './version.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface RunArgs {
  config: string;
  out?: string;
  resume: boolean;
  reuse?: string[];
  only?: string;
  shard?: string;
  'dry-run': boolean;
  smoke: boolean;
  backend?: string;
  verbose?: boolean;
}

/** Load the config and select the cells; every problem here is a usage error (exit 2). */
export async function planRun(a: Pick<RunArgs, 'config' | 'only' | 'shard' | 'smoke'> & { 'dry-run'?: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<{ cfg: ExperimentConfig; all: Cell[]; cells: Cell[]; shard: Shard | null }> {
  let cfg: ExperimentConfig;
  let only: OnlyFilter = {};
  let shard: Shard | null;
  try {
    cfg = await loadConfigWithPlugins(a.config, { env, checkFiles: !a['dry-run'] });
    if (a.only) only = parseOnly(a.only);
    shard = a.shard ? parseShard(a.shard) : shardFromEnv(env, cfg.shards);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw new UsageError((e as Error).message);
  }
  const all = expandGrid(cfg, { smoke: a.smoke });
  const keys = `(keys: ${all.slice(0, 3).map((c) => c.key).join(', ')}...)`;
  const unmatched = unmatchedOnly(all, only);
  if (unmatched.length) throw new UsageError(`--only ${a.only}: ${unmatched.join(', ')} matches no cell of ${a.config} ${keys}`);
  const matching = all.filter((c) => matchesOnly(c, only));
  if (!matching.length) throw new UsageError(`--only ${a.only}: no cell matches ${keys}`);
  return { cfg, all, cells: matching.filter((c) => inShard(c, shard)), shard };
}

function printDryRun(cells: Cell[], out: string): void {
  console.log(`${'#'.padStart(4)}  ${'key'.padEnd(40)} ${'status'.padEnd(8)} options`);
  for (const c of cells) {
    const done = existsSync(join(out, 'cells', c.key, 'result.json'));
    const p = c.spec.prune;
    const m = registry.hasMethod(p.method) ? registry.method(p.method) : null;
    const iters = m?.iterations?.(p);
    const opts = [...(iters !== undefined ? [`iters ${iters}`] : []), `calib ${p.calib ?? 1024}`, `batch ${p.batchSize ?? 64}`];
    // the method's other numeric options the cell sets (e.g. potIters)
    for (const k of Object.keys(m?.options.shape ?? {})) if (k !== 'iters' && typeof p[k] === 'number') opts.push(`${k} ${p[k] as number}`);
    if (c.spec.evalImages) opts.push(`eval ${c.spec.evalImages} images`);
    if (c.spec.imageSize) opts.push(`crop ${c.spec.imageSize.crop}/${c.spec.imageSize.resize}`);
    console.log(`${String(c.index).padStart(4)}  ${c.key.padEnd(40)} ${(done ? 'done' : 'todo').padEnd(8)} ${opts.join(', ')}`);
  }
}

async function handler(a: RunArgs): Promise<void> {
  const { cfg, all, cells, shard } = await planRun(a);
  const out = a.out ?? `runs/${cfg.name}${a.smoke ? '-smoke' : ''}`;
  const where = shard ? `shard ${shard.index}/${shard.count} (${shard.source}): ` : '';
  if (a['dry-run']) {
    // A dry run checks the config and lists the cells; it does not check that weights and data exist.
    printDryRun(cells, out);
    console.log(`${where}${cells.length} of ${all.length} cells; results would go to ${out}`);
    return;
  }
  const b = selectBackend(a.backend);
  // Everything knowable before work, for every selected cell: options against the method and the model (each model loaded once).
  const models = new Map<string, Experiment>();
  for (const c of cells) {
    const key = JSON.stringify({ ...c.spec, prune: undefined, evalImages: undefined });
    try {
      if (!models.has(key)) models.set(key, loadCellModel(c.spec));
      prepareCell(c.spec, registry, models.get(key));
    } catch (e) {
      if (e instanceof ArgumentError) throw new UsageError(`${a.config}: cell ${c.key}: ${e.message}`);
      throw e;
    }
  }
  models.clear();
  const progress = makeProgress(cells.length);
  progress.log(`${cfg.name}: ${where}${cells.length} of ${all.length} cells on backend ${b.name}${a.smoke ? ' (smoke settings)' : ''}; results in ${out}`);
  const s = await runGrid(cells, {
    out,
    meta: { name: cfg.name, ...(cfg.description ? { description: cfg.description } : {}), smoke: a.smoke, ...(cfg.plots.sparsity !== undefined ? { plotSparsity: cfg.plots.sparsity } : {}) },
    config: { ...cfg, smokeApplied: a.smoke },
    commit: gitCommit(),
    version: packageVersion(),
    progress,
    resume: a.resume,
    reuse: a.reuse,
    plugins: cfg.pluginRecords,
  });
  console.log(readFileSync(join(out, 'results.md'), 'utf8'));
  console.log(`ran ${s.ran.length}, skipped ${s.skipped.length} (already finished), ${s.reused.length ? `copied ${s.reused.length} (same spec finished in --reuse), ` : ''}failed ${s.failed.length}`);
  console.log(`results: ${s.tables.join(', ')}`);
  if (s.plots.length) console.log(`plots: ${s.plots.join(', ')}`);
  if (s.failed.length) {
    process.stderr.write(`${s.failed.length} cell(s) failed (details in <cell>/error.json): ${s.failed.map((f) => `${f.key} (${f.error})`).join('; ')}\n`);
    process.exitCode = 1;
  }
}

const command: CommandModule<object, RunArgs> = {
  command: 'run <config>',
  describe: 'run an experiment grid from a YAML/JSON config (resumable, shardable) and tabulate it',
  builder: (y: Argv) =>
    usageFailures(
      y
        .positional('config', { type: 'string', demandOption: true, describe: 'experiment config (.yaml, .yml or .json)' })
        .option('out', { type: 'string', describe: 'output folder (default runs/<config name>[-smoke])' })
        .option('resume', { type: 'boolean', default: true, describe: 'skip cells whose result.json exists; --no-resume runs every selected cell again' })
        .option('reuse', { type: 'string', array: true, describe: 'results folder(s): a cell whose exact spec finished there is copied instead of run' })
        .option('only', { type: 'string', describe: 'run a subset: key=value,... with key method|sparsity|seed|ablation|key; a|b or a repeated key = either' })
        .option('shard', { type: 'string', describe: 'run shard i of n (0-based, cells by grid index mod n); default from SLURM_ARRAY_* or JOB_COMPLETION_INDEX' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'print the selected cells and exit' })
        .option('smoke', { type: 'boolean', default: false, describe: 'seconds per cell: few iterations, little data (see the smoke section of the config)' })
        .option('backend', { type: 'string', describe: 'backend (default: PTSLAB_BACKEND, else auto)' })
        .option('verbose', { type: 'boolean', describe: 'print stacks on errors' }) as unknown as Argv<RunArgs>,
    ),
  handler: (a) => runCommand(a.verbose, () => handler(a)),
};

export const runCommandModule = command as unknown as CommandModule;
