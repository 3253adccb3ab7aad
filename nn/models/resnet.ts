// torchvision's ResNet (v1.5: the stride of a Bottleneck sits on its 3x3 conv) with torchvision's module names,
// so a torchvision state_dict loads with no renaming: conv1, bn1, layer1..layer4 of BasicBlock or Bottleneck
// (conv1/bn1/conv2/bn2[/conv3/bn3], downsample.0 = 1x1 conv, downsample.1 = BN), fc. Initialisation as torchvision:
// convs kaiming normal (fan_out, relu), BN weight 1 and bias 0, fc PyTorch's default Linear init.
// stemStride and stemPool make small-input variants (e.g. 28x28) without changing any parameter.

import type { Generator } from '../../core/index.js';
import { kaimingNormal_ } from '../init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear, MaxPool2d, ReLU, Sequential } from '../layers.js';
import { Module } from '../module.js';
import type { Tensor } from '../tensor-utils.js';

export interface ResNetOptions {
  numClasses?: number;
  inChannels?: number;
  /** Stride of the 7x7 stem conv (default 2). */
  stemStride?: number;
  /** Keep the 3x3 stride-2 max-pool after the stem (default true); Identity when false, same keys either way. */
  stemPool?: boolean;
  generator?: Generator;
}

export interface Block extends Module {
  readonly outChannels: number;
}

const conv3x3 = (i: number, o: number, stride = 1, g?: Generator) => new Conv2d(i, o, 3, { stride, padding: 1, bias: false, generator: g });
const conv1x1 = (i: number, o: number, stride = 1, g?: Generator) => new Conv2d(i, o, 1, { stride, bias: false, generator: g });

/** 1x1 conv + BN projection shortcut (torchvision's downsample, "option B"). */
export function projection(inC: number, outC: number, stride: number, g?: Generator): Sequential {
  return new Sequential(conv1x1(inC, outC, stride, g), new BatchNorm2d(outC));
}

export class BasicBlock extends Module implements Block {
  static readonly expansion = 1;
  readonly outChannels: number;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly relu: ReLU;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;
  private readonly downsample: Module | null;

  constructor(inC: number, planes: number, stride = 1, downsample: Module | null = null, g?: Generator) {
    super();
    this.outChannels = planes;
    this.conv1 = this.registerModule('conv1', conv3x3(inC, planes, stride, g));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.relu = this.registerModule('relu', new ReLU());
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes, 1, g));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  protected override forward(x: Tensor): Tensor {
    let out = this.relu.call(this.bn1.call(this.conv1.call(x)));
    out = this.bn2.call(this.conv2.call(out));
    const identity = this.downsample ? this.downsample.call(x) : x;
    return this.relu.call(out.add(identity));
  }
}

export class Bottleneck extends Module implements Block {
  static readonly expansion = 4;
  readonly outChannels: number;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;
  private readonly conv3: Conv2d;
  private readonly bn3: BatchNorm2d;
  private readonly relu: ReLU;
  private readonly downsample: Module | null;

  constructor(inC: number, planes: number, stride = 1, downsample: Module | null = null, g?: Generator) {
    super();
    const width = planes;
    this.outChannels = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', conv1x1(inC, width, 1, g));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(width));
    this.conv2 = this.registerModule('conv2', conv3x3(width, width, stride, g));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(width));
    this.conv3 = this.registerModule('conv3', conv1x1(width, this.outChannels, 1, g));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(this.outChannels));
    this.relu = this.registerModule('relu', new ReLU());
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
  }

  protected override forward(x: Tensor): Tensor {
    let out = this.relu.call(this.bn1.call(this.conv1.call(x)));
    out = this.relu.call(this.bn2.call(this.conv2.call(out)));
    out = this.bn3.call(this.conv3.call(out));
    const identity = this.downsample ? this.downsample.call(x) : x;
    return this.relu.call(out.add(identity));
  }
}

type BlockClass = (typeof BasicBlock | typeof Bottleneck);

/** A stage of blocks; the first gets the stride and a projection shortcut when the shape changes. */
export function makeStage(block: BlockClass, inC: number, planes: number, blocks: number, stride: number, g?: Generator): Sequential {
  const outC = planes * block.expansion;
  const down = stride !== 1 || inC !== outC ? projection(inC, outC, stride, g) : null;
  const layers: Module[] = [new block(inC, planes, stride, down, g)];
  for (let i = 1; i < blocks; i++) layers.push(new block(outC, planes, 1, null, g));
  return new Sequential(...layers);
}

/** torchvision's weight init: convs kaiming normal fan_out relu, BN weight 1 and bias 0 (Linear left as built). */
export function torchvisionInit(model: Module, g?: Generator): void {
  for (const m of model.modules()) {
    if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu', generator: g });
    // BatchNorm2d is built with weight 1 and bias 0 already.
  }
}

export class ResNet extends Module {
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly relu: ReLU;
  private readonly maxpool: Module;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  private readonly avgpool: AdaptiveAvgPool2d;
  private readonly flatten = new Flatten(1);
  readonly fc: Linear;

  constructor(block: BlockClass, layers: readonly [number, number, number, number], o: ResNetOptions = {}) {
    super();
    const g = o.generator;
    this.conv1 = this.registerModule('conv1', new Conv2d(o.inChannels ?? 3, 64, 7, { stride: o.stemStride ?? 2, padding: 3, bias: false, generator: g }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
    this.relu = this.registerModule('relu', new ReLU());
    this.maxpool = this.registerModule('maxpool', (o.stemPool ?? true) ? new MaxPool2d(3, { stride: 2, padding: 1 }) : new Identity());
    let c = 64;
    const stage = (planes: number, n: number, stride: number) => {
      const s = makeStage(block, c, planes, n, stride, g);
      c = planes * block.expansion;
      return s;
    };
    this.layer1 = this.registerModule('layer1', stage(64, layers[0], 1));
    this.layer2 = this.registerModule('layer2', stage(128, layers[1], 2));
    this.layer3 = this.registerModule('layer3', stage(256, layers[2], 2));
    this.layer4 = this.registerModule('layer4', stage(512, layers[3], 2));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.fc = this.registerModule('fc', new Linear(c, o.numClasses ?? 1000, { generator: g }));
    torchvisionInit(this, g);
  }

  /** Everything before the classifier: [N, C, H, W] -> pooled features [N, 512 * expansion]. */
  features(x: Tensor): Tensor {
    x = this.maxpool.call(this.relu.call(this.bn1.call(this.conv1.call(x))));
    x = this.layer4.call(this.layer3.call(this.layer2.call(this.layer1.call(x))));
    return this.flatten.call(this.avgpool.call(x));
  }

  protected override forward(x: Tensor): Tensor {
    return this.fc.call(this.features(x));
  }
}

export const resnet18 = (o: ResNetOptions = {}) => new ResNet(BasicBlock, [2, 2, 2, 2], o);
export const resnet34 = (o: ResNetOptions = {}) => new ResNet(BasicBlock, [3, 4, 6, 3], o);
export const resnet50 = (o: ResNetOptions = {}) => new ResNet(Bottleneck, [3, 4, 6, 3], o);
