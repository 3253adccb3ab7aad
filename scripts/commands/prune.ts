// `ptslab prune`: sparsify one model with one method at one sparsity and write DIR/model.safetensors and
// DIR/result.json (see experiments/prune-cell.ts). FCPTS options map one to one onto sparsity/fcpts.ts.

import type { Argv, CommandModule } from 'yargs';
import { selectBackend } from '../../core/backend/select.js';
import { PRUNE_METHODS, type PruneConfig, type PruneMethod } from '../../sparsity/index.js';
import { runCell } from '../../experiments/prune-cell.js';
import { readAllocation } from '../../experiments/allocation-file.js';
import { BUNDLED_MODELS } from '../../experiments/models/index.js';
import { ARCHS, DATASETS } from '../../nn/train/index.js';
import { backendChoices, checkNumbers, gitCommit, runCommand, usageFailures, UsageError, type ModelArgs } from './common.js';
import { packageVersion } from './version.js';

interface PruneArgs extends ModelArgs {
  method: string;
  sparsity: number;
  iters: number;
  calib: number;
  batch: number;
  lr?: number;
  seed: number;
  'bn-recal': boolean;
  estimator: string;
  'grad-mode': string;
  'threshold-mode': string;
  'teacher-mode': string;
  control: string;
  lambda: number;
  temperature: number;
  reconstruction: string;
  'keep-dense'?: string[];
  'erk-power': number;
  allocation?: string;
  'pot-iters': number;
  'pot-images': number;
  'eval-images'?: number;
  out?: string;
  json: boolean;
  backend?: string;
  verbose?: boolean;
}

function builder(y: Argv): Argv<PruneArgs> {
  return usageFailures(
    y
      .option('model', { type: 'string', choices: BUNDLED_MODELS.map((m) => m.name), describe: 'a bundled model (see ptslab models)' })
      .option('arch', { type: 'string', choices: ARCHS, describe: 'architecture, with --weights and --dataset' })
      .option('weights', { type: 'string', describe: 'a .safetensors or .pth checkpoint' })
      .option('dataset', { type: 'string', choices: DATASETS })
      .option('data-dir', { type: 'string' })
      .option('width-mult', { type: 'number' })
      .option('method', { choices: PRUNE_METHODS, demandOption: true })
      .option('sparsity', { type: 'number', demandOption: true, describe: 'global target in [0, 1)' })
      .option('iters', { type: 'number', default: 1600, describe: 'FCPTS / erk-kd iterations' })
      .option('calib', { type: 'number', default: 1024, describe: 'calibration images' })
      .option('batch', { type: 'number', default: 64 })
      .option('lr', { type: 'number', describe: 'default 0.04 * batch / 256' })
      .option('seed', { type: 'number', default: 0 })
      .option('bn-recal', { type: 'boolean', default: false, describe: 're-calibrate BatchNorm statistics after pruning' })
      .option('estimator', { choices: ['histogram', 'kde'], default: 'histogram' })
      .option('grad-mode', { choices: ['ste', 'detached'], default: 'ste', describe: 'ste: thresholds learn from the whole loss (paper); detached: from the control loss only (released code)' })
      .option('threshold-mode', { choices: ['absolute', 'relative'], default: 'absolute' })
      .option('teacher-mode', { choices: ['eval', 'train'], default: 'eval' })
      .option('control', { choices: ['abs', 'pow2'], default: 'abs' })
      .option('lambda', { type: 'number', default: 1 })
      .option('temperature', { type: 'number', default: 4 })
      .option('reconstruction', { choices: ['kl', 'mse', 'mse-features'], default: 'kl' })
      .option('keep-dense', { type: 'array', string: true, describe: 'layers to keep dense (module or weight names)' })
      .option('erk-power', { type: 'number', default: 1 })
      .option('allocation', { type: 'string', describe: "per-layer sparsities (a result.json or { name: sparsity }): method given's, or fcpts/erk-kd's start instead of ERK" })
      .option('pot-iters', { type: 'number', default: 2000, describe: 'POT: Adam iterations per layer' })
      .option('pot-images', { type: 'number', default: 256, describe: 'POT: calibration images for bias correction and reconstruction' })
      .option('eval-images', { type: 'number', describe: 'evaluate on a seeded subset of the held-out set' })
      .option('out', { type: 'string', describe: 'output folder (default runs/prune-<model>-<method>-<sparsity>)' })
      .option('json', { type: 'boolean', default: false, describe: 'print result.json to stdout' })
      .option('backend', { type: 'string', choices: backendChoices() })
      .option('verbose', { type: 'boolean', default: false })
      .check((a) =>
        checkNumbers(a, {
          'width-mult': '>0', sparsity: '[0,1)', iters: 'int>0', calib: 'int>0', batch: 'int>0', lr: '>0', seed: 'int>=0', lambda: '>=0', temperature: '>0',
          'erk-power': '>=0', 'pot-iters': 'int>0', 'pot-images': 'int>0', 'eval-images': 'int>0',
        }),
      ) as unknown as Argv<PruneArgs>,
  );
}

export function pruneConfigFromArgs(a: PruneArgs): PruneConfig {
  if (!(a.sparsity >= 0 && a.sparsity < 1)) throw new UsageError(`--sparsity must be in [0, 1), got ${a.sparsity}`);
  for (const k of ['iters', 'calib', 'batch'] as const) {
    if (!(Number.isInteger(a[k]) && a[k] > 0)) throw new UsageError(`--${k} must be a positive integer, got ${a[k]}`);
  }
  return {
    method: a.method as PruneMethod,
    sparsity: a.sparsity,
    iters: a.iters,
    calib: a.calib,
    batchSize: a.batch,
    lr: a.lr,
    seed: a.seed,
    bnRecal: a['bn-recal'],
    estimator: a.estimator as 'histogram' | 'kde',
    gradMode: a['grad-mode'] as 'detached' | 'ste',
    thresholdMode: a['threshold-mode'] as 'absolute' | 'relative',
    teacherMode: a['teacher-mode'] as 'eval' | 'train',
    objective: { control: a.control as 'abs' | 'pow2', lambda: a.lambda, temperature: a.temperature, reconstruction: a.reconstruction as 'kl' },
    keepDense: a['keep-dense'],
    erkPower: a['erk-power'],
    ...(a.allocation === undefined ? {} : { allocation: readAllocation(a.allocation) }),
    potIters: a['pot-iters'],
    potImages: a['pot-images'],
  };
}

export const pruneCommand: CommandModule<object, PruneArgs> = {
  command: 'prune',
  describe: 'sparsify a model with one method (fcpts or a baseline) and evaluate it',
  builder,
  handler: (a) =>
    runCommand(a.verbose, async () => {
      if (!a.model && !a.arch) throw new UsageError('give --model <bundled name> or --arch with --weights and --dataset');
      if (a.model && a.arch) throw new UsageError('give either --model or --arch, not both');
      selectBackend(a.backend);
      const cfg = pruneConfigFromArgs(a);
      const out = a.out ?? `runs/prune-${a.model ?? a.arch}-${a.method}-${a.sparsity}`;
      const every = Math.max(1, Math.floor((cfg.iters ?? 1600) / 20));
      const r = await runCell(
        { model: a.model ?? null, arch: a.arch, weights: a.weights, dataset: a.dataset, dataDir: a['data-dir'], widthMult: a['width-mult'], evalImages: a['eval-images'], prune: cfg },
        {
          out,
          commit: gitCommit(),
          version: packageVersion(),
          log: (l) => process.stderr.write(`${l}\n`),
          onStep: (s) => {
            if (s.step % every === 0) {
              const terms = Object.entries(s.terms).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
              process.stderr.write(`iter ${s.step + 1}/${cfg.iters}: ${terms}, sparsity ${(100 * s.sparsity).toFixed(2)}%, lr ${s.lr.toExponential(2)}\n`);
            }
          },
        },
      );
      if (a.json) console.log(JSON.stringify(r));
      else {
        console.log(`${r.method} on ${r.model}: target ${(100 * r.targetSparsity).toFixed(1)}%, achieved ${(100 * r.achievedSparsity).toFixed(4)}% (${r.zeroParams}/${r.prunableParams}), top-1 ${r.top1.toFixed(2)}% (dense ${r.denseTop1.toFixed(2)}%), ${r.seconds} s`);
        console.log(`wrote ${out}/model.safetensors and ${out}/result.json`);
      }
    }),
};
