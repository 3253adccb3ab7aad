// One pruning cell, end to end: load the dense model (a bundled one, or an architecture plus a checkpoint), load the
// calibration and held-out data, prune with sparsity/prune.ts, evaluate, and write DIR/model.safetensors,
// DIR/result.json and DIR/history.json (FCPTS curves). `ptslab prune` is a thin CLI over this; `ptslab run` calls it
// once per grid cell. Files are written atomically (temporary file + rename).

import { renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError, backend, type Tensor } from '../core/index.js';
import { loadCheckpoint, saveSafetensors, type Module } from '../nn/index.js';
import { calibrationSubset, imagenet, imagenetEval, imagenetTrain } from '../nn/data/index.js';
import { DATASET_INFO, buildModel, evaluate, isArch, isDataset, loadDataset, type Arch, type DatasetName } from '../nn/train/index.js';
import { prune, type PruneConfig, type StepLog } from '../sparsity/index.js';
import { bundledModelSpec, loadBundledModel } from './models/index.js';

export interface CellSpec {
  /** A bundled model name, or null with arch + weights. */
  model: string | null;
  arch?: string;
  weights?: string;
  dataset?: string;
  dataDir?: string;
  widthMult?: number;
  /** How many held-out images to evaluate (default all). */
  evalImages?: number;
  /** ImageNet only: training crop and evaluation resize/crop sides (default 224 / 256; the FCPTS code used 224 / 224). */
  imageSize?: { crop: number; resize: number };
  /** The dense model's top-1 on this same evaluation set, when already known (skips evaluating the dense model). */
  denseTop1?: number;
  prune: PruneConfig;
}

export interface CellResult {
  method: string;
  model: string;
  arch: string;
  dataset: string;
  targetSparsity: number;
  achievedSparsity: number;
  prunableParams: number;
  zeroParams: number;
  top1: number;
  denseTop1: number;
  seconds: number;
  seed: number;
  backend: string;
  commit: string | null;
  version: string;
  config: PruneConfig;
  evalImages: number;
  layers: Array<{ name: string; params: number; sparsity: number }>;
}

export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

interface Loaded {
  model: Module;
  makeModel: () => Module;
  name: string;
  arch: string;
  dataset: DatasetName;
  denseTop1: number | null;
}

function loadModel(spec: CellSpec): Loaded {
  if (spec.model) {
    const { model, info } = loadBundledModel(spec.model);
    const s = bundledModelSpec(spec.model);
    const d = DATASET_INFO[s.dataset];
    const makeModel = () => buildModel(s.arch, { numClasses: d.numClasses, inChannels: d.channels, inputSize: d.size, widthMult: s.widthMult });
    const sameBackend = info.record?.backend === backend().name;
    return { model, makeModel, name: spec.model, arch: s.arch, dataset: s.dataset, denseTop1: sameBackend ? info.top1 : null };
  }
  if (!spec.arch || !isArch(spec.arch)) throw new ArgumentError(`prune: --arch must be one of the known architectures, got '${spec.arch}'`);
  if (!spec.dataset || !isDataset(spec.dataset)) throw new ArgumentError(`prune: --dataset must be a known dataset, got '${spec.dataset}'`);
  if (!spec.weights) throw new ArgumentError('prune: --arch needs --weights (a .safetensors or .pth checkpoint)');
  const d = DATASET_INFO[spec.dataset];
  const arch = spec.arch as Arch;
  const makeModel = () => buildModel(arch, { numClasses: d.numClasses, inChannels: d.channels, inputSize: d.size, widthMult: spec.widthMult });
  const model = makeModel();
  model.loadStateDict(loadCheckpoint(spec.weights), { strict: true });
  return { model, makeModel, name: spec.weights, arch, dataset: spec.dataset, denseTop1: null };
}

export interface CellRunOptions {
  out: string | null;
  commit: string | null;
  version: string;
  onStep?: (log: StepLog) => void;
  log?: (line: string) => void;
}

export async function runCell(spec: CellSpec, o: CellRunOptions): Promise<CellResult> {
  const loaded = loadModel(spec);
  const dataDir = spec.dataDir;
  const size = loaded.dataset === 'imagenet' ? spec.imageSize : undefined;
  const calibSource = size ? imagenet(dataDir!, 'train', { transform: imagenetTrain(size.crop) }) : loadDataset(loaded.dataset, 'train', { dataDir, augment: true });
  const calibSourcePlain = size ? imagenet(dataDir!, 'train', { transform: imagenetEval(size.crop, size.resize) }) : loadDataset(loaded.dataset, 'train', { dataDir, augment: false });
  let test = size ? imagenet(dataDir!, 'val', { transform: imagenetEval(size.crop, size.resize) }) : loadDataset(loaded.dataset, 'test', { dataDir });
  if (spec.evalImages && spec.evalImages < test.length) test = calibrationSubset(test, spec.evalImages, 0);
  let denseTop1 = spec.denseTop1 ?? (spec.evalImages || size ? null : loaded.denseTop1);
  if (denseTop1 === null) {
    o.log?.('evaluating the dense model');
    denseTop1 = (await evaluate(loaded.model, test)).top1;
  }
  const onNumericError = (state: Record<string, Tensor>): string | void => {
    if (!o.out) return;
    mkdirSync(o.out, { recursive: true });
    const file = join(o.out, 'last-good.safetensors');
    saveSafetensors(`${file}.tmp-${process.pid}`, state);
    renameSync(`${file}.tmp-${process.pid}`, file);
    return file;
  };
  const outcome = await prune({ model: loaded.model, makeModel: loaded.makeModel, calibSource, calibSourcePlain, onStep: o.onStep, log: o.log, onNumericError }, spec.prune);
  o.log?.(`pruned in ${outcome.seconds.toFixed(1)} s; evaluating`);
  const acc = await evaluate(loaded.model, test);
  const result: CellResult = {
    method: spec.prune.method,
    model: loaded.name,
    arch: loaded.arch,
    dataset: loaded.dataset,
    targetSparsity: spec.prune.sparsity,
    achievedSparsity: outcome.achievedSparsity,
    prunableParams: outcome.prunableParams,
    zeroParams: outcome.zeroParams,
    top1: acc.top1,
    denseTop1,
    seconds: Math.round(outcome.seconds * 10) / 10,
    seed: spec.prune.seed ?? 0,
    backend: backend().name,
    commit: o.commit,
    version: o.version,
    config: spec.prune,
    evalImages: acc.count,
    layers: outcome.layers,
  };
  if (o.out) {
    mkdirSync(o.out, { recursive: true });
    const tmp = join(o.out, `model.safetensors.tmp-${process.pid}`);
    saveSafetensors(tmp, loaded.model.stateDict(), { method: result.method, sparsity: String(result.achievedSparsity) });
    renameSync(tmp, join(o.out, 'model.safetensors'));
    writeJsonAtomic(join(o.out, 'history.json'), outcome.history);
    writeJsonAtomic(join(o.out, 'result.json'), result);
  }
  return result;
}
