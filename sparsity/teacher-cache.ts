// The teacher-logit cache of the distillation loop. A frozen teacher in eval mode is a pure function of its input
// image, and the calibration augmentation of the small-image benchmarks has finitely many views (random crop with
// padding and a flip: Fashion-MNIST's pad 2 gives 5 x 5 offsets x 2 flips = 50 views of each image), so over a long
// schedule the same view comes back: its logits are looked up instead of recomputed. The loader names each sample's
// view by a key (nn/data/loader.ts Batch.keys); per batch the cache runs the teacher only on the samples it has not
// seen, gathered into a smaller batch, stores their logits and assembles the full logit tensor in batch order.
//
// When it applies (`cacheApplies`, per run): the teacher runs in eval mode and the objective reads only the
// teacher's logits (no module outputs tapped); per batch, every sample has a key. A random resized crop (ImageNet)
// has no key: the teacher runs on every batch as without the cache. A teacher's eval forward computes each sample on its own, so
// a sample's logits do not depend on the rest of its batch: on the reference and cpu backends they are bit-identical
// in a sub-batch and in the full batch (tests/sparsity-teacher-cache.test.ts), and a cached run's history equals an
// uncached one's. Memory is bounded (default 256 MiB, counted as the logit store's capacity plus an estimate of each
// entry's key and bookkeeping); once full, it stops inserting and keeps serving what it holds.

import { ArgumentError, fromStorage, hostData, noGrad, type Storage, type Tensor } from '../core/index.js';
import type { Module } from '../nn/index.js';

/** Default bound on the cache's memory: 256 MiB. */
export const DEFAULT_TEACHER_CACHE_BYTES = 256 * 2 ** 20;

/** Estimated bytes of one entry beyond its logits and key (2 bytes a character): its Map slot and row number. */
const ENTRY_OVERHEAD_BYTES = 64;
/** Rows of the first logit store (it doubles as it fills). */
const FIRST_ROWS = 1024;

export interface TeacherCacheOptions {
  /** Bound on the memory held, in bytes (default 256 MiB); at it, no more entries are stored. */
  maxBytes?: number;
}

export interface TeacherCacheStats {
  /** Samples whose logits were served from the cache. */
  hits: number;
  /** Samples the teacher ran on. */
  misses: number;
  /** Teacher forward calls (a batch with no miss makes none). */
  teacherCalls: number;
  entries: number;
  /** Memory counted against maxBytes: the logit store's capacity, and each key with its bookkeeping (an estimate). */
  bytes: number;
  maxBytes: number;
  /** Whether an insertion was refused for lack of room. */
  full: boolean;
}

/** Teacher logits by view key; see the file comment for when the loop uses it. */
export class TeacherCache {
  readonly maxBytes: number;
  /**
   * Row of each key in `store`. The logits live in one typed array, not one per entry: tens of thousands of small
   * arrays (each with its own ArrayBuffer) measurably slowed the garbage collector and with it the whole step.
   */
  private readonly rows = new Map<string, number>();
  private store: Storage | null = null;
  /** Floats per sample (the product of sampleShape). */
  private per = 0;
  /** The shape of one sample's logits, fixed by the first batch. */
  private sampleShape: readonly number[] | null = null;
  /** Bytes counted for the keys and their bookkeeping (the store's are its byteLength). */
  private keyBytes = 0;
  private full = false;
  private hits = 0;
  private misses = 0;
  private teacherCalls = 0;

  constructor(o: TeacherCacheOptions = {}) {
    const max = o.maxBytes ?? DEFAULT_TEACHER_CACHE_BYTES;
    if (!(Number.isFinite(max) && max >= 0)) throw new ArgumentError(`TeacherCache: maxBytes must be a number >= 0, got ${max}`);
    this.maxBytes = max;
  }

  stats(): TeacherCacheStats {
    return { hits: this.hits, misses: this.misses, teacherCalls: this.teacherCalls, entries: this.rows.size, bytes: this.keyBytes + (this.store?.byteLength ?? 0), maxBytes: this.maxBytes, full: this.full };
  }

  /**
   * The teacher's logits for `images` [B, ...], sample k being the view `keys[k]`: cached rows where present, the
   * teacher (without gradient, in whatever mode it is in: the caller keeps it in eval) on the others, gathered into
   * one smaller batch in batch order. Every sample missing: the teacher runs on `images` itself.
   */
  teacherLogits(teacher: Module, images: Tensor, keys: readonly string[]): Tensor {
    const B = images.shape[0];
    if (images.ndim < 1 || keys.length !== B) {
      throw new ArgumentError(`TeacherCache: ${keys.length} keys for a batch of shape [${images.shape}] (one key per sample)`);
    }
    const found: (number | undefined)[] = keys.map((k) => this.rows.get(k));
    const missing: number[] = [];
    found.forEach((r, k) => {
      if (r === undefined) missing.push(k);
    });
    this.hits += B - missing.length;
    this.misses += missing.length;
    let fresh: Storage | null = null;
    if (missing.length > 0) {
      const x = missing.length === B ? images : gatherRows(images, missing);
      const y = noGrad(() => teacher.call(x));
      this.teacherCalls++;
      if (y.ndim < 1 || y.shape[0] !== missing.length) throw new ArgumentError(`TeacherCache: the teacher's output has shape [${y.shape}] for ${missing.length} samples`);
      const shape = y.shape.slice(1);
      if (!this.sampleShape) {
        this.sampleShape = shape;
        this.per = shape.reduce((a, d) => a * d, 1);
      } else if (shape.length !== this.sampleShape.length || shape.some((d, i) => d !== this.sampleShape![i])) {
        throw new ArgumentError(`TeacherCache: the teacher's output per sample is [${shape}], earlier [${this.sampleShape}]`);
      }
      fresh = y.toArray();
      if (missing.length === B) {
        this.insert(keys, missing, fresh);
        return fromStorage(fresh, y.shape);
      }
    }
    const per = this.per;
    const store = this.store!;
    const out = new (store.constructor as new (n: number) => Storage)(B * per);
    missing.forEach((k, j) => out.set(fresh!.subarray(j * per, (j + 1) * per), k * per));
    found.forEach((r, k) => {
      if (r !== undefined) out.set(store.subarray(r * per, (r + 1) * per), k * per);
    });
    if (fresh) this.insert(keys, missing, fresh);
    return fromStorage(out, [B, ...this.sampleShape!]);
  }

  /**
   * Store the rows of `fresh` (row j is sample missing[j]) under their keys while there is room: the logit store's
   * capacity plus each key and its bookkeeping stay within maxBytes.
   */
  private insert(keys: readonly string[], missing: readonly number[], fresh: Storage): void {
    const per = this.per;
    const rowBytes = per * fresh.BYTES_PER_ELEMENT;
    for (let j = 0; j < missing.length; j++) {
      const key = keys[missing[j]];
      if (this.rows.has(key) || !finiteRow(fresh, j * per, per)) continue; // a NaN/Inf is never served again
      const keyCost = 2 * key.length + ENTRY_OVERHEAD_BYTES;
      const row = this.rows.size;
      const have = this.store ? this.store.length / per : 0;
      const room = Math.floor((this.maxBytes - this.keyBytes - keyCost) / rowBytes);
      // the capacity after this entry (the present one, or a grown one of at most `room` rows) must fit in `room`
      if (row + 1 <= have ? have > room : row + 1 > room) {
        this.full = true;
        return;
      }
      if (row + 1 > have) {
        // doubling, as far as the bound allows
        const grown = new (fresh.constructor as new (n: number) => Storage)(Math.min(Math.max(FIRST_ROWS, 2 * have), room) * per);
        if (this.store) grown.set(this.store);
        this.store = grown;
      }
      this.store!.set(fresh.subarray(j * per, (j + 1) * per), row * per);
      this.rows.set(key, row);
      this.keyBytes += keyCost;
    }
  }
}

function finiteRow(a: Storage, at: number, n: number): boolean {
  for (let i = at; i < at + n; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

/** Samples `rows` of x [B, ...] as one contiguous batch, in that order. */
function gatherRows(x: Tensor, rows: readonly number[]): Tensor {
  const per = x.size / x.shape[0];
  const src = x.isContiguous && x.isHost ? hostData(x.data).subarray(x.offset, x.offset + x.size) : x.toArray();
  const out = new (src.constructor as new (n: number) => Storage)(rows.length * per);
  rows.forEach((r, j) => out.set(src.subarray(r * per, (r + 1) * per), j * per));
  return fromStorage(out, [rows.length, ...x.shape.slice(1)]);
}

/**
 * Whether a run may take the teacher's logits from a cache: the teacher in eval mode and no module outputs tapped
 * (a feature term needs the teacher's forward). Per batch it also takes a key for every sample.
 */
export function cacheApplies(teacherMode: 'eval' | 'train' | undefined, tapped: readonly string[]): boolean {
  return (teacherMode ?? 'eval') === 'eval' && tapped.length === 0;
}

/** The cache a DistillInput asks for: false none, true / undefined a fresh default one, options a fresh one, or the instance given. */
export function teacherCacheOf(o: boolean | TeacherCache | TeacherCacheOptions | undefined): TeacherCache | null {
  if (o === false) return null;
  if (o instanceof TeacherCache) return o;
  return new TeacherCache(o === true || o === undefined ? {} : o);
}
