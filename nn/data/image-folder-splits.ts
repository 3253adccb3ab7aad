// Any image folder as a dataset: DIR/train/<class>/** for training and calibration, DIR/val/<class>/** for
// evaluation, both read with torchvision's ImageFolder rules (image-folder.ts), with the user's normalisation, an
// optional evaluation resize (short side to N, centre crop N x N, as Resize(N) + CenterCrop(N)) and one of three
// training augmentations. Everything that can be checked before decoding is checked here, from folder listings and
// image headers only (PNG IHDR, JPEG frame header): the folders, the class sets of both splits, empty folders, files
// torchvision would read but ptslab cannot, the channel count of the first image against mean/std, and without a
// resize that every image has one size. checkImageFolderFits compares the folder with a model's head and stem.

import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError } from '../../core/errors.js';
import { decodeFile, sniffFormat } from './decode.js';
import { IMAGE_EXTENSIONS, ImageFolder, imageFolderClasses, listImageFolder, type ImageFolderListing } from './image-folder.js';
import type { DecodePool } from './pool.js';
import type { Transform, TransformStep } from './transforms.js';
import { DataError } from './types.js';

/** Training augmentation: none (the evaluation transform), CIFAR-style (pad 4, random crop, flip), ImageNet-style (RandomResizedCrop + flip). */
export const IMAGE_FOLDER_AUGMENTS = ['none', 'cifar', 'imagenet'] as const;
export type ImageFolderAugment = (typeof IMAGE_FOLDER_AUGMENTS)[number];

/** Zero padding of the 'cifar' augmentation (torchvision RandomCrop(size, padding=4)). */
export const CIFAR_AUGMENT_PADDING = 4;

export interface ImageFolderSplitsOptions {
  /** Per-channel mean on the 0-1 scale (Normalize); with std. Default: none, plain ToTensor. */
  mean?: readonly number[];
  /** Per-channel standard deviation on the 0-1 scale, no zero; with mean. */
  std?: readonly number[];
  /**
   * Input side N: evaluation resizes the short side to N and centre-crops N x N (torchvision Resize(N) +
   * CenterCrop(N); an image already N x N comes through unchanged). Default: no resizing, and every image of both
   * splits must have the same size.
   */
  imageSize?: number;
  /** Augmentation of `train` (default 'none'); `trainPlain` and `val` always get the evaluation transform. */
  augment?: ImageFolderAugment;
  /**
   * Channels the model sees: 1 (PIL convert('L')) or 3 (convert('RGB'), torchvision's default loader). Default: the
   * first training image's own count (greyscale PNG/JPEG 1, RGB/RGBA/palette/CMYK 3); every other image is
   * converted to it.
   */
  channels?: 1 | 3;
  /** Decode pool of the three datasets' getAsync (default: the shared pool; null: the calling thread). */
  pool?: DecodePool | null;
}

export interface ImageFolderSplits {
  readonly dir: string;
  /** DIR/train with the training augmentation. */
  readonly train: ImageFolder;
  /** DIR/train with the evaluation transform (what calibration subsets are drawn from). */
  readonly trainPlain: ImageFolder;
  /** DIR/val with the evaluation transform. */
  readonly val: ImageFolder;
  /** Sorted class folder names, index = label (the same in both splits). */
  readonly classes: readonly string[];
  /** Channels of every sample (the option, else the first image's). */
  readonly channels: 1 | 3;
  /** The first training image's own channel count, as its header says. */
  readonly sourceChannels: 1 | 3;
  /** Height and width of every sample: imageSize x imageSize, else the images' common size. */
  readonly height: number;
  readonly width: number;
  /** The input side for buildModel's inputSize: imageSize, else the larger of height and width. */
  readonly size: number;
  readonly normalization: { readonly mean: readonly number[]; readonly std: readonly number[] } | null;
  readonly augment: ImageFolderAugment;
  readonly transforms: { readonly train: Transform; readonly eval: Transform };
}

/** What an image file's header says, read without decoding it. */
export interface ImageHeader {
  format: 'jpeg' | 'png';
  height: number;
  width: number;
  /** 1 for greyscale (PNG colour types 0 and 4, 1-component JPEG), 3 for everything the decoder turns into RGB. */
  channels: 1 | 3;
}

const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/**
 * The size and channel count of a JPEG or PNG file from its header, reading only as much of the file as the header
 * needs. Anything but JPEG or PNG is a DataError naming the file (as decoding would be); a JPEG whose marker walk
 * goes astray is decoded instead (its channel count is then 3).
 */
export function readImageHeader(file: string): ImageHeader {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new DataError(`${file}: cannot read: ${(e as Error).message}`);
  }
  try {
    const total = fstatSync(fd).size;
    let buf = Buffer.alloc(Math.min(total, 1 << 16));
    readSync(fd, buf, 0, buf.length, 0);
    /** Make bytes [0, need) available; false when the file is shorter. */
    const have = (need: number): boolean => {
      if (need <= buf.length) return true;
      if (buf.length >= total) return false;
      const n = Math.min(total, Math.max(need, 2 * buf.length));
      const grown = Buffer.alloc(n);
      buf.copy(grown);
      readSync(fd, grown, buf.length, n - buf.length, buf.length);
      buf = grown;
      return n >= need;
    };
    const fmt = sniffFormat(buf);
    if (fmt === 'png') {
      if (!have(26) || buf.toString('latin1', 12, 16) !== 'IHDR') throw new DataError(`${file}: PNG without an IHDR header (truncated or corrupt)`);
      const colourType = buf[25];
      const channels = colourType === 0 || colourType === 4 ? 1 : colourType === 2 || colourType === 3 || colourType === 6 ? 3 : 0;
      if (channels === 0) throw new DataError(`${file}: PNG colour type ${colourType} is not one of 0, 2, 3, 4, 6 (corrupt)`);
      return { format: 'png', width: buf.readUInt32BE(16), height: buf.readUInt32BE(20), channels };
    }
    if (fmt === 'jpeg') {
      // The marker walk of decode.ts's size check (jpeg-js's), up to the frame header.
      let i = 2;
      while (have(i + 10)) {
        if (buf[i] !== 0xff) {
          if (buf[i - 1] === 0xff && buf[i] >= 0xc0) {
            i--; // jpeg-js: "the last 0xFF byte of the previous block was eaten by the encoder"
            continue;
          }
          break;
        }
        const m = buf[i + 1];
        if (m === 0xff) {
          i++;
          continue;
        }
        if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
          i += 2;
          continue;
        }
        if (m === 0xda || m === 0xd9) break;
        if (isSof(m)) {
          const components = buf[i + 9];
          return { format: 'jpeg', height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7), channels: components === 1 ? 1 : 3 };
        }
        i += 2 + buf.readUInt16BE(i + 2);
      }
      const img = decodeFile(file); // damaged or unusual: let the decoder decide (and name the problem)
      return { format: 'jpeg', height: img.height, width: img.width, channels: 3 };
    }
    const head = buf.subarray(0, 4).toString('hex');
    throw new DataError(`${file}: not a JPEG or PNG file (first bytes ${head || 'none: empty file'})`);
  } finally {
    closeSync(fd);
  }
}

function checkStats(what: 'mean' | 'std', v: unknown): readonly number[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new ArgumentError(`imageFolderSplits: ${what} must be a non-empty list of finite numbers (one per channel, 0-1 scale), got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/** The options' own checks (no file is touched): imageSize, augment, channels, and mean/std values. */
function checkOptions(o: ImageFolderSplitsOptions): void {
  if (o.imageSize !== undefined && !(Number.isInteger(o.imageSize) && o.imageSize > 0)) {
    throw new ArgumentError(`imageFolderSplits: imageSize must be a positive integer (the input side), got ${o.imageSize}`);
  }
  if (o.augment !== undefined && !(IMAGE_FOLDER_AUGMENTS as readonly string[]).includes(o.augment)) {
    throw new ArgumentError(`imageFolderSplits: augment must be one of ${IMAGE_FOLDER_AUGMENTS.join(', ')}, got '${o.augment}'`);
  }
  if (o.channels !== undefined && o.channels !== 1 && o.channels !== 3) {
    throw new ArgumentError(`imageFolderSplits: channels must be 1 or 3, got ${o.channels}`);
  }
  if ((o.mean === undefined) !== (o.std === undefined)) {
    throw new ArgumentError(`imageFolderSplits: give mean and std together (got only ${o.mean === undefined ? 'std' : 'mean'})`);
  }
  if (o.mean !== undefined) {
    const mean = checkStats('mean', o.mean);
    const std = checkStats('std', o.std);
    if (mean.length !== std.length) throw new ArgumentError(`imageFolderSplits: mean has ${mean.length} values but std has ${std.length}`);
    const zero = std.findIndex((s) => s === 0);
    if (zero >= 0) throw new ArgumentError(`imageFolderSplits: std[${zero}] is 0 (Normalize divides by it); std = [${std.join(', ')}]`);
  }
}

/**
 * The evaluation and training transforms of an image folder whose samples have `channels` channels and, without
 * imageSize, the common size height x width. Decoding always gives RGB, so channels 1 starts with PIL's
 * convert('L'); then Resize(N) + CenterCrop(N) when imageSize is given. Training: 'none' is the evaluation
 * transform; 'cifar' is it followed by RandomCrop(N, padding 4) and a flip (N = imageSize or the common side);
 * 'imagenet' is RandomResizedCrop(N) + flip on the image as loaded. Both need a square input: without imageSize the
 * images must be square.
 */
export function imageFolderTransforms(o: {
  channels: 1 | 3;
  height: number;
  width: number;
  imageSize?: number;
  augment?: ImageFolderAugment;
  normalize?: Transform['normalize'];
}): { train: Transform; eval: Transform } {
  const load: TransformStep[] = o.channels === 1 ? [{ op: 'toGrey' }] : [];
  const sized: TransformStep[] = o.imageSize ? [{ op: 'resize', size: o.imageSize }, { op: 'centerCrop', size: o.imageSize }] : [];
  const evalT: Transform = { steps: [...load, ...sized], normalize: o.normalize };
  const augment = o.augment ?? 'none';
  if (augment === 'none') return { train: evalT, eval: evalT };
  const side = o.imageSize ?? o.height;
  if (!o.imageSize && o.height !== o.width) {
    throw new ArgumentError(`imageFolderSplits: augment '${augment}' crops squares but the images are ${o.height}x${o.width} (height x width); pass imageSize`);
  }
  const steps: TransformStep[] =
    augment === 'cifar'
      ? [...load, ...sized, { op: 'randomCrop', size: side, padding: CIFAR_AUGMENT_PADDING }, { op: 'randomHorizontalFlip' }]
      : [...load, { op: 'randomResizedCrop', size: side }, { op: 'randomHorizontalFlip' }];
  return { train: { steps, normalize: o.normalize }, eval: evalT };
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/**
 * DIR/train and DIR/val as datasets (see ImageFolderSplitsOptions). Errors, all before any image is decoded: a
 * missing DIR, train/ or val/ (DataError); class folder sets that differ between the splits, naming the classes
 * each lacks; a split without class folders or a class folder without images; a file torchvision's ImageFolder
 * would read but ptslab cannot decode (.bmp, .webp, ...), which would silently change the dataset; mean/std whose
 * length is not the channel count (ArgumentError, both numbers); a zero in std; and without imageSize, the first
 * image whose size differs from the first training image's (both sizes).
 */
export function imageFolderSplits(dir: string, opts: ImageFolderSplitsOptions = {}): ImageFolderSplits {
  checkOptions(opts);
  if (!dir || !isDir(dir)) throw new DataError(`${dir}: image-folder dataset folder not found (expected ${dir}/train/<class>/<images> and ${dir}/val/<class>/<images>)`);
  const trainDir = join(dir, 'train');
  const valDir = join(dir, 'val');
  for (const [d, name] of [[trainDir, 'train'], [valDir, 'val']] as const) {
    if (!isDir(d)) throw new DataError(`${dir}: no ${name}/ folder (an image-folder dataset is ${dir}/train/<class>/<images> and ${dir}/val/<class>/<images>)`);
  }
  const trainClasses = imageFolderClasses(trainDir);
  const valClasses = imageFolderClasses(valDir);
  for (const [d, c] of [[trainDir, trainClasses], [valDir, valClasses]] as const) {
    if (c.length === 0) throw new DataError(`${d}: empty: no class folders (expected ${d}/<class>/<image files>)`);
  }
  const onlyTrain = trainClasses.filter((c) => !valClasses.includes(c));
  const onlyVal = valClasses.filter((c) => !trainClasses.includes(c));
  if (onlyTrain.length || onlyVal.length) {
    const parts = [onlyTrain.length ? `only in train/: ${onlyTrain.join(', ')}` : '', onlyVal.length ? `only in val/: ${onlyVal.join(', ')}` : ''].filter(Boolean);
    throw new DataError(`${dir}: train/ and val/ have different class folders (${parts.join('; ')}); a label is the position of its folder in the sorted list, so both splits need the same set`);
  }
  const listings: [string, ImageFolderListing][] = [[trainDir, listImageFolder(trainDir)], [valDir, listImageFolder(valDir)]];
  for (const [, l] of listings) {
    if (l.unsupported.length) {
      throw new DataError(`${l.unsupported[0]}: torchvision's ImageFolder would read this file but ptslab decodes only ${IMAGE_EXTENSIONS.join('/')}; convert it (PNG keeps the pixels) or move it out of the folder`);
    }
  }
  const [trainList, valList] = [listings[0][1], listings[1][1]];
  const first = trainList.files[0];
  const head = readImageHeader(first);
  const channels = opts.channels ?? head.channels;
  if (opts.mean && opts.mean.length !== channels) {
    const why = opts.channels ? `channels: ${channels}` : `the first image, ${first}, has ${channels}`;
    throw new ArgumentError(`imageFolderSplits: mean and std have ${opts.mean.length} values but the samples have ${channels} channel${channels === 1 ? '' : 's'} (${why}); give one value per channel`);
  }
  if (opts.imageSize === undefined) {
    for (const [, l] of listings) {
      for (const f of l.files) {
        const h = f === first ? head : readImageHeader(f);
        if (h.height !== head.height || h.width !== head.width) {
          throw new DataError(
            `${f}: ${h.height}x${h.width} (height x width), but ${first} is ${head.height}x${head.width}; without imageSize every image must have the same size (pass imageSize N to resize the short side to N and centre-crop N x N)`,
          );
        }
      }
    }
  }
  const normalize = opts.mean ? { mean: [...opts.mean], std: [...opts.std!] } : undefined;
  const augment = opts.augment ?? 'none';
  const height = opts.imageSize ?? head.height;
  const width = opts.imageSize ?? head.width;
  const transforms = imageFolderTransforms({ channels, height, width, imageSize: opts.imageSize, augment, normalize });
  const train = new ImageFolder(trainDir, { listing: trainList, transform: transforms.train, pool: opts.pool });
  return {
    dir,
    train,
    trainPlain: train.withTransform(transforms.eval),
    val: new ImageFolder(valDir, { listing: valList, transform: transforms.eval, pool: opts.pool }),
    classes: trainList.classes,
    channels,
    sourceChannels: head.channels,
    height,
    width,
    size: opts.imageSize ?? Math.max(height, width),
    normalization: normalize ?? null,
    augment,
    transforms,
  };
}

/**
 * Does the folder fit the model: its class count against the head's outputs, its channel count against the first
 * conv's input channels. An ArgumentError names both numbers of each mismatch ("DIR has 7 classes, the model's head
 * has 10"); either check is skipped when its number is not given.
 */
export function checkImageFolderFits(
  splits: Pick<ImageFolderSplits, 'dir' | 'classes' | 'channels'>,
  model: { numClasses?: number; inChannels?: number },
): void {
  const problems: string[] = [];
  const n = splits.classes.length;
  if (model.numClasses !== undefined && model.numClasses !== n) {
    problems.push(`${splits.dir} has ${n} class${n === 1 ? '' : 'es'}, the model's head has ${model.numClasses}`);
  }
  if (model.inChannels !== undefined && model.inChannels !== splits.channels) {
    const hint = model.inChannels === 1 || model.inChannels === 3 ? ` (pass channels: ${model.inChannels} to convert the images)` : '';
    problems.push(`${splits.dir} gives ${splits.channels}-channel images, the model's first conv takes ${model.inChannels}${hint}`);
  }
  if (problems.length) throw new ArgumentError(`image-folder does not fit the model: ${problems.join('; ')}`);
}
