// Every CLI subcommand, one module each. Add a command by adding its module to this list.

import type { CommandModule } from 'yargs';
import { infoCommand } from './info.js';
import { convertCommand } from './convert.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';
import { modelsCommand } from './models.js';
import { pruneCommand } from './prune.js';
import { runCommandModule } from './run.js';
import { mergeCommand } from './merge.js';
import { readmeCommand } from './readme.js';
import { reproduceCommand } from './reproduce.js';

export const commands: CommandModule[] = [infoCommand, convertCommand, trainCommand, evalCommand, modelsCommand, pruneCommand as CommandModule, runCommandModule, mergeCommand, readmeCommand, reproduceCommand];
