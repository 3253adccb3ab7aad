// `ptslab models`: the bundled pretrained models with architecture, dataset and held-out top-1 from their
// record.json (null / "not trained yet" while the weights are missing). --json prints one array of
// { "name", "arch", "dataset", "top1" }.

import type { CommandModule } from 'yargs';
import { listBundledModels } from '../../experiments/models/index.js';
import { runCommand, usageFailures } from './common.js';

interface ModelsArgs {
  json: boolean;
  verbose?: boolean;
}

const command: CommandModule<object, ModelsArgs> = {
  command: 'models',
  describe: 'list the bundled pretrained models and their accuracy',
  builder: (y) =>
    usageFailures(
      y.option('json', { type: 'boolean', default: false, describe: 'print a JSON array' }).option('verbose', { type: 'boolean', describe: 'print stacks on errors' }),
    ),
  handler: (a) =>
    runCommand(a.verbose, () => {
      const list = listBundledModels();
      if (a.json) {
        console.log(JSON.stringify(list.map((m) => ({ name: m.name, arch: m.arch, dataset: m.dataset, top1: m.top1 }))));
        return;
      }
      for (const m of list) {
        const acc = m.top1 === null ? 'not trained yet' : `top-1 ${m.top1.toFixed(2)}%`;
        console.log(`${m.name.padEnd(20)} ${m.arch.padEnd(12)} ${m.dataset.padEnd(14)} ${acc}`);
      }
    }),
};

export const modelsCommand = command as unknown as CommandModule;
