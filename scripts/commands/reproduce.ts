// `ptslab reproduce DIR [--only key=value,...] [--backend B] [--json]`: re-run finished cells of a results folder
// (e.g. experiments/results/quickstart) from their cell.json, in a scratch folder, and report every difference from
// the committed result.json and history.json (timings, commit and version aside). Exit 0 when every selected cell
// came out identical, 1 when one differs, 2 on a bad command line.

import type { Argv, CommandModule } from 'yargs';
import { parseOnly } from '../../experiments/runner/grid.js';
import { reproduce } from '../../experiments/runner/reproduce.js';
import { runCommand, usageFailures, UsageError } from './common.js';

interface ReproduceArgs {
  dir: string;
  only?: string;
  backend?: string;
  json: boolean;
  verbose?: boolean;
}

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

const command: CommandModule<object, ReproduceArgs> = {
  command: 'reproduce <dir>',
  describe: 're-run finished cells of a results folder and check that they give the committed results exactly',
  builder: (y: Argv) =>
    usageFailures(
      y
        .positional('dir', { type: 'string', demandOption: true, describe: 'results folder (with cells/)' })
        .option('only', { type: 'string', describe: 'cells to re-run: key=value,... as in `ptslab run --only` (default: all)' })
        .option('backend', { type: 'string', describe: 'backend (default: the one each result.json names)' })
        .option('json', { type: 'boolean', default: false, describe: 'print one JSON array of { key, backend, seconds, mismatches }' })
        .option('verbose', { type: 'boolean', describe: 'print stacks on errors' }) as unknown as Argv<ReproduceArgs>,
    ),
  handler: (a) =>
    runCommand(a.verbose, async () => {
      let only;
      try {
        only = a.only ? parseOnly(a.only) : undefined;
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const cells = await reproduce(a.dir, { only, backend: a.backend, log: a.json ? undefined : (l) => console.log(l) });
      if (a.json) console.log(JSON.stringify(cells));
      else {
        for (const c of cells) {
          console.log(`${c.key}: ${c.mismatches.length ? `${c.mismatches.length} difference(s)` : 'identical'} (${c.seconds} s on ${c.backend})`);
          for (const m of c.mismatches.slice(0, 10)) console.log(`  ${m.field}: committed ${show(m.committed)}, re-run ${show(m.rerun)}`);
          if (c.mismatches.length > 10) console.log(`  ... and ${c.mismatches.length - 10} more`);
        }
        const bad = cells.filter((c) => c.mismatches.length).length;
        console.log(`${cells.length - bad} of ${cells.length} cell(s) reproduced exactly`);
      }
      if (cells.some((c) => c.mismatches.length)) process.exitCode = 1;
    }),
};

export const reproduceCommand = command as unknown as CommandModule;
