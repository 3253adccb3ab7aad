// `ptslab info`: the backends found (with why any is unavailable), the one `auto` picks on this machine and the
// probe timings behind that choice, and the one in use (PTSLAB_BACKEND, else auto).

import type { CommandModule } from 'yargs';
import { backend, listBackends } from '../../core/index.js';
import { autoBackendReport, selectBackend } from '../../core/backend/select.js';
import { threadCount } from '../../core/backend/cpu/index.js';
import { gpujsMode, gpujsUnavailableReason } from '../../core/backend/gpujs/index.js';
import { packageVersion } from './version.js';
import { runCommand, usageFailures } from './common.js';

export const infoCommand: CommandModule = {
  command: 'info',
  describe: 'print the backends found, the one auto picks, and the one in use',
  builder: (y) => usageFailures(y.option('verbose', { type: 'boolean', describe: 'print stacks on errors' })),
  handler: (a) => runCommand(a.verbose as boolean | undefined, () => {
    console.log(`ptslab ${packageVersion()}, node ${process.version}`);
    console.log(`backends: ${listBackends().join(', ')}`);
    const auto = autoBackendReport();
    for (const c of auto.candidates) {
      const state = !c.available
        ? `unavailable: ${c.reason}`
        : c.correct === false
          ? `probe disagreed with the reference${c.reason ? ` (${c.reason})` : ''}`
          : c.ms !== undefined ? `probe ${c.ms.toFixed(1)} ms` : 'available';
      console.log(`  ${c.name.padEnd(10)} ${state}`);
    }
    console.log(`  cpu threads: ${threadCount()} (PTSLAB_THREADS overrides)`);
    const reason = gpujsUnavailableReason();
    console.log(`  gpujs mode: ${reason ? `not running (${reason})` : gpujsMode()} (PTSLAB_GPUJS_MODE overrides)`);
    console.log(`auto: ${auto.chosen} (${auto.cached ? 'cached' : 'measured now'} in ${auto.cacheFile})`);
    selectBackend();
    console.log(`in use: ${backend().name}${process.env.PTSLAB_BACKEND ? ` (PTSLAB_BACKEND=${process.env.PTSLAB_BACKEND})` : ''}`);
  }),
};
