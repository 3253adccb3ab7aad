// Datasets held in memory as one uint8 array of HWC images (MNIST, Fashion-MNIST, CIFAR, any IDX folder), and
// Subset, a view of any dataset through a list of indices. raw(i) is a zero-copy view into the big array; get(i)
// runs the dataset's transform (default: ToTensor only) with the sample's seed.

import { ArgumentError } from '../../core/errors.js';
import { fromStorage } from '../../core/index.js';
import { applyTransformRaw, toTensorOnly, type Transform } from './transforms.js';
import { checkIndex, type Dataset, type RawImage, type Sample } from './types.js';

/** A raw image through a transform, as a Sample (float32 CHW tensor and label). */
export function toSample(img: RawImage, label: number, t: Transform, seed: number): Sample {
  const { data, shape } = applyTransformRaw(img, t, seed);
  return { image: fromStorage(data, shape), label };
}

export interface ImageShape {
  height: number;
  width: number;
  channels: 1 | 3;
}

export class ArrayDataset implements Dataset {
  readonly length: number;
  private readonly stride: number;

  constructor(
    /** Name used in error messages, e.g. "fashion-mnist train". */
    readonly name: string,
    /** length * height * width * channels bytes, each image HWC. */
    readonly pixels: Uint8Array,
    readonly labels: Uint8Array | Int32Array,
    readonly shape: ImageShape,
    readonly classes: readonly string[],
    readonly transform: Transform = toTensorOnly,
  ) {
    this.stride = shape.height * shape.width * shape.channels;
    this.length = labels.length;
    if (pixels.length !== this.length * this.stride) {
      throw new ArgumentError(`${name}: ${pixels.length} pixel bytes for ${this.length} images of ${shape.height}x${shape.width}x${shape.channels}`);
    }
  }

  /** The same data with another transform (storage shared). */
  withTransform(transform: Transform): ArrayDataset {
    return new ArrayDataset(this.name, this.pixels, this.labels, this.shape, this.classes, transform);
  }

  label(i: number): number {
    checkIndex(this.name, i, this.length);
    return this.labels[i];
  }

  raw(i: number): RawImage {
    checkIndex(this.name, i, this.length);
    const { height, width, channels } = this.shape;
    return { data: this.pixels.subarray(i * this.stride, (i + 1) * this.stride), height, width, channels };
  }

  get(i: number, seed = i): Sample {
    return toSample(this.raw(i), this.labels[i], this.transform, seed);
  }
}

/** Samples `indices` of `base`, in that order; asynchronous and fast paths pass through to `base`. */
export class Subset implements Dataset {
  readonly length: number;
  readonly getAsync?: (i: number, seed: number) => Promise<Sample>;
  readonly transform?: Transform;

  constructor(
    readonly base: Dataset & { transform?: Transform },
    readonly indices: Int32Array,
  ) {
    this.length = indices.length;
    for (const i of indices) checkIndex('Subset', i, base.length);
    this.transform = base.transform;
    const baseAsync = base.getAsync?.bind(base);
    if (baseAsync) {
      this.getAsync = (i, seed) => {
        checkIndex('Subset', i, this.length);
        return baseAsync(this.indices[i], seed);
      };
    }
  }
  get classes(): readonly string[] {
    return this.base.classes;
  }
  label(i: number): number {
    checkIndex('Subset', i, this.length);
    return this.base.label(this.indices[i]);
  }
  raw(i: number): RawImage {
    checkIndex('Subset', i, this.length);
    return this.base.raw(this.indices[i]);
  }
  get(i: number, seed = i): Sample {
    checkIndex('Subset', i, this.length);
    return this.base.get(this.indices[i], seed);
  }
}
