// torchvision's MobileNetV2 with torchvision's module names: features.0 = Conv-BN-ReLU6 stem, features.1..17 =
// InvertedResidual blocks (conv.N: optional 1x1 expansion Conv-BN-ReLU6, 3x3 depthwise Conv-BN-ReLU6, 1x1 linear
// projection conv, BN), features.18 = 1x1 Conv-BN-ReLU6 to lastChannel, classifier = Dropout(0.2), Linear.
// Channel counts are rounded with torchvision's _make_divisible. Init as torchvision: convs kaiming normal fan_out,
// BN 1 / 0, Linear normal(0, 0.01) with zero bias.

import type { Generator } from '../../core/index.js';
import { kaimingNormal_, normal_, constant_ } from '../init.js';
import { BatchNorm2d, Conv2d, Dropout, Linear, ReLU6, Sequential } from '../layers.js';
import { Module } from '../module.js';
import type { Tensor } from '../tensor-utils.js';

export interface MobileNetV2Options {
  numClasses?: number;
  inChannels?: number;
  widthMult?: number;
  /** Stride of the stem conv (default 2); 1 suits 28x28 or 32x32 inputs. */
  stemStride?: number;
  dropout?: number;
  roundNearest?: number;
  generator?: Generator;
}

/** torchvision's _make_divisible: round to a multiple of divisor, never down by more than 10%. */
export function makeDivisible(v: number, divisor: number, minValue = divisor): number {
  let newV = Math.max(minValue, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (newV < 0.9 * v) newV += divisor;
  return newV;
}

/** Conv2d (no bias), BatchNorm2d, ReLU6, as torchvision's Conv2dNormActivation: keys N.0 and N.1. */
function convBnReLU(i: number, o: number, k: number, stride: number, groups: number, g?: Generator): Sequential {
  return new Sequential(
    new Conv2d(i, o, k, { stride, padding: (k - 1) >> 1, groups, bias: false, generator: g }),
    new BatchNorm2d(o),
    new ReLU6(),
  );
}

export class InvertedResidual extends Module {
  readonly useResConnect: boolean;
  readonly conv: Sequential;

  constructor(inp: number, oup: number, stride: number, expandRatio: number, g?: Generator) {
    super();
    const hidden = Math.round(inp * expandRatio);
    this.useResConnect = stride === 1 && inp === oup;
    const layers: Module[] = [];
    if (expandRatio !== 1) layers.push(convBnReLU(inp, hidden, 1, 1, 1, g));
    layers.push(
      convBnReLU(hidden, hidden, 3, stride, hidden, g),
      new Conv2d(hidden, oup, 1, { bias: false, generator: g }),
      new BatchNorm2d(oup),
    );
    this.conv = this.registerModule('conv', new Sequential(...layers));
  }

  protected override forward(x: Tensor): Tensor {
    const y = this.conv.call(x);
    return this.useResConnect ? x.add(y) : y;
  }
}

const SETTINGS: ReadonlyArray<readonly [number, number, number, number]> = [
  // t (expansion), c (channels), n (blocks), s (stride of the first)
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

export class MobileNetV2 extends Module {
  readonly features: Sequential;
  readonly classifier: Sequential;
  readonly lastChannel: number;

  constructor(o: MobileNetV2Options = {}) {
    super();
    const g = o.generator;
    const wm = o.widthMult ?? 1;
    const rn = o.roundNearest ?? 8;
    let inputChannel = makeDivisible(32 * wm, rn);
    this.lastChannel = makeDivisible(1280 * Math.max(1, wm), rn);
    const layers: Module[] = [convBnReLU(o.inChannels ?? 3, inputChannel, 3, o.stemStride ?? 2, 1, g)];
    for (const [t, c, n, s] of SETTINGS) {
      const out = makeDivisible(c * wm, rn);
      for (let i = 0; i < n; i++) {
        layers.push(new InvertedResidual(inputChannel, out, i === 0 ? s : 1, t, g));
        inputChannel = out;
      }
    }
    layers.push(convBnReLU(inputChannel, this.lastChannel, 1, 1, 1, g));
    this.features = this.registerModule('features', new Sequential(...layers));
    this.classifier = this.registerModule(
      'classifier',
      new Sequential(new Dropout(o.dropout ?? 0.2, { generator: g }), new Linear(this.lastChannel, o.numClasses ?? 1000, { generator: g })),
    );
    for (const m of this.modules()) {
      if (m instanceof Conv2d) {
        kaimingNormal_(m.weight, { mode: 'fan_out', generator: g });
        if (m.bias) constant_(m.bias, 0);
      } else if (m instanceof Linear) {
        normal_(m.weight, 0, 0.01, g);
        if (m.bias) constant_(m.bias, 0);
      }
    }
  }

  /** Pooled features [N, lastChannel] (torchvision: adaptive_avg_pool2d to 1x1, flatten). */
  featuresPooled(x: Tensor): Tensor {
    return this.features.call(x).mean([2, 3]);
  }

  protected override forward(x: Tensor): Tensor {
    return this.classifier.call(this.featuresPooled(x));
  }
}

export const mobilenetV2 = (o: MobileNetV2Options = {}) => new MobileNetV2(o);
