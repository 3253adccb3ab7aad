// `ptslab eval`: top-1 / top-5 accuracy (percent) and the image count of a bundled model (--model NAME, on its own
// dataset's held-out split) or of any weights file (--arch A --weights W --dataset D). --json prints exactly one
// object { "top1", "top5", "count" } on stdout. --eval-images N evaluates the seeded subset of N held-out images
// that `ptslab prune --eval-images N` evaluates (experiments/kit.ts: one name, one meaning). --sparse-kernels auto|on|off
// (default auto) runs a pruned model's conv and linear layers on the backend's sparse kernels where they are faster
// (nn/sparse-inference.ts); --fuse (default; --no-fuse turns it off) folds each eval-mode BatchNorm into the conv
// before it and runs the ReLU after it inside the conv's kernel, checked on the first held-out image. Which layers
// went sparse, what was fused and the evaluation time go to stderr, so --json stays one line.

import type { CommandModule } from 'yargs';
import { ArgumentError } from '../../core/index.js';
import { selectBackend } from '../../core/backend/select.js';
import { ARCHS, DATASETS } from '../../nn/train/index.js';
import { BUNDLED_MODELS, bundledModelInfo } from '../../experiments/models/index.js';
import { loadExperiment, type Experiment } from '../../experiments/kit.js';
import { SPARSE_KERNEL_MODES, enableSparseInference, type SparseKernelMode } from '../../nn/sparse-inference.js';
import { FOLDER_OPTIONS, RENAME_OPTION, SHORTCUT_OPTION, UsageError, numberList, backendChoices, checkNumbers, runCommand, usageFailures, type ModelArgs } from './common.js';

interface EvalArgs extends ModelArgs {
  batch: number;
  'image-size'?: number;
  rename?: string[];
  mean?: string;
  std?: string;
  'eval-images'?: number;
  json: boolean;
  'sparse-kernels': SparseKernelMode;
  fuse: boolean;
  backend?: string;
  verbose?: boolean;
}

async function handler(a: EvalArgs): Promise<void> {
  if (a.model && (a.arch || a.weights)) throw new UsageError('eval: give either --model NAME or --arch with --weights, not both');
  if (!a.model && (!a.arch || !a.weights || !a.dataset)) throw new UsageError('eval: give --model NAME, or --arch, --weights and --dataset');
  const b = selectBackend(a.backend);
  let exp: Experiment;
  try {
    const folder = { folderImageSize: a['image-size'], mean: numberList('mean', a.mean), std: numberList('std', a.std) };
    exp = loadExperiment(a.model ? { model: a.model, dataDir: a['data-dir'], ...folder } : {
      arch: a.arch, weights: a.weights, dataset: a.dataset, dataDir: a['data-dir'], widthMult: a['width-mult'], shortcut: a.shortcut, rename: a.rename,
      ...folder,
    });
  } catch (e) {
    if (e instanceof ArgumentError) throw new UsageError(e.message);
    throw e;
  }
  if (a.model) {
    const trainedOn = bundledModelInfo(a.model).record?.backend;
    if (trainedOn && trainedOn !== b.name) process.stderr.write(`note: ${a.model}'s recorded accuracy was measured on backend '${trainedOn}', this is '${b.name}': figures may differ in the last digit\n`);
    if (a.dataset && a.dataset !== exp.dataset) throw new UsageError(`eval: bundled model '${a.model}' is trained on ${exp.dataset}, not ${a.dataset}`);
  }
  const probe = a.fuse ? exp.heldOut({ images: a['eval-images'] }).get(0).image : null;
  const sparse = enableSparseInference(exp.model, a['sparse-kernels'], probe ? { fuse: true, probe: probe.reshape([1, ...probe.shape]) } : {});
  const t0 = performance.now();
  let acc: Awaited<ReturnType<Experiment['evaluate']>>;
  try {
    acc = await exp.evaluate(exp.model, { images: a['eval-images'], batchSize: a.batch });
  } finally {
    sparse.remove();
  }
  const seconds = (performance.now() - t0) / 1000;
  const went = sparse.sparseLayers();
  const fused = a.fuse ? `; fused ${sparse.fused.length} conv + BatchNorm chains (${sparse.fused.filter((c) => c.act).length} with their activation)` : '';
  process.stderr.write(`sparse kernels ${a['sparse-kernels']}: ${went.length} of ${sparse.layers.length} pruned conv/linear layers ran sparse${went.length ? ` (${went.join(', ')})` : ''}${fused}; evaluated in ${seconds.toFixed(2)} s on backend '${b.name}'\n`);
  const label = a.model ?? `${a.arch} ${a.weights}`;
  if (a.json) console.log(JSON.stringify({ top1: acc.top1, top5: acc.top5, count: acc.count }));
  else console.log(`${label} on ${exp.dataset} (${acc.count} images): top-1 ${acc.top1.toFixed(2)}% (${acc.correct1}), top-5 ${acc.top5.toFixed(2)}% (${acc.correct5})`);
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
        .option('shortcut', SHORTCUT_OPTION)
        .option('rename', RENAME_OPTION)
        .option('image-size', { type: 'number', describe: 'image-folder: resize the short side to N and centre-crop N x N (nothing when already N x N)' })
        .option('mean', FOLDER_OPTIONS.mean)
        .option('std', FOLDER_OPTIONS.std)
        .option('batch', { type: 'number', default: 256, describe: 'batch size' })
        .option('eval-images', { type: 'number', describe: 'evaluate on a seeded subset of N held-out images (the same subset as ptslab prune --eval-images N)' })
        .option('json', { type: 'boolean', default: false, describe: 'print one JSON object { top1, top5, count }' })
        .option('sparse-kernels', { type: 'string', choices: SPARSE_KERNEL_MODES, default: 'auto' as SparseKernelMode, describe: 'pruned conv/linear layers on sparse kernels: auto (where timed faster), on (every layer with a zero), off (dense)' })
        .option('fuse', { type: 'boolean', default: true, describe: 'fold BatchNorm into the conv before it and fuse the ReLU after it (--no-fuse: run every layer as trained)' })
        .option('backend', { type: 'string', choices: backendChoices(), describe: 'backend (default: PTSLAB_BACKEND, else auto)' })
        .option('verbose', { type: 'boolean', describe: 'print stacks on errors' })
        .check((a) => checkNumbers(a, { 'width-mult': '>0', batch: 'int>0', 'eval-images': 'int>0', 'image-size': 'int>0' })),
    ),
  handler: (a) => runCommand(a.verbose, () => handler(a)),
};

export const evalCommand = command as unknown as CommandModule;
