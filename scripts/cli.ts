#!/usr/bin/env node
// The ptslab command line. Each subcommand lives in scripts/commands/; `ptslab --help` lists them.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import '../core/backend/all.js';
import { commands } from './commands/index.js';
import { packageVersion } from './commands/version.js';

await yargs(hideBin(process.argv))
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
