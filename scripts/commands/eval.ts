// `ptslab eval`: top-1 / top-5 accuracy (percent) and the image count of a bundled model (--model NAME, on its own
// dataset's held-out split) or of any weights file (--arch A --weights W --dataset D). --json prints exactly one
// object { "top1", "top5", "count" } on stdout. --limit N evaluates the first N held-out images only.

import type { CommandModule } from 'yargs';
import { selectBackend } from '../../core/backend/select.js';
import { loadCheckpoint, type Module } from '../../nn/index.js';
import { Subset } from '../../nn/data/index.js';
import { ARCHS, DATASETS, DATASET_INFO, buildModel, evaluate, loadDataset, type Arch, type DatasetName } from '../../nn/train/index.js';
import { BUNDLED_MODELS, loadBundledModel } from '../../experiments/models/index.js';
import { UsageError, backendChoices, checkNumbers, runCommand, usageFailures, type ModelArgs } from './common.js';

interface EvalArgs extends ModelArgs {
  batch: number;
  limit?: number;
  json: boolean;
  backend?: string;
  verbose?: boolean;
}

async function handler(a: EvalArgs): Promise<void> {
  let model: Module;
  let dataset: DatasetName;
  let label: string;
  if (a.model) {
    if (a.arch || a.weights) throw new UsageError('eval: give either --model NAME or --arch with --weights, not both');
    const b = selectBackend(a.backend);
    const { model: m, info } = loadBundledModel(a.model);
    const trainedOn = info.record?.backend;
    if (trainedOn && trainedOn !== b.name) process.stderr.write(`note: ${a.model}'s recorded accuracy was measured on backend '${trainedOn}', this is '${b.name}': figures may differ in the last digit\n`);
    if (a.dataset && a.dataset !== info.dataset) throw new UsageError(`eval: bundled model '${a.model}' is trained on ${info.dataset}, not ${a.dataset}`);
    model = m;
    dataset = info.dataset;
    label = a.model;
  } else {
    if (!a.arch || !a.weights || !a.dataset) throw new UsageError('eval: give --model NAME, or --arch, --weights and --dataset');
    dataset = a.dataset as DatasetName;
    const info = DATASET_INFO[dataset];
    if (info.needsDir && !a['data-dir']) throw new UsageError(`eval: --dataset ${dataset} needs --data-dir`);
    selectBackend(a.backend);
    model = buildModel(a.arch as Arch, { numClasses: info.numClasses, inChannels: info.channels, inputSize: info.size, widthMult: a['width-mult'] });
    model.loadStateDict(loadCheckpoint(a.weights));
    label = `${a.arch} ${a.weights}`;
  }
  const full = loadDataset(dataset, 'test', { dataDir: a['data-dir'] });
  const n = Math.min(a.limit ?? full.length, full.length);
  const test = n < full.length ? new Subset(full, Int32Array.from({ length: n }, (_, i) => i)) : full;
  const acc = await evaluate(model, test, { batchSize: a.batch });
  if (a.json) console.log(JSON.stringify({ top1: acc.top1, top5: acc.top5, count: acc.count }));
  else console.log(`${label} on ${dataset} (${acc.count} images): top-1 ${acc.top1.toFixed(2)}% (${acc.correct1}), top-5 ${acc.top5.toFixed(2)}% (${acc.correct5})`);
}

const command: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'top-1 / top-5 accuracy of a bundled model or a weights file on a held-out split',
  builder: (y) =>
    usageFailures(
      y
        .option('model', { type: 'string', choices: BUNDLED_MODELS.map((m) => m.name), describe: 'bundled model name (see ptslab models)' })
        .option('arch', { type: 'string', choices: ARCHS, describe: 'architecture of --weights' })
        .option('weights', { type: 'string', describe: 'weights file (.safetensors or .pth)' })
        .option('dataset', { type: 'string', choices: DATASETS, describe: 'dataset (its held-out split is used)' })
        .option('data-dir', { type: 'string', describe: 'folder of the dataset files' })
        .option('width-mult', { type: 'number', describe: 'MobileNetV2 width multiplier of --weights' })
        .option('batch', { type: 'number', default: 256, describe: 'batch size' })
        .option('limit', { type: 'number', describe: 'evaluate only the first N held-out images' })
        .option('json', { type: 'boolean', default: false, describe: 'print one JSON object { top1, top5, count }' })
        .option('backend', { type: 'string', choices: backendChoices(), describe: 'backend (default: PTSLAB_BACKEND, else auto)' })
        .option('verbose', { type: 'boolean', describe: 'print stacks on errors' })
        .check((a) => checkNumbers(a, { 'width-mult': '>0', batch: 'int>0', limit: 'int>0' })),
    ),
  handler: (a) => runCommand(a.verbose, () => handler(a)),
};

export const evalCommand = command as unknown as CommandModule;
