// `ptslab info`: the backends found and the one in use.

import type { CommandModule } from 'yargs';
import { backend, listBackends } from '../../core/index.js';
import { packageVersion } from './version.js';

export const infoCommand: CommandModule = {
  command: 'info',
  describe: 'print the backends found and the one in use',
  handler: () => {
    console.log(`ptslab ${packageVersion()}, node ${process.version}`);
    console.log(`backends: ${listBackends().join(', ')}`);
    console.log(`in use: ${backend().name}`);
  },
};
