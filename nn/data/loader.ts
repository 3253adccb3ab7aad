// DataLoader: batches of a dataset as { images: [B, C, H, W] float32, labels: Int32Array, indices }, by async
// iteration with batches prefetched ahead of the consumer. Order is a fresh permutation per epoch from
// Generator(mixSeed(seed, epoch)); each sample's augmentation seed is mixSeed(seed, epoch, index), so a run is
// reproducible whatever the batch size, prefetch depth or number of decode workers. On the fast path (a dataset with
// raw pixels and a transform of finite views, see transforms.ts finiteViews) each sample also gets a key naming its
// view: the dataset index and its transform's draws, `index:draw,draw,...` (the teacher-logit cache reads them).
// Also calibrationSubset, a fixed random subset chosen by seed, for post-training calibration.

import { yieldToEventLoop } from '../../core/event-loop.js';
import { Generator, fromStorage, type Tensor } from '../../core/index.js';
import { ArgumentError } from '../../core/errors.js';
import { Subset } from './array-dataset.js';
import { applySteps, finiteViews, type Transform } from './transforms.js';
import { toFloatChw } from './image-ops.js';
import { DataError, type Dataset, type Sample } from './types.js';

/** A 32-bit hash of a few integers (murmur3 finaliser steps), for deriving independent seeds. */
export function mixSeed(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

export interface Batch {
  /** float32 [B, C, H, W]. */
  images: Tensor;
  labels: Int32Array;
  /** Dataset indices of the batch's samples. */
  indices: Int32Array;
  /**
   * Per sample, the view it is: `index:draws` (the dataset index, then its transform's random draws in step order,
   * see applySteps), equal for two samples exactly when their images are. Present when the dataset serves raw
   * pixels through a transform of finite views; absent otherwise (asynchronous decoding, random resized crops).
   */
  keys?: string[];
}

/** The key of dataset sample `index` seen through the transform draws `draws` (see Batch.keys). */
export const viewKey = (index: number, draws: readonly number[]): string => `${index}:${draws.join(',')}`;

export interface DataLoaderOptions {
  batchSize: number;
  /** New permutation every epoch (default false: dataset order). */
  shuffle?: boolean;
  seed?: number;
  /** Drop the last, incomplete batch (default false). */
  dropLast?: boolean;
  /** Batches assembled ahead of the consumer (default 2). */
  prefetch?: number;
}

type WithTransform = Dataset & { transform?: Transform };

export class DataLoader implements AsyncIterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  /** The epoch the next `for await` runs (incremented by each one). */
  epoch = 0;

  constructor(
    readonly dataset: Dataset,
    opts: DataLoaderOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new ArgumentError(`DataLoader: batchSize ${opts.batchSize} must be a positive integer`);
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? false;
    this.seed = opts.seed ?? 0;
    this.dropLast = opts.dropLast ?? false;
    this.prefetch = Math.max(1, opts.prefetch ?? 2);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Sample order of an epoch. */
  order(epoch: number): Int32Array {
    const n = this.dataset.length;
    if (this.shuffle) return new Generator(mixSeed(this.seed, epoch)).permutation(n);
    return Int32Array.from({ length: n }, (_, i) => i);
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.batches(this.epoch++);
  }

  /** The batches of one epoch, `prefetch` of them in flight ahead of the consumer. */
  async *batches(epoch: number): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    const nb = this.length;
    const inFlight: Promise<Batch>[] = [];
    let next = 0;
    const launch = () => {
      while (inFlight.length < this.prefetch && next < nb) {
        const idx = order.subarray(next * this.batchSize, Math.min(order.length, (next + 1) * this.batchSize));
        const p = this.makeBatch(Int32Array.from(idx), epoch);
        p.catch(() => {}); // a consumer that stops early must not leave an unhandled rejection behind
        inFlight.push(p);
        next++;
      }
    };
    launch();
    while (inFlight.length > 0) {
      const b = inFlight.shift()!;
      launch();
      yield await b;
    }
  }

  private async makeBatch(indices: Int32Array, epoch: number): Promise<Batch> {
    const ds = this.dataset as WithTransform;
    const seeds = Array.from(indices, (i) => mixSeed(this.seed, epoch, i));
    const labels = Int32Array.from(indices, (i) => ds.label(i));
    if (ds.getAsync) {
      const samples = await Promise.all(Array.from(indices, (i, k) => ds.getAsync!(i, seeds[k])));
      return { images: stack(samples, indices), labels, indices };
    }
    await yieldToEventLoop(); // let the consumer run between synchronous batches
    if (ds.transform) {
      // Fast path: raw uint8 -> transformed -> written straight into the batch buffer.
      let data: Float32Array | null = null;
      let shape: number[] = [];
      const keys: string[] | undefined = finiteViews(ds.transform) ? [] : undefined;
      const draws: number[] = [];
      indices.forEach((i, k) => {
        draws.length = 0;
        const img = applySteps(ds.raw(i), ds.transform!, seeds[k], keys ? draws : undefined);
        keys?.push(viewKey(i, draws));
        const s = [img.channels, img.height, img.width];
        if (!data) {
          shape = s;
          data = new Float32Array(indices.length * s[0] * s[1] * s[2]);
        } else if (s.some((d, j) => d !== shape[j])) throw mismatch(i, s, shape);
        toFloatChw(img, ds.transform!.normalize, data, k * s[0] * s[1] * s[2]);
      });
      return { images: fromStorage(data!, [indices.length, ...shape]), labels, indices, ...(keys ? { keys } : {}) };
    }
    return { images: stack(Array.from(indices, (i, k) => ds.get(i, seeds[k])), indices), labels, indices };
  }
}

const mismatch = (i: number, s: readonly number[], want: readonly number[]) =>
  new DataError(`DataLoader: sample ${i} has shape [${s.join(', ')}] but the batch's first sample has [${want.join(', ')}]; add a resize/crop transform`);

function stack(samples: Sample[], indices: Int32Array): Tensor {
  const shape = samples[0].image.shape;
  const per = samples[0].image.size;
  const out = new Float32Array(samples.length * per);
  samples.forEach((s, k) => {
    if (s.image.shape.some((d, j) => d !== shape[j]) || s.image.ndim !== shape.length) throw mismatch(indices[k], s.image.shape, shape);
    out.set(s.image.toArray() as Float32Array, k * per);
  });
  return fromStorage(out, [samples.length, ...shape]);
}

/**
 * A fixed random subset of n samples chosen by seed (without replacement, in ascending index order), e.g. the
 * calibration set of post-training sparsity. Same dataset, n and seed: same subset.
 */
export function calibrationSubset(dataset: Dataset, n: number, seed = 0): Subset {
  if (!Number.isInteger(n) || n < 1 || n > dataset.length) {
    throw new ArgumentError(`calibrationSubset: n = ${n} must be an integer in [1, ${dataset.length}] (the dataset's length)`);
  }
  const pick = new Generator(mixSeed(seed, 0x5ca1ab1e)).permutation(dataset.length).subarray(0, n).slice().sort();
  return new Subset(dataset, pick);
}
