// Finding the prunable layers of a model: every Conv2d and Linear weight by default (first conv, 1x1 downsample
// convs, depthwise convs and the classifier included), named by state_dict key, minus the layers kept dense.

import { ArgumentError } from '../core/index.js';
import { Conv2d, Linear, type Module } from '../nn/index.js';
import type { PrunableLayer } from './layers.js';

export interface ModuleLayer extends PrunableLayer {
  readonly module: Conv2d | Linear;
}

export interface PrunableOptions {
  /** Layers to keep dense, by weight name ("conv1.weight") or module name ("fc"). */
  keepDense?: readonly string[];
}

export function prunableLayers(model: Module, opts: PrunableOptions = {}): ModuleLayer[] {
  const keep = new Set(opts.keepDense ?? []);
  const all: ModuleLayer[] = [];
  for (const [name, m] of model.namedModules()) {
    if (m instanceof Conv2d || m instanceof Linear) all.push({ name: name ? `${name}.weight` : 'weight', weight: m.weight, module: m });
  }
  const known = new Set(all.flatMap((l) => [l.name, l.name.replace(/\.weight$/, '')]));
  const unknown = [...keep].filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new ArgumentError(`keepDense: no prunable layer named ${unknown.map((u) => `'${u}'`).join(', ')}; prunable layers are ${all.map((l) => l.name).join(', ')}`);
  }
  const layers = all.filter((l) => !keep.has(l.name) && !keep.has(l.name.replace(/\.weight$/, '')));
  if (layers.length === 0) throw new ArgumentError('prunableLayers: the model has no prunable layer left');
  return layers;
}
