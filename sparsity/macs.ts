// Analytic multiply-adds of a model's conv and linear layers for one input image: dense MACs (every weight, at every
// output pixel: O * C/groups * KH * KW * OH * OW; linear O * I) and pruned MACs (only the nonzero weights of the
// effective weight, parametrizations applied: nonzeros * OH * OW). The output sizes come from one forward of a zero
// image of batch 1 with forward hooks (any architecture, no shape rules to keep in sync). Other layers (batch norm,
// pooling, adds) are not counted, as torchvision's / fvcore's usual 1.814 G for ResNet-18 at 224 does not count them.

import { ArgumentError, noGrad, zeros } from '../core/index.js';
import { Conv2d, Linear, type Module } from '../nn/index.js';
import { parametrized } from '../nn/parametrize.js';

export interface LayerMacs {
  /** The module's name ("layer1.0.conv1"). */
  name: string;
  dense: number;
  pruned: number;
}

export interface ModelMacs {
  dense: number;
  pruned: number;
  layers: LayerMacs[];
}

/** MACs of model's conv and linear layers for one image of inputShape [C, H, W] (model mode kept, run in eval). */
export function modelMacs(model: Module, inputShape: readonly number[]): ModelMacs {
  if (inputShape.length !== 3 || !inputShape.every((n) => Number.isInteger(n) && n > 0)) {
    throw new ArgumentError(`modelMacs: inputShape must be [C, H, W] of positive integers, got [${inputShape.join(', ')}]`);
  }
  const layers: LayerMacs[] = [];
  const handles = model.namedModules().flatMap(([name, m]) => {
    if (!(m instanceof Conv2d || m instanceof Linear)) return [];
    return [m.registerForwardHook((_mod, _x, y) => {
      // per image: a conv's output pixels, or a linear layer's rows per image (1 for [N, I] input)
      const perImage = y.size / y.shape[0] / (m instanceof Conv2d ? m.outChannels : m.outFeatures);
      const w = noGrad(() => parametrized(m, 'weight')).toArray();
      let nonzero = 0;
      for (let i = 0; i < w.length; i++) if (w[i] !== 0) nonzero++;
      layers.push({ name, dense: w.length * perImage, pruned: nonzero * perImage });
    })];
  });
  const wasTraining = model.training;
  try {
    model.eval();
    noGrad(() => model.call(zeros([1, ...inputShape])));
  } finally {
    for (const h of handles) h.remove();
    if (wasTraining) model.train();
  }
  return { dense: layers.reduce((s, l) => s + l.dense, 0), pruned: layers.reduce((s, l) => s + l.pruned, 0), layers };
}
