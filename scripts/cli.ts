#!/usr/bin/env node
// The ptslab command line. Each subcommand lives in scripts/commands/; `ptslab --help` lists them.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import '../core/backend/all.js';
import { commands } from './commands/index.js';
import { packageVersion } from './commands/version.js';
import { loadPlugins } from '../sparsity/index.js';

// `--plugin FILE` registers methods and terms, so it is loaded before yargs derives --method's choices and the flags.
const argv = hideBin(process.argv);
const pluginFiles = argv.flatMap((a, i) => (a === '--plugin' && argv[i + 1] !== undefined ? [argv[i + 1]] : a.startsWith('--plugin=') ? [a.slice('--plugin='.length)] : []));
try {
  await loadPlugins(pluginFiles);
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(2);
}

await yargs(argv)
  .scriptName('ptslab')
  .version(packageVersion())
  .command(commands)
  .demandCommand(1, 'give a command')
  .strict()
  // An unknown or missing command: one line, exit 2 (each command sets its own handler for its flags).
  .fail((msg, err) => {
    process.stderr.write(`${(err?.message ?? msg ?? 'bad command line').replace(/\s*\n\s*/g, ' ').trim()} (see ptslab --help)\n`);
    process.exit(2);
  })
  .help()
  .parseAsync();
