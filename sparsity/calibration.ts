// Calibration data as every pruning method sees it, built exactly as `ptslab prune` builds it: a seeded subset of n
// training images (calibrationSubset: the same indices with and without augmentation), batched by a DataLoader
// that reshuffles per epoch with the seed. `keyedLoader()` is the per-iteration batch function the distillation loop
// takes (augmented, drop-last, one epoch after another), each batch with its samples' view keys where the
// augmentation has finitely many views (what lets the loop cache the teacher's logits, sparsity/teacher-cache.ts);
// `loader()` is the same batches as plain tensors; `batches()` materialises plain batches (BN re-calibration, POT).

import { ArgumentError, type Tensor } from '../core/index.js';
import { DataLoader, calibrationSubset, type Batch, type Dataset } from '../nn/data/index.js';

/** A calibration batch: the images, and per sample the key of its view when it has one (nn/data loader.ts Batch.keys). */
export interface CalibrationBatch {
  readonly images: Tensor;
  readonly keys?: readonly string[];
}

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
  /** The same batches as loader(), each with its samples' view keys when the augmentation has finite views. */
  keyedLoader(): (step: number) => Promise<CalibrationBatch>;
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
  const keyedLoader = (): ((step: number) => Promise<CalibrationBatch>) => {
    const loader = new DataLoader(augmented, { batchSize, shuffle: true, dropLast: true, seed });
    const perEpoch = loader.length;
    if (perEpoch === 0) throw new ArgumentError(`calibration: ${size} calibration images make no batch of ${batchSize}`);
    let it: AsyncGenerator<Batch> | null = null;
    let epoch = -1;
    return async (step: number): Promise<CalibrationBatch> => {
      const e = Math.floor(step / perEpoch);
      if (e !== epoch || !it) {
        epoch = e;
        it = loader.batches(e);
      }
      const r = await it.next();
      if (r.done) throw new ArgumentError(`calibration: the loader ended early at step ${step}`);
      return r.value.keys ? { images: r.value.images, keys: r.value.keys } : { images: r.value.images };
    };
  };
  return {
    size,
    seed,
    batchSize,
    augmented,
    plain,
    loader() {
      const keyed = keyedLoader();
      return async (step: number) => (await keyed(step)).images;
    },
    keyedLoader,
    async batches(images?: number) {
      const ds = images === undefined || images >= size ? plain : calibrationSubset(sources.plain, images, seed);
      const out: Tensor[] = [];
      for await (const b of new DataLoader(ds, { batchSize, shuffle: false }).batches(0)) out.push(b.images);
      return out;
    },
  };
}
