// Parameter initialisers, as torch.nn.init: each fills a tensor in place from the global generator (manualSeed) or
// a given Generator, with PyTorch's fan computation (fanIn = weight.shape[1] * receptive field, fanOut =
// weight.shape[0] * receptive field) and gains. The draws are ours (xoroshiro128+), so values differ from
// PyTorch's, while the distributions are the same.

import { ArgumentError, rand, randn, type Generator } from '../core/index.js';
import { Tensor, noGrad } from './tensor-utils.js';

let skipping = false;

/**
 * Build modules without random initialisation (every initialiser becomes a no-op inside fn; parameters keep their
 * zeros, BatchNorm its ones and zeros): for a model whose weights a checkpoint is about to overwrite, or to inspect an
 * architecture quickly. Like PyTorch's skip_init / meta-device construction.
 */
export function skipInit<T>(fn: () => T): T {
  const prev = skipping;
  skipping = true;
  try {
    return fn();
  } finally {
    skipping = prev;
  }
}

export type Nonlinearity = 'relu' | 'leaky_relu' | 'linear' | 'sigmoid' | 'tanh';

export function calculateFans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new ArgumentError(`init: fan in and fan out need at least 2 dims, got shape [${t.shape.join(', ')}]`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

export function calculateGain(nonlinearity: Nonlinearity, a = 0): number {
  switch (nonlinearity) {
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu':
      return Math.sqrt(2 / (1 + a * a));
    case 'tanh':
      return 5 / 3;
    default:
      return 1;
  }
}

export function uniform_(t: Tensor, low: number, high: number, generator?: Generator): Tensor {
  if (skipping) return t;
  noGrad(() => t.copy_(rand(t.shape, { dtype: t.dtype, low, high, generator })));
  return t;
}

export function normal_(t: Tensor, mean: number, std: number, generator?: Generator): Tensor {
  if (skipping) return t;
  noGrad(() => t.copy_(randn(t.shape, { dtype: t.dtype, mean, std, generator })));
  return t;
}

export function constant_(t: Tensor, value: number): Tensor {
  if (skipping) return t;
  noGrad(() => t.copy_(value));
  return t;
}

export interface KaimingOptions {
  /** Negative slope for leaky_relu (PyTorch's default init uses a = sqrt(5)). */
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: Nonlinearity;
  generator?: Generator;
}

function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const fans = calculateFans(t);
  const fan = (o.mode ?? 'fan_in') === 'fan_in' ? fans.fanIn : fans.fanOut;
  return calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0) / Math.sqrt(fan);
}

/** N(0, std^2) with std = gain / sqrt(fan). */
export function kaimingNormal_(t: Tensor, o: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, o), o.generator);
}

/** U(-bound, bound) with bound = sqrt(3) * gain / sqrt(fan). */
export function kaimingUniform_(t: Tensor, o: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, o);
  return uniform_(t, -bound, bound, o.generator);
}

/**
 * PyTorch's default for Conv and Linear (reset_parameters): weight kaiming_uniform(a = sqrt(5)), that is
 * U(-1/sqrt(fanIn), 1/sqrt(fanIn)), and bias U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
 */
export function defaultLayerInit_(weight: Tensor, bias: Tensor | null, generator?: Generator): void {
  kaimingUniform_(weight, { a: Math.sqrt(5), generator });
  if (bias) {
    const { fanIn } = calculateFans(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound, generator);
  }
}
