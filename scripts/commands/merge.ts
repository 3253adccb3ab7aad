// `ptslab merge DIR... [--out DIR]`: gather the cells of several run folders (shards of one grid, or runs of one
// config on different machines) into one set of tables and plots: reads every DIR/cells/*/result.json (and
// error.json, cell.json) and writes OUT/results.{json,csv,md} and the SVG plots. Cells are not copied; the plots read
// history.json from where the cells are. A key present in several folders keeps its finished copy.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { readJsonIfExists } from '../../experiments/json-file.js';
import { gatherCells, type RunMeta } from '../../experiments/runner/results.js';
import { tabulate } from '../../experiments/runner/run.js';
import { runCommand, usageFailures, UsageError } from './common.js';

interface MergeArgs {
  dirs: string[];
  out?: string;
  verbose?: boolean;
}

/** The run metadata of the first folder that has a run.json (smoke if any of them was a smoke run). */
export function mergedMeta(dirs: readonly string[]): RunMeta {
  const metas = dirs.map((d) => readJsonIfExists<RunMeta>(join(d, 'run.json'), 'merge')).filter((m) => m !== undefined);
  const m = metas[0] ?? { name: 'merged', smoke: false };
  return { name: m.name, ...(m.description ? { description: m.description } : {}), smoke: metas.some((x) => x.smoke), ...(m.plotSparsity !== undefined ? { plotSparsity: m.plotSparsity } : {}) };
}

export async function merge(dirs: readonly string[], out: string): Promise<{ cells: number; tables: string[]; plots: string[] }> {
  for (const d of dirs) if (!existsSync(join(d, 'cells'))) throw new UsageError(`${d}: not a run folder (no cells/ inside)`);
  const cells = gatherCells(dirs);
  mkdirSync(out, { recursive: true });
  return { cells: cells.length, ...(await tabulate(out, mergedMeta(dirs), cells)) };
}

const command: CommandModule<object, MergeArgs> = {
  command: 'merge <dirs..>',
  describe: 'gather the cells of several run folders (shards) into one results table and plots',
  builder: (y: Argv) =>
    usageFailures(
      y
        .positional('dirs', { type: 'string', array: true, demandOption: true, describe: 'run folders (each with cells/)' })
        .option('out', { type: 'string', describe: 'output folder (default: the first DIR)' })
        .option('verbose', { type: 'boolean', describe: 'print stacks on errors' }) as unknown as Argv<MergeArgs>,
    ),
  handler: (a) =>
    runCommand(a.verbose, async () => {
      const out = a.out ?? a.dirs[0];
      const r = await merge(a.dirs, out);
      console.log(readFileSync(join(out, 'results.md'), 'utf8'));
      console.log(`merged ${r.cells} cells from ${a.dirs.length} folder(s)`);
      console.log(`results: ${r.tables.join(', ')}`);
      if (r.plots.length) console.log(`plots: ${r.plots.join(', ')}`);
    }),
};

export const mergeCommand = command as unknown as CommandModule;
