// The layers: Conv2d, Linear, BatchNorm2d, activations, Dropout, pooling, Flatten, Identity and Sequential. Required
// sizes are positional and everything else is an options object with PyTorch's argument names in camelCase
// (new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false })). Parameters and buffers carry PyTorch's names and
// shapes, and default initialisation follows PyTorch's reset_parameters. Conv2d, Linear and BatchNorm2d read their
// weight and bias through parametrized() (nn/parametrize.ts), so a registered parametrization (a sparsity mask)
// applies in forward while the Parameter keeps its raw values. Every forward is protected: run a layer with call().

import { ArgumentError, F, full, zeros, type Generator } from '../core/index.js';
import { defaultLayerInit_ } from './init.js';
import { Module, Parameter } from './module.js';
import { parametrized } from './parametrize.js';
import { Tensor, noGrad } from './tensor-utils.js';

type Pair = number | readonly [number, number];
const pairOf = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  generator?: Generator;
}

export class Conv2d extends Module {
  /** The raw weight (what optimizers and stateDict see); forward uses parametrized(this, 'weight'). */
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, o: Conv2dOptions = {}) {
    super();
    this.groups = o.groups ?? 1;
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new ArgumentError(`Conv2d: groups ${this.groups} must divide inChannels ${inChannels} and outChannels ${outChannels}`);
    }
    this.kernelSize = pairOf(kernelSize);
    this.stride = pairOf(o.stride ?? 1);
    this.padding = pairOf(o.padding ?? 0);
    this.dilation = pairOf(o.dilation ?? 1);
    const [kh, kw] = this.kernelSize;
    this.weight = this.registerParameter('weight', new Parameter(zeros([outChannels, inChannels / this.groups, kh, kw])));
    this.bias = (o.bias ?? true) ? this.registerParameter('bias', new Parameter(zeros([outChannels]))) : null;
    defaultLayerInit_(this.weight, this.bias, o.generator);
  }

  protected override forward(x: Tensor): Tensor {
    const w = parametrized(this, 'weight');
    const b = this.bias ? parametrized(this, 'bias') : null;
    return F.conv2d(x, w, b, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernelSize=${this.kernelSize}, stride=${this.stride}, padding=${this.padding}` +
      `${this.groups > 1 ? `, groups=${this.groups}` : ''}${this.bias ? '' : ', bias=false'}`;
  }
}

export class Linear extends Module {
  /** The raw weight (what optimizers and stateDict see); forward uses parametrized(this, 'weight'). */
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, o: { bias?: boolean; generator?: Generator } = {}) {
    super();
    this.weight = this.registerParameter('weight', new Parameter(zeros([outFeatures, inFeatures])));
    this.bias = (o.bias ?? true) ? this.registerParameter('bias', new Parameter(zeros([outFeatures]))) : null;
    defaultLayerInit_(this.weight, this.bias, o.generator);
  }

  protected override forward(x: Tensor): Tensor {
    return F.linear(x, parametrized(this, 'weight'), this.bias ? parametrized(this, 'bias') : null);
  }

  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

export interface BatchNorm2dOptions {
  eps?: number;
  /** Weight of the new batch statistic in the running average; null = cumulative average (1 / batches seen). */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** Buffers runningMean, runningVar and numBatchesTracked are stored as running_mean, running_var, num_batches_tracked. */
export class BatchNorm2d extends Module {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  /** A 0-d float tensor (int64 in PyTorch). */
  readonly numBatchesTracked: Tensor | null;
  readonly eps: number;
  /** Weight of the new batch statistic; null = cumulative average (settable, as bn.momentum = None in PyTorch). */
  momentum: number | null;

  constructor(readonly numFeatures: number, o: BatchNorm2dOptions = {}) {
    super();
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    const affine = o.affine ?? true;
    this.weight = affine ? this.registerParameter('weight', new Parameter(full([numFeatures], 1))) : null;
    this.bias = affine ? this.registerParameter('bias', new Parameter(zeros([numFeatures]))) : null;
    const track = o.trackRunningStats ?? true;
    this.runningMean = track ? this.registerBuffer('running_mean', zeros([numFeatures])) : null;
    this.runningVar = track ? this.registerBuffer('running_var', full([numFeatures], 1)) : null;
    this.numBatchesTracked = track ? this.registerBuffer('num_batches_tracked', zeros([])) : null;
  }

  protected override forward(x: Tensor): Tensor {
    let factor = this.momentum ?? 0;
    if (this.training && this.numBatchesTracked) {
      const n = this.numBatchesTracked;
      // counted where the buffer lives (no readback on a device); only the cumulative average (momentum null) reads it
      noGrad(() => n.copy_(n.add(1)));
      factor = this.momentum ?? 1 / n.item();
    }
    // Batch statistics in training, or always when no running statistics are tracked.
    const useBatch = this.training || this.runningMean === null;
    const w = this.weight ? parametrized(this, 'weight') : null;
    const b = this.bias ? parametrized(this, 'bias') : null;
    return F.batchNorm2d(x, this.runningMean, this.runningVar, w, b, {
      training: useBatch,
      momentum: factor,
      eps: this.eps,
    });
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}`;
  }
}

export class ReLU extends Module {
  protected override forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

export class ReLU6 extends Module {
  protected override forward(x: Tensor): Tensor {
    return F.relu6(x);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5, readonly o: { generator?: Generator } = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new ArgumentError(`Dropout: p must be in [0, 1], got ${p}`);
  }

  protected override forward(x: Tensor): Tensor {
    return F.dropout(x, { p: this.p, training: this.training, generator: this.o.generator });
  }

  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

export interface Pool2dOptions {
  /** Defaults to kernelSize. */
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly o: Pool2dOptions & { dilation?: Pair } = {}) {
    super();
  }

  protected override forward(x: Tensor): Tensor {
    return F.maxPool2d(x, { kernelSize: this.kernelSize, ...this.o });
  }

  override extraRepr(): string {
    return `kernelSize=${this.kernelSize}, stride=${this.o.stride ?? this.kernelSize}, padding=${this.o.padding ?? 0}`;
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly o: Pool2dOptions & { countIncludePad?: boolean } = {}) {
    super();
  }

  protected override forward(x: Tensor): Tensor {
    return F.avgPool2d(x, { kernelSize: this.kernelSize, ...this.o });
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair) {
    super();
  }

  protected override forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }

  override extraRepr(): string {
    return `outputSize=${this.outputSize}`;
  }
}

export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }

  protected override forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}

export class Identity extends Module {
  protected override forward(x: Tensor): Tensor {
    return x;
  }
}

/** Children named '0', '1', ...; forward runs them in order (through call, so their hooks fire). */
export class Sequential extends Module {
  private readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }

  get length(): number {
    return this.layers.length;
  }

  at(i: number): Module {
    const m = this.layers.at(i);
    if (!m) throw new ArgumentError(`Sequential.at: index ${i} out of range for ${this.layers.length} layers`);
    return m;
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.layers[Symbol.iterator]();
  }

  protected override forward(x: Tensor): Tensor {
    for (const m of this.layers) x = m.call(x);
    return x;
  }
}
