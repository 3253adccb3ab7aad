// A seeded tiny conv net (conv-BN-ReLU twice, pooled, linear; 1 input channel, 5 classes) for the distillation
// tests: small enough for the reference backend, with BatchNorms and a strided conv like the real models.

import { Generator } from '../../core/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential, type Module } from '../../nn/index.js';

export function tinyNet(seed: number): Module {
  const g = new Generator(seed);
  return new Sequential(
    new Conv2d(1, 8, 3, { padding: 1, generator: g }), new BatchNorm2d(8), new ReLU(),
    new Conv2d(8, 16, 3, { padding: 1, stride: 2, generator: g }), new BatchNorm2d(16), new ReLU(),
    new AdaptiveAvgPool2d(1), new Flatten(), new Linear(16, 5, { generator: g }),
  );
}
