// `ptslab train`: train a classifier (--arch, --dataset) with SGD + warm-up/cosine, resumable checkpoints in --out,
// evaluation each epoch and DIR/record.json (config, seed, backend, package version, git commit, command line,
// time and accuracy per epoch). Progress: a cli-progress bar on a terminal, a log line every 20 iterations otherwise.

import cliProgress from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { manualSeed } from '../../core/index.js';
import { selectBackend } from '../../core/backend/select.js';
import { imageFolderSplits } from '../../nn/data/index.js';
import { ARCHS, DATASETS, DATASET_INFO, buildModel, datasetInfoOf, loadDataset, train, type Arch, type DatasetName, type TrainConfig } from '../../nn/train/index.js';
import { packageVersion } from './version.js';
import { FOLDER_OPTIONS, SHORTCUT_OPTION, UsageError, backendChoices, numberList, checkNumbers, gitCommit, runCommand, usageFailures } from './common.js';

interface TrainArgs {
  arch: string;
  shortcut?: 'A' | 'B';
  mean?: string;
  std?: string;
  'image-size'?: number;
  augment?: 'none' | 'cifar' | 'imagenet';
  dataset: string;
  'data-dir'?: string;
  epochs: number;
  lr?: number;
  batch: number;
  wd: number;
  seed: number;
  'width-mult'?: number;
  'label-smoothing': number;
  'warmup-epochs': number;
  out?: string;
  resume: boolean;
  backend?: string;
  'checkpoint-every': number;
  'stop-after'?: number;
  verbose?: boolean;
}

const fmtTime = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`);

async function handler(a: TrainArgs): Promise<void> {
  const ds = a.dataset as DatasetName;
  if (DATASET_INFO[ds].needsDir && !a['data-dir']) throw new UsageError(`--dataset ${ds} needs --data-dir (the folder holding its files)`);
  const folderFlags = (['mean', 'std', 'image-size', 'augment'] as const).filter((k) => a[k] !== undefined);
  if (folderFlags.length && ds !== 'image-folder') throw new UsageError(`--${folderFlags[0]} applies to --dataset image-folder, not ${ds}`);
  // an image folder's numbers (classes, channels, side) come from the folder itself
  const folder = ds === 'image-folder'
    ? imageFolderSplits(a['data-dir']!, { mean: numberList('mean', a.mean), std: numberList('std', a.std), imageSize: a['image-size'], augment: a.augment ?? 'none' })
    : null;
  const info = folder ? datasetInfoOf(folder) : DATASET_INFO[ds];
  const b = selectBackend(a.backend);
  const train1 = folder ? folder.train : loadDataset(ds, 'train', { dataDir: a['data-dir'] });
  const test = folder ? folder.val : loadDataset(ds, 'test', { dataDir: a['data-dir'] });
  const itersPerEpoch = Math.floor(train1.length / a.batch);
  const config: TrainConfig = {
    arch: a.arch,
    dataset: a.dataset,
    dataDir: a['data-dir'] ?? null,
    epochs: a.epochs,
    lr: a.lr ?? 0.1 * (a.batch / 128),
    batch: a.batch,
    wd: a.wd,
    seed: a.seed,
    momentum: 0.9,
    nesterov: true,
    labelSmoothing: a['label-smoothing'],
    warmupIters: Math.round(a['warmup-epochs'] * itersPerEpoch),
    widthMult: a.arch === 'mobilenetv2' ? (a['width-mult'] ?? 1) : null,
    ...(a.shortcut ? { shortcut: a.shortcut } : {}),
    checkpointEvery: a['checkpoint-every'],
    backend: b.name,
  };
  const out = a.out ?? `runs/${a.arch}-${a.dataset}-s${a.seed}`;
  manualSeed(config.seed);
  const model = buildModel(a.arch as Arch, { numClasses: info.numClasses, inChannels: info.channels, inputSize: info.size, widthMult: config.widthMult ?? undefined, shortcut: config.shortcut });
  const nParams = model.parameters().reduce((s, p) => s + p.size, 0);
  console.log(`train ${a.arch} (${nParams.toLocaleString('en-US')} parameters) on ${a.dataset}: ${train1.length} train / ${test.length} test images, ${config.epochs} epochs x ${itersPerEpoch} iterations of ${config.batch}, lr ${config.lr}, wd ${config.wd}, seed ${config.seed}, backend ${b.name}, out ${out}`);
  const tty = Boolean(process.stderr.isTTY);
  const bar = tty ? new cliProgress.SingleBar({ format: 'epoch {ep} |{bar}| {value}/{total} it | {speed} it/s | loss {loss} | lr {lr} | ETA {eta_formatted}', etaBuffer: 50 }, cliProgress.Presets.shades_classic) : null;
  let barEpoch = -1;
  let interrupted = false;
  const onSignal = (sig: string) => {
    if (interrupted) process.exit(130); // a second signal: stop now, the last checkpoint stands
    interrupted = true;
    console.log(`${sig}: stopping after this iteration with a checkpoint (again to stop at once)`);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  let t0 = performance.now();
  let s0 = -1;
  const result = await train({
    config,
    out,
    model,
    train: train1,
    test,
    resume: a.resume,
    stopAfterStep: a['stop-after'],
    shouldStop: () => interrupted,
    meta: { packageVersion: packageVersion(), gitCommit: gitCommit(), command: process.argv.slice(1).join(' '), node: process.version },
    log: (l) => console.log(l),
    onProgress: (p) => {
      if (s0 < 0) {
        s0 = p.step - 1;
        t0 = performance.now();
      }
      const speed = (p.step - s0) / ((performance.now() - t0) / 1000);
      if (bar) {
        if (barEpoch !== p.epoch) {
          if (barEpoch >= 0) bar.stop();
          bar.start(p.itersPerEpoch, p.batchInEpoch, { ep: `${p.epoch + 1}/${config.epochs}`, speed: '-', loss: '-', lr: '-' });
          barEpoch = p.epoch;
        }
        bar.update(p.batchInEpoch, { speed: speed.toFixed(2), loss: p.loss.toFixed(4), lr: p.lr.toExponential(2) });
      } else if (p.step % 20 === 0 || p.batchInEpoch === p.itersPerEpoch) {
        const eta = (p.totalSteps - p.step) / speed;
        console.log(`epoch ${p.epoch + 1}/${config.epochs} it ${p.batchInEpoch}/${p.itersPerEpoch} (step ${p.step}/${p.totalSteps}) loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(3)} ${speed.toFixed(3)} it/s (${(1000 / speed).toFixed(0)} ms/it) ETA ${fmtTime(eta)}`);
      }
    },
    onEpoch: (r) => {
      if (bar) {
        bar.stop();
        barEpoch = -1;
      }
      console.log(`epoch ${r.epoch}/${config.epochs}: train loss ${r.trainLoss.toFixed(4)}, test top-1 ${r.top1.toFixed(2)}%, top-5 ${r.top5.toFixed(2)}% on ${r.count} images (${r.seconds} s)`);
    },
  }).finally(() => bar?.stop());
  if (result.finished) console.log(`finished: top-1 ${result.final?.top1.toFixed(2) ?? '?'}%, weights in ${out}/model.safetensors, record in ${out}/record.json`);
  else console.log(`stopped at iteration ${result.state.step}; continue with the same command and --resume`);
}

const command: CommandModule<object, TrainArgs> = {
  command: 'train',
  describe: 'train a classifier with SGD + cosine schedule, resumable checkpoints and a run record',
  builder: (y) =>
    usageFailures(
      y
        .option('arch', { type: 'string', choices: ARCHS, demandOption: true, describe: 'architecture' })
        .option('dataset', { type: 'string', choices: DATASETS, demandOption: true, describe: 'dataset' })
        .option('data-dir', { type: 'string', describe: 'folder of the dataset files (idx, cifar, imagenet; optional for mnist)' })
        .option('epochs', { type: 'number', demandOption: true, describe: 'epochs' })
        .option('lr', { type: 'number', describe: 'peak learning rate (default 0.1 * batch / 128)' })
        .option('batch', { type: 'number', default: 128, describe: 'batch size' })
        .option('wd', { type: 'number', default: 5e-4, describe: 'weight decay' })
        .option('seed', { type: 'number', default: 0, describe: 'seed of initialisation, shuffling, augmentation, dropout' })
        .option('width-mult', { type: 'number', describe: 'MobileNetV2 width multiplier (default 1)' })
        .option('shortcut', SHORTCUT_OPTION)
        .option('image-size', { type: 'number', describe: 'image-folder: resize the short side to N and centre-crop N x N' })
        .options(FOLDER_OPTIONS)
        .option('label-smoothing', { type: 'number', default: 0, describe: 'cross-entropy label smoothing' })
        .option('warmup-epochs', { type: 'number', default: 0.5, describe: 'linear warm-up length in epochs' })
        .option('out', { type: 'string', describe: 'output folder (checkpoint, record.json, model.safetensors)' })
        .option('resume', { type: 'boolean', default: false, describe: 'continue from OUT/checkpoint.safetensors' })
        .option('backend', { type: 'string', choices: backendChoices(), describe: 'backend (default: PTSLAB_BACKEND, else auto)' })
        .option('checkpoint-every', { type: 'number', default: 100, describe: 'also checkpoint every N iterations (0: epoch ends only)' })
        .option('stop-after', { type: 'number', describe: 'stop (checkpointed) after this many iterations in all' })
        .option('verbose', { type: 'boolean', describe: 'print stacks on errors' })
        .check((a) =>
          checkNumbers(a, {
            epochs: 'int>0', batch: 'int>0', 'image-size': 'int>0', lr: '>0', wd: '>=0', seed: 'int>=0', 'width-mult': '>0', 'label-smoothing': '[0,1)',
            'warmup-epochs': '>=0', 'checkpoint-every': 'int>=0', 'stop-after': 'int>0',
          }),
        ),
    ),
  handler: (a) => runCommand(a.verbose, () => handler(a)),
};

export const trainCommand = command as unknown as CommandModule;
