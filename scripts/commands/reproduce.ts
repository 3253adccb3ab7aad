// `ptslab reproduce DIR [--only key=value,...] [--backend B] [--tolerance [--top1-band PP] [--layer-band F]
// [--history-band R]] [--json]`: re-run finished cells of a results folder (e.g. experiments/results/quickstart) from
// their cell.json, in a scratch folder, and report every difference from the committed result.json and history.json
// (timings, commit and version aside). Exact by default; --tolerance compares within bands instead
// (experiments/runner/reproduce.ts says which). Exit 0 when every selected cell came out identical (or within its
// bands), 1 when one differs (or lies outside), 2 on a bad command line.

import type { Argv, CommandModule } from 'yargs';
import { parseOnly } from '../../experiments/runner/grid.js';
import { DEFAULT_TOLERANCE, passes, reproduce, type Mismatch } from '../../experiments/runner/reproduce.js';
import { runCommand, usageFailures, UsageError } from './common.js';

interface ReproduceArgs {
  dir: string;
  only?: string;
  backend?: string;
  tolerance: boolean;
  top1Band?: number;
  layerBand?: number;
  historyBand?: number;
  json: boolean;
  verbose?: boolean;
}

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
const mark = (m: Mismatch) => (m.band === undefined ? '' : `  [${m.within ? 'within' : 'OUTSIDE'} ${m.band}]`);

const command: CommandModule<object, ReproduceArgs> = {
  command: 'reproduce <dir>',
  describe: 're-run finished cells of a results folder and check that they give the committed results exactly',
  builder: (y: Argv) =>
    usageFailures(
      y
        .positional('dir', { type: 'string', demandOption: true, describe: 'results folder (with cells/)' })
        .option('only', { type: 'string', describe: 'cells to re-run: key=value,... as in `ptslab run --only` (default: all)' })
        .option('backend', { type: 'string', describe: 'backend (default: the one each result.json names)' })
        .option('tolerance', { type: 'boolean', default: false, describe: 'compare within bands (sparsity exact, top-1 and layer sparsities within a band, history means per tenth of the run close) instead of exactly' })
        .option('top1-band', { type: 'number', describe: `with --tolerance: top-1 band in percentage points (default ${DEFAULT_TOLERANCE.top1})` })
        .option('layer-band', { type: 'number', describe: `with --tolerance: band on each layer's sparsity (default ${DEFAULT_TOLERANCE.layerSparsity})` })
        .option('history-band', { type: 'number', describe: `with --tolerance: relative band on history means (default ${DEFAULT_TOLERANCE.history})` })
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
      const bands = { top1: a.top1Band, layerSparsity: a.layerBand, history: a.historyBand };
      const given = Object.entries(bands).filter(([, v]) => v !== undefined);
      if (!a.tolerance && given.length) throw new UsageError(`--${given.map(([k]) => ({ top1: 'top1', layerSparsity: 'layer', history: 'history' })[k]).join('-band, --')}-band need --tolerance`);
      const tolerance = a.tolerance ? Object.fromEntries(given) : undefined;
      const cells = await reproduce(a.dir, { only, backend: a.backend, tolerance, log: a.json ? undefined : (l) => console.log(l) });
      if (a.json) console.log(JSON.stringify(cells));
      else {
        for (const c of cells) {
          const outside = c.mismatches.filter((m) => !m.within).length;
          const verdict = !c.mismatches.length ? 'identical' : a.tolerance ? `${c.mismatches.length} difference(s), ${outside ? `${outside} outside their bands` : 'all within their bands'}` : `${c.mismatches.length} difference(s)`;
          console.log(`${c.key}: ${verdict} (${c.seconds} s on ${c.backend})`);
          // every difference in the tolerance mode (each is judged); the first ten otherwise
          const shown = a.tolerance ? c.mismatches : c.mismatches.slice(0, 10);
          for (const m of shown) console.log(`  ${m.field}: committed ${show(m.committed)}, re-run ${show(m.rerun)}${mark(m)}`);
          if (c.mismatches.length > shown.length) console.log(`  ... and ${c.mismatches.length - shown.length} more`);
        }
        const good = cells.filter(passes).length;
        console.log(`${good} of ${cells.length} cell(s) reproduced ${a.tolerance ? 'within the bands' : 'exactly'}`);
      }
      if (!cells.every(passes)) process.exitCode = 1;
    }),
};

export const reproduceCommand = command as unknown as CommandModule;
