// The one dataset interface every reader implements, the raw-image type the transforms work on, and DataError.
// A dataset serves samples by index: `get(i)` gives a float32 CHW tensor (after the dataset's transform) and a label;
// `raw(i)` is the fast path for batching and caching: the uint8 pixels in HWC order, before any transform.

import type { Tensor } from '../../core/index.js';
import { ArgumentError, PtslabError } from '../../core/errors.js';

/** A data file or folder that is missing, truncated, corrupt or of the wrong format; the message names the file. */
export class DataError extends PtslabError {}

/** Decoded 8-bit pixels, row-major HWC (height, width, channels), the layout PIL and the image decoders use. */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3;
}

export interface Sample {
  /** float32 [C, H, W]. */
  image: Tensor;
  label: number;
}

export interface Dataset {
  readonly length: number;
  /** Class names, index = label. */
  readonly classes: readonly string[];
  /** Sample i after the dataset's transform. `seed` drives random transforms (default: i); same seed, same sample. */
  get(i: number, seed?: number): Sample;
  /** Label of sample i without decoding its image. */
  label(i: number): number;
  /** Raw uint8 HWC pixels of sample i, no transform applied. */
  raw(i: number): RawImage;
  /** Optional asynchronous `get` (off the main thread); the DataLoader prefers it when present. */
  getAsync?(i: number, seed: number): Promise<Sample>;
}

export function checkIndex(what: string, i: number, length: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= length) {
    throw new ArgumentError(`${what}: index ${i} out of range [0, ${length})`);
  }
}
