// Transforms as data: a Transform is a list of plain step objects (resize, centre crop, random resized crop, flip,
// random crop with padding, to RGB, to grey) plus an optional normalisation, interpreted by applySteps /
// applyTransformRaw. Being plain data, a transform crosses into the decode workers unchanged. Random steps draw from
// a core Generator in torchvision's order (RandomResizedCrop: area, log-ratio, then top, left; flip: one uniform < p)
// with Python's half-to-even round, so a sample's augmentation is fixed by its seed. applySteps can also report what
// each random step drew (crop offsets, flips), which names the view a sample is: with only discrete draws (random
// crop with padding, flips; `finiteViews`) an image has finitely many views, and a view's name is a cache key (the
// teacher-logit cache of sparsity/teacher-cache.ts). Recording never changes a draw. Only core/random is imported,
// so decode workers load no tensor or backend code. Presets: the ImageNet train/eval pipelines and small-image
// augmentation.

import { Generator } from '../../core/random.js';
import { centerCrop, crop, hflip, pad, pyRound, resize, resizeShortSide, toFloatChw, toRgb } from './image-ops.js';
import type { RawImage } from './types.js';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export type TransformStep =
  /** Resize: a number resizes the short side (torchvision Resize(int)); [h, w] resizes to exactly that. */
  | { op: 'resize'; size: number | readonly [number, number]; antialias?: boolean }
  | { op: 'centerCrop'; size: number | readonly [number, number] }
  | { op: 'randomResizedCrop'; size: number; scale?: readonly [number, number]; ratio?: readonly [number, number]; antialias?: boolean }
  | { op: 'randomHorizontalFlip'; p?: number }
  /** torchvision RandomCrop(size, padding): zero-pad every side by `padding`, then a uniform size x size window. */
  | { op: 'randomCrop'; size: number; padding?: number }
  | { op: 'toRgb' }
  /** PIL's convert('L'): one channel, L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (exact on grey pixels). */
  | { op: 'toGrey' };

export interface Transform {
  steps: readonly TransformStep[];
  /** Applied after ToTensor's /255: (x - mean[c]) / std[c]. */
  normalize?: { mean: readonly number[]; std: readonly number[] };
}

/** Only ToTensor: uint8 HWC -> float32 CHW in [0, 1]. */
export const toTensorOnly: Transform = { steps: [] };

/**
 * torchvision RandomResizedCrop.get_params: ten tries at an area fraction in `scale` and a log-uniform aspect ratio
 * in `ratio`; if none fits, the central crop clamped to the ratio range (the whole image when its ratio is inside).
 */
export function randomResizedCropParams(
  height: number,
  width: number,
  rng: Generator,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): { top: number; left: number; h: number; w: number } {
  const area = height * width;
  const logR = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * (scale[0] + (scale[1] - scale[0]) * rng.uniform());
    const aspect = Math.exp(logR[0] + (logR[1] - logR[0]) * rng.uniform());
    const w = pyRound(Math.sqrt(targetArea * aspect));
    const h = pyRound(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, h, w };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) h = pyRound(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = pyRound(h * Math.max(...ratio));
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), h, w };
}

/**
 * Whether the transform's random steps draw only from finite sets (random crop offsets, flips), so a sample has
 * finitely many views and the draws `applySteps` records name one. A random resized crop draws continuous
 * scales and ratios: its views are, in practice, never seen twice.
 */
export function finiteViews(t: Transform): boolean {
  return t.steps.every((s) => s.op !== 'randomResizedCrop');
}

/** One step; when `draws` is given, the step's random draws are appended to it (crop top and left, flip 0/1). */
function applyStep(img: RawImage, s: TransformStep, rng: Generator, draws?: number[]): RawImage {
  switch (s.op) {
    case 'resize':
      return typeof s.size === 'number'
        ? resizeShortSide(img, s.size, { antialias: s.antialias })
        : resize(img, s.size[0], s.size[1], { antialias: s.antialias });
    case 'centerCrop': {
      const [h, w] = typeof s.size === 'number' ? [s.size, s.size] : s.size;
      return centerCrop(img, h, w);
    }
    case 'randomResizedCrop': {
      const p = randomResizedCropParams(img.height, img.width, rng, s.scale, s.ratio);
      draws?.push(p.top, p.left, p.h, p.w);
      return resize(crop(img, p.top, p.left, p.h, p.w), s.size, s.size, { antialias: s.antialias });
    }
    case 'randomHorizontalFlip': {
      const flip = rng.uniform() < (s.p ?? 0.5);
      draws?.push(flip ? 1 : 0);
      return flip ? hflip(img) : img;
    }
    case 'randomCrop': {
      const padded = s.padding ? pad(img, s.padding) : img;
      const top = rng.int(padded.height - s.size + 1);
      const left = rng.int(padded.width - s.size + 1);
      draws?.push(top, left);
      return crop(padded, top, left, s.size, s.size);
    }
    case 'toRgb':
      return toRgb(img);
    case 'toGrey':
      return toGrey(img);
  }
}

/** RGB to one channel as PIL's convert('L') does (ITU-R 601-2 luma in 16-bit fixed point); grey images pass through. */
export function toGrey(img: RawImage): RawImage {
  if (img.channels === 1) return img;
  const n = img.height * img.width;
  const out = new Uint8Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) out[i] = (d[3 * i] * 19595 + d[3 * i + 1] * 38470 + d[3 * i + 2] * 7471 + 0x8000) >>> 16;
  return { data: out, height: img.height, width: img.width, channels: 1 };
}

/**
 * The transformed uint8 image (everything but ToTensor/Normalize). With `draws`, every random step's draws are
 * appended to it in step order (randomCrop: top, left; randomHorizontalFlip: 1 if flipped else 0;
 * randomResizedCrop: top, left, h, w): with the sample's index they name its view (see finiteViews).
 */
export function applySteps(img: RawImage, t: Transform, seed: number, draws?: number[]): RawImage {
  const rng = new Generator(seed);
  let cur = img;
  for (const s of t.steps) cur = applyStep(cur, s, rng, draws);
  return cur;
}

/** Transformed float32 CHW pixels with the output shape. */
export function applyTransformRaw(img: RawImage, t: Transform, seed: number): { data: Float32Array; shape: [number, number, number] } {
  const out = applySteps(img, t, seed);
  return { data: toFloatChw(out, t.normalize), shape: [out.channels, out.height, out.width] };
}

/** torchvision's ImageNet training pipeline: RandomResizedCrop(size), RandomHorizontalFlip(), Normalize. */
export function imagenetTrain(size = 224): Transform {
  return {
    steps: [{ op: 'randomResizedCrop', size }, { op: 'randomHorizontalFlip' }],
    normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD },
  };
}

/** torchvision's ImageNet evaluation pipeline: Resize(resizeSize), CenterCrop(size), Normalize. */
export function imagenetEval(size = 224, resizeSize = 256): Transform {
  return {
    steps: [{ op: 'resize', size: resizeSize }, { op: 'centerCrop', size }],
    normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD },
  };
}

/** Small-image augmentation (CIFAR, Fashion-MNIST): RandomCrop(size, padding) and optionally a horizontal flip. */
export function smallImageTrain(size: number, opts: { padding?: number; flip?: boolean; normalize?: Transform['normalize'] } = {}): Transform {
  const steps: TransformStep[] = [{ op: 'randomCrop', size, padding: opts.padding ?? 4 }];
  if (opts.flip ?? true) steps.push({ op: 'randomHorizontalFlip' });
  return { steps, normalize: opts.normalize };
}
