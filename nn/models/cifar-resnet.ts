// CIFAR-style ResNets (He et al. 2016, section 4.2): a 3x3 stem with 16 channels and no max-pool, three stages of
// BasicBlocks at 16, 32 and 64 channels (n = (depth - 2) / 6 blocks each), global average pooling and fc. Shortcuts
// that change shape are 1x1 conv + BN ("option B"), named like torchvision's layerN.M.downsample.0 / .1, so these
// share ResNet's key scheme. Initialisation as torchvision's ResNet.

import type { Generator } from '../../core/index.js';
import { ArgumentError } from '../../core/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, ReLU, Sequential } from '../layers.js';
import { Module } from '../module.js';
import type { Tensor } from '../tensor-utils.js';
import { BasicBlock, makeStage, torchvisionInit } from './resnet.js';

export interface CifarResNetOptions {
  numClasses?: number;
  inChannels?: number;
  generator?: Generator;
}

export class CifarResNet extends Module {
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly relu: ReLU;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  private readonly avgpool: AdaptiveAvgPool2d;
  readonly fc: Linear;

  constructor(readonly depth: number, o: CifarResNetOptions = {}) {
    super();
    if (!Number.isInteger((depth - 2) / 6) || depth < 8) throw new ArgumentError(`CifarResNet: depth must be 6n + 2 (20, 32, 44, 56, 110), got ${depth}`);
    const n = (depth - 2) / 6;
    const g = o.generator;
    this.conv1 = this.registerModule('conv1', new Conv2d(o.inChannels ?? 3, 16, 3, { padding: 1, bias: false, generator: g }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(16));
    this.relu = this.registerModule('relu', new ReLU());
    this.layer1 = this.registerModule('layer1', makeStage(BasicBlock, 16, 16, n, 1, g));
    this.layer2 = this.registerModule('layer2', makeStage(BasicBlock, 16, 32, n, 2, g));
    this.layer3 = this.registerModule('layer3', makeStage(BasicBlock, 32, 64, n, 2, g));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.fc = this.registerModule('fc', new Linear(64, o.numClasses ?? 10, { generator: g }));
    torchvisionInit(this, g);
  }

  features(x: Tensor): Tensor {
    x = this.relu.call(this.bn1.call(this.conv1.call(x)));
    x = this.layer3.call(this.layer2.call(this.layer1.call(x)));
    return this.avgpool.call(x).flatten(1);
  }

  protected override forward(x: Tensor): Tensor {
    return this.fc.call(this.features(x));
  }
}

export const resnet20 = (o: CifarResNetOptions = {}) => new CifarResNet(20, o);
export const resnet56 = (o: CifarResNetOptions = {}) => new CifarResNet(56, o);
