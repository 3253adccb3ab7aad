// Every CLI subcommand, one module each. Add a command by adding its module to this list.

import type { CommandModule } from 'yargs';
import { infoCommand } from './info.js';
import { convertCommand } from './convert.js';

export const commands: CommandModule[] = [infoCommand, convertCommand];
