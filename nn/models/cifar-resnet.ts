// CIFAR-style ResNets (He et al. 2016, section 4.2) of every depth 6n + 2: a 3x3 stem with 16 channels and no
// max-pool, three stages of n BasicBlocks at 16, 32 and 64 channels, global average pooling and fc. Two kinds of
// shortcut where a block changes shape (the first block of layer2 and layer3):
// - 'B' (the default): 1x1 conv + BN, named like torchvision's layerN.M.downsample.0 / .1, so these share ResNet's key
//   scheme; torchvision's BasicBlock and initialisation.
// - 'A': the parameter-free shortcut of the common PyTorch implementation (akamaster/pytorch_resnet_cifar10), which
//   most pruning papers start from: `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))`, that is a
//   stride-2 subsample and zero channels on both sides. Its blocks are named as there (conv1, bn1, conv2, bn2,
//   shortcut; no parameters in the shortcut, so no state_dict entries) and initialised as there (kaiming normal,
//   fan_in, on every conv and linear weight). Only the classifier keeps ptslab's name `fc` (theirs is `linear`).
// With 10 classes: resnet20 has 269,722 parameters with option A and 272,474 with option B.

import type { Generator } from '../../core/index.js';
import { ArgumentError } from '../../core/index.js';
import { kaimingNormal_ } from '../init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, ReLU, Sequential } from '../layers.js';
import { Module } from '../module.js';
import type { Tensor } from '../tensor-utils.js';
import { BasicBlock, makeStage, torchvisionInit } from './resnet.js';

export type CifarShortcut = 'A' | 'B';
export const CIFAR_SHORTCUTS: readonly CifarShortcut[] = ['A', 'B'];

export interface CifarResNetOptions {
  numClasses?: number;
  inChannels?: number;
  /** Shortcut where a block changes shape: 'B' 1x1 conv + BN (default), 'A' subsample + zero-padded channels. */
  shortcut?: CifarShortcut;
  generator?: Generator;
}

/**
 * Option A's shortcut (the common implementation's LambdaLayer): x[:, :, ::2, ::2] padded with planes // 4 zero
 * channels before and after. Built from slice (with step) and pad, so it is differentiable; no parameters.
 */
export class OptionAShortcut extends Module {
  readonly padChannels: number;

  constructor(readonly planes: number) {
    super();
    if (!Number.isInteger(planes) || planes < 4) throw new ArgumentError(`OptionAShortcut: planes must be an integer >= 4, got ${planes}`);
    this.padChannels = Math.floor(planes / 4);
  }

  protected override forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new ArgumentError(`OptionAShortcut: expected an [N, C, H, W] input, got ${x.ndim} dims`);
    const p = this.padChannels;
    return x.slice(2, 0, Infinity, 2).slice(3, 0, Infinity, 2).pad([0, 0, 0, 0, p, p]);
  }
}

/** The common implementation's BasicBlock with option A: conv1, bn1, conv2, bn2 and `shortcut` (identity or A). */
export class CifarBasicBlock extends Module {
  readonly outChannels: number;
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly conv2: Conv2d;
  private readonly bn2: BatchNorm2d;
  private readonly shortcut: Module;

  constructor(inC: number, planes: number, stride = 1, g?: Generator) {
    super();
    this.outChannels = planes;
    this.conv1 = this.registerModule('conv1', new Conv2d(inC, planes, 3, { stride, padding: 1, bias: false, generator: g }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { padding: 1, bias: false, generator: g }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    if (stride !== 1 || inC !== planes) {
      // Option A doubles the channels and halves the side; any other change has no parameter-free shortcut.
      if (stride !== 2 || inC + 2 * Math.floor(planes / 4) !== planes) {
        throw new ArgumentError(`CifarBasicBlock: option A needs stride 2 and planes = 2 * inChannels where the shape changes, got ${inC} -> ${planes}, stride ${stride}`);
      }
      this.shortcut = this.registerModule('shortcut', new OptionAShortcut(planes));
    } else {
      this.shortcut = this.registerModule('shortcut', new Identity());
    }
  }

  protected override forward(x: Tensor): Tensor {
    const out = this.bn2.call(this.conv2.call(this.bn1.call(this.conv1.call(x)).relu()));
    return out.add(this.shortcut.call(x)).relu();
  }
}

function optionAStage(inC: number, planes: number, blocks: number, stride: number, g?: Generator): Sequential {
  const layers: Module[] = [new CifarBasicBlock(inC, planes, stride, g)];
  for (let i = 1; i < blocks; i++) layers.push(new CifarBasicBlock(planes, planes, 1, g));
  return new Sequential(...layers);
}

/** Blocks per stage of a CIFAR ResNet of the given depth; an ArgumentError unless depth = 6n + 2 with n >= 1. */
export function cifarResNetBlocks(depth: number): number {
  if (typeof depth !== 'number' || !Number.isInteger(depth) || depth < 8 || (depth - 2) % 6 !== 0) {
    throw new ArgumentError(`CifarResNet: depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got ${depth}`);
  }
  return (depth - 2) / 6;
}

export class CifarResNet extends Module {
  readonly shortcut: CifarShortcut;
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
    const n = cifarResNetBlocks(depth);
    const shortcut = o.shortcut ?? 'B';
    if (!CIFAR_SHORTCUTS.includes(shortcut)) {
      throw new ArgumentError(`CifarResNet: shortcut must be 'A' or 'B', got ${JSON.stringify(shortcut)}`);
    }
    this.shortcut = shortcut;
    const g = o.generator;
    this.conv1 = this.registerModule('conv1', new Conv2d(o.inChannels ?? 3, 16, 3, { padding: 1, bias: false, generator: g }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(16));
    this.relu = this.registerModule('relu', new ReLU());
    if (shortcut === 'B') {
      this.layer1 = this.registerModule('layer1', makeStage(BasicBlock, 16, 16, n, 1, g));
      this.layer2 = this.registerModule('layer2', makeStage(BasicBlock, 16, 32, n, 2, g));
      this.layer3 = this.registerModule('layer3', makeStage(BasicBlock, 32, 64, n, 2, g));
    } else {
      this.layer1 = this.registerModule('layer1', optionAStage(16, 16, n, 1, g));
      this.layer2 = this.registerModule('layer2', optionAStage(16, 32, n, 2, g));
      this.layer3 = this.registerModule('layer3', optionAStage(32, 64, n, 2, g));
    }
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.fc = this.registerModule('fc', new Linear(64, o.numClasses ?? 10, { generator: g }));
    if (shortcut === 'B') torchvisionInit(this, g);
    else {
      // The common implementation's _weights_init: kaiming_normal_ (fan_in, gain sqrt 2) on conv and linear weights.
      for (const m of this.modules()) if (m instanceof Conv2d || m instanceof Linear) kaimingNormal_(m.weight, { generator: g });
    }
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

/** A CIFAR ResNet of any depth 6n + 2 (n blocks per stage), option B unless o.shortcut says 'A'. */
export const cifarResNet = (depth: number, o: CifarResNetOptions = {}) => new CifarResNet(depth, o);
export const resnet20 = (o: CifarResNetOptions = {}) => new CifarResNet(20, o);
export const resnet32 = (o: CifarResNetOptions = {}) => new CifarResNet(32, o);
export const resnet44 = (o: CifarResNetOptions = {}) => new CifarResNet(44, o);
export const resnet56 = (o: CifarResNetOptions = {}) => new CifarResNet(56, o);
export const resnet110 = (o: CifarResNetOptions = {}) => new CifarResNet(110, o);
