#!/usr/bin/env node
// The ptslab command line. Subcommands are added as their parts land; `ptslab --help` lists them.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { backend, listBackends } from '../core/index.js';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

await yargs(hideBin(process.argv))
  .scriptName('ptslab')
  .version(pkg.version)
  .command(
    'info',
    'print the backends found and the one in use',
    () => {},
    () => {
      console.log(`ptslab ${pkg.version}, node ${process.version}`);
      console.log(`backends: ${listBackends().join(', ')}`);
      console.log(`in use: ${backend().name}`);
    },
  )
  .demandCommand(1, 'give a command; see ptslab --help')
  .strict()
  .help()
  .parseAsync();
