// Public surface of nn/data: the Dataset interface, readers (Fashion-MNIST, MNIST, IDX folders, CIFAR, ImageNet /
// ImageFolder, any train/val image folder), transforms, the DataLoader and calibration subsets, the decode pool, and
// the synthetic ImageNet.

export { DataError, type Dataset, type Sample, type RawImage } from './types.js';
export { ArrayDataset, Subset, toSample, type ImageShape } from './array-dataset.js';
export { cacheDir, readCache, writeCache } from './cache.js';
export { fashionMnist, buildFashionMnistSplit, FASHION_MNIST_CLASSES, type FashionMnistInfo, type FashionMnistOptions } from './fashion-mnist.js';
export { loadIdxFolder, parseIdx, readIdxFile, mnist, mnistDataDir, MNIST_CLASSES, type IdxArray, type IdxFolderOptions } from './idx.js';
export { cifar10, cifar100, CIFAR10_CLASSES, CIFAR100_CLASSES, CIFAR10_MEAN, CIFAR10_STD } from './cifar.js';
export {
  ImageFolder, imagenet, imageFolderClasses, listImageFolder, pyStrCompare, IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS,
  type ImageFolderListing, type ImageFolderOptions,
} from './image-folder.js';
export {
  imageFolderSplits, imageFolderTransforms, checkImageFolderFits, readImageHeader, IMAGE_FOLDER_AUGMENTS, CIFAR_AUGMENT_PADDING,
  type ImageFolderAugment, type ImageFolderSplits, type ImageFolderSplitsOptions, type ImageHeader,
} from './image-folder-splits.js';
export { decodeImage, decodeFile, sniffFormat, type ImageFormat } from './decode.js';
export { DecodePool, decodePool, shutdownDecodePool, defaultDecodeWorkers } from './pool.js';
/** uint8 HWC pixel operations (resize, crop, pad, flip...), namespaced: core already exports a tensor `pad`. */
export * as imageOps from './image-ops.js';
export type { ResizeOptions } from './image-ops.js';
export {
  applySteps, applyTransformRaw, finiteViews, randomResizedCropParams, imagenetTrain, imagenetEval, smallImageTrain, toTensorOnly, toGrey,
  IMAGENET_MEAN, IMAGENET_STD, type Transform, type TransformStep,
} from './transforms.js';
export { DataLoader, calibrationSubset, mixSeed, viewKey, type Batch, type DataLoaderOptions } from './loader.js';
export { makeSyntheticImageNet, type SyntheticImageNet, type SyntheticImageNetOptions } from './synthetic.js';
