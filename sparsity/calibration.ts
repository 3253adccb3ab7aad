// Calibration data as every pruning method sees it, built exactly as `ptslab prune` builds it: a seeded subset of n
// training images (calibrationSubset: the same indices with and without augmentation), batched by a DataLoader
// that reshuffles per epoch with the seed. `loader()` is the per-iteration batch function the distillation loop
// takes (augmented, drop-last, one epoch after another); `batches()` materialises plain batches (BN
// re-calibration, POT).

import { ArgumentError, type Tensor } from '../core/index.js';
import { DataLoader, calibrationSubset, type Dataset } from '../nn/data/index.js';

export interface CalibrationOptions {
  /** Calibration images (default 1024, at most the source's length). */
  images?: number;
  seed?: number;
  /** Batch size of loader() and batches() (default 64). */
  batchSize?: number;
}

export interface Calibration {
  /** Number of calibration images. */
  readonly size: number;
  readonly seed: number;
  readonly batchSize: number;
  /** The subset with the training augmentation. */
  readonly augmented: Dataset;
  /** The same images without augmentation. */
  readonly plain: Dataset;
  /** A batch per iteration: augmented, shuffled per epoch with the seed, last partial batch dropped. */
  loader(): (step: number) => Promise<Tensor>;
  /** The plain images in order, as batches (the first `images` of the subset, default all). */
  batches(images?: number): Promise<Tensor[]>;
}

/** Calibration data from a training split with (`augmented`) and without (`plain`) augmentation. */
export function calibration(sources: { augmented: Dataset; plain: Dataset }, o: CalibrationOptions = {}): Calibration {
  if (sources.augmented.length !== sources.plain.length) {
    throw new ArgumentError(`calibration: the augmented and plain sources differ in length (${sources.augmented.length} vs ${sources.plain.length})`);
  }
  const size = Math.min(o.images ?? 1024, sources.augmented.length);
  const seed = o.seed ?? 0;
  const batchSize = o.batchSize ?? 64;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new ArgumentError(`calibration: batchSize must be a positive integer, got ${batchSize}`);
  const augmented = calibrationSubset(sources.augmented, size, seed);
  const plain = calibrationSubset(sources.plain, size, seed);
  return {
    size,
    seed,
    batchSize,
    augmented,
    plain,
    loader() {
      const loader = new DataLoader(augmented, { batchSize, shuffle: true, dropLast: true, seed });
      const perEpoch = loader.length;
      if (perEpoch === 0) throw new ArgumentError(`calibration: ${size} calibration images make no batch of ${batchSize}`);
      let it: AsyncGenerator<{ images: Tensor }> | null = null;
      let epoch = -1;
      return async (step: number): Promise<Tensor> => {
        const e = Math.floor(step / perEpoch);
        if (e !== epoch || !it) {
          epoch = e;
          it = loader.batches(e);
        }
        const r = await it.next();
        if (r.done) throw new ArgumentError(`calibration: the loader ended early at step ${step}`);
        return r.value.images;
      };
    },
    async batches(images?: number) {
      const ds = images === undefined || images >= size ? plain : calibrationSubset(sources.plain, images, seed);
      const out: Tensor[] = [];
      for await (const b of new DataLoader(ds, { batchSize, shuffle: false }).batches(0)) out.push(b.images);
      return out;
    },
  };
}
