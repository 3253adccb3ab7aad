// ptslab/testing: property-test helpers for gradients, the one entry that imports fast-check. Arbitraries draw
// shapes, broadcastable shape pairs and float64 leaves that require grad; checkGradProperty runs gradcheck on each
// draw under fc.assert. A tensor's values come from a seeded normal (or uniform in a range) drawn by seed, not from
// fast-check's double arbitraries, whose bias towards 0, bounds and repeats would land on the kinks of relu, abs and
// max, where finite differences are meaningless; fast-check shrinks the shape and the seed.
//
//   import { gradcheck } from 'ptslab';
//   import { arbShape, arbTensor, checkGradProperty } from 'ptslab/testing';

import fc from 'fast-check';
import { ArgumentError } from './core/errors.js';
import { gradcheck, type GradcheckOptions } from './core/gradcheck.js';
import { Generator } from './core/random.js';
import { Tensor, tensor } from './core/tensor.js';

export { gradcheck, GradcheckError } from './core/gradcheck.js';
export type { GradcheckOptions, JacobianEntry } from './core/gradcheck.js';

export interface ShapeOptions {
  /** Fewest dims (default 0: a scalar is allowed). */
  minDims?: number;
  /** Most dims (default 3). */
  maxDims?: number;
  /** Smallest size of a dim (default 1). */
  minDim?: number;
  /** Largest size of a dim (default 4). */
  maxDim?: number;
}

function shapeBounds(where: string, o: ShapeOptions) {
  const { minDims = 0, maxDims = Math.max(3, minDims), minDim = 1, maxDim = Math.max(4, minDim) } = o;
  const ok = (v: number) => Number.isInteger(v) && v >= 0;
  if (![minDims, maxDims, minDim, maxDim].every(ok) || minDims > maxDims || minDim > maxDim) {
    throw new ArgumentError(
      `${where}: expected integers 0 <= minDims <= maxDims and 0 <= minDim <= maxDim, got minDims ${minDims}, maxDims ${maxDims}, minDim ${minDim}, maxDim ${maxDim}`,
    );
  }
  return { minDims, maxDims, minDim, maxDim };
}

/** Shapes with minDims..maxDims dims, each of size minDim..maxDim. */
export function arbShape(opts: ShapeOptions = {}): fc.Arbitrary<number[]> {
  const { minDims, maxDims, minDim, maxDim } = shapeBounds('arbShape', opts);
  return fc.array(fc.integer({ min: minDim, max: maxDim }), { minLength: minDims, maxLength: maxDims });
}

/**
 * Two shapes that broadcast together (NumPy rules): one is drawn by arbShape(opts), the other keeps or collapses
 * each of its dims to 1 and may drop leading dims; which of the two comes first is drawn too.
 */
export function arbBroadcastPair(opts: ShapeOptions = {}): fc.Arbitrary<[number[], number[]]> {
  return arbShape(opts).chain((a) =>
    fc
      .tuple(fc.array(fc.boolean(), { minLength: a.length, maxLength: a.length }), fc.integer({ min: 0, max: a.length }), fc.boolean())
      .map(([keep, drop, swap]): [number[], number[]] => {
        const b = a.map((d, i) => (keep[i] ? d : 1)).slice(drop);
        return swap ? [b, a] : [a, b];
      }),
  );
}

export interface TensorArbOptions {
  /** Draw values uniformly in [lo, hi] instead of from a standard normal (e.g. [0.2, 3] for log and sqrt). */
  range?: readonly [number, number];
}

/** Float64 leaves that require grad, of a fixed shape or of shapes drawn by an arbitrary (arbShape()). */
export function arbTensor(shape: readonly number[] | fc.Arbitrary<readonly number[]>, opts: TensorArbOptions = {}): fc.Arbitrary<Tensor> {
  const { range } = opts;
  if (range !== undefined && !(Number.isFinite(range[0]) && Number.isFinite(range[1]) && range[0] < range[1])) {
    throw new ArgumentError(`arbTensor: range must be two finite numbers lo < hi, got [${range.join(', ')}]`);
  }
  const shapes = Array.isArray(shape) ? fc.constant([...(shape as readonly number[])]) : (shape as fc.Arbitrary<readonly number[]>);
  return fc.tuple(shapes, fc.integer({ min: 0, max: 0x7fffffff })).map(([s, seed]) => seededLeaf(s, seed, range));
}

/**
 * Scramble a drawn seed (murmur3's finaliser) before seeding: nearby seeds, which fast-check draws often (it is
 * biased towards small integers), otherwise give near-identical first draws (Generator(0..3).normal() are all
 * within 3e-4 of 0, on the kink of relu and abs).
 */
function mixSeed(seed: number): number {
  let h = (seed + 0x9e3779b9) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function seededLeaf(shape: readonly number[], seed: number, range?: readonly [number, number]): Tensor {
  const g = new Generator(mixSeed(seed));
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, () => (range ? range[0] + (range[1] - range[0]) * g.uniform() : g.normal()));
  const t = tensor(v, shape, { dtype: 'float64', requiresGrad: true });
  // How fast-check prints the tensor in a counterexample: enough to rebuild it.
  const from = range ? `uniform [${range.join(', ')}]` : 'normal';
  const shown = v.slice(0, 6).map((x) => Number(x.toPrecision(4))).join(', ') + (n > 6 ? ', ...' : '');
  Object.defineProperty(t, fc.toStringMethod, { value: () => `float64 leaf [${shape.join(', ')}] (${from}, seed ${seed}): [${shown}]` });
  return t;
}

export interface GradPropertyOptions extends GradcheckOptions {
  /** Number of draws (default 100). */
  runs?: number;
  /** fast-check seed, for a reproducible run (default: fast-check picks one and prints it on failure). */
  seed?: number;
}

/**
 * fc.assert that gradcheck(fn, inputs) holds for inputs drawn by arbitraries: one arbitrary per input, or a single
 * arbitrary of the whole input list (e.g. a broadcast pair chained into two tensors). Throws fast-check's report,
 * with the counterexample and the GradcheckError message, on the first failing draw (after shrinking).
 */
export function checkGradProperty(
  fn: (...inputs: Tensor[]) => Tensor | readonly Tensor[],
  arbitraries: readonly fc.Arbitrary<Tensor>[] | fc.Arbitrary<readonly Tensor[]>,
  opts: GradPropertyOptions = {},
): void {
  const { runs = 100, seed, ...check } = opts;
  const inputs: fc.Arbitrary<readonly Tensor[]> = Array.isArray(arbitraries)
    ? fc.tuple(...(arbitraries as readonly fc.Arbitrary<Tensor>[]))
    : (arbitraries as fc.Arbitrary<readonly Tensor[]>);
  fc.assert(
    fc.property(inputs, (xs) => gradcheck(fn, xs, check)),
    // The GradcheckError's message goes into the report itself: test runners (uvu) do not print an Error's cause.
    { numRuns: runs, includeErrorInReport: true, ...(seed === undefined ? {} : { seed }) },
  );
}
