// `ptslab readme [FILE...] [--check]`: rewrite the generated blocks of markdown files (default README.md,
// experiments/README.md, experiments/models/README.md and web/README.md) from the committed result files and model records (experiments/runner/readme.ts).
// --check writes nothing and exits 1 naming the stale blocks, so CI catches a README number that no file backs.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PtslabError } from '../../core/errors.js';
import { renderGenerated } from '../../experiments/runner/readme.js';
import { runCommand, usageFailures, UsageError } from './common.js';

interface ReadmeArgs {
  files?: string[];
  check: boolean;
  verbose?: boolean;
}

/** The repository root (this file is compiled to dist/scripts/commands). */
export const repoRoot = (): string => fileURLToPath(new URL('../../..', import.meta.url));

export const DEFAULT_README_FILES = ['README.md', 'experiments/README.md', 'experiments/models/README.md', 'web/README.md'];

const command: CommandModule<object, ReadmeArgs> = {
  command: 'readme [files..]',
  describe: 'regenerate the README blocks (results tables, bundled models) from the committed files',
  builder: (y: Argv) =>
    usageFailures(
      y
        .positional('files', { type: 'string', array: true, describe: `markdown files (default ${DEFAULT_README_FILES.join(', ')})` })
        .option('check', { type: 'boolean', default: false, describe: 'write nothing; exit 1 if a block is out of date' })
        .option('verbose', { type: 'boolean', describe: 'print stacks on errors' }) as unknown as Argv<ReadmeArgs>,
    ),
  handler: (a) =>
    runCommand(a.verbose, () => {
      const root = repoRoot();
      const files = a.files?.length ? a.files.map((f) => resolve(f)) : DEFAULT_README_FILES.map((f) => join(root, f));
      const stale: string[] = [];
      for (const f of files) {
        if (!existsSync(f)) throw new UsageError(`${f}: no such file`);
        const before = readFileSync(f, 'utf8');
        const r = renderGenerated(before, root);
        stale.push(...r.stale.map((b) => `${f}: ${b}`));
        if (!a.check && r.text !== before) {
          writeFileSync(`${f}.tmp-${process.pid}`, r.text);
          renameSync(`${f}.tmp-${process.pid}`, f);
        }
      }
      if (a.check && stale.length) throw new PtslabError(`out of date (run \`ptslab readme\`): ${stale.join('; ')}`);
      console.log(stale.length ? `updated: ${stale.join('; ')}` : 'all generated blocks are up to date');
    }),
};

export const readmeCommand = command as unknown as CommandModule;
