// Capturing block outputs with forward hooks, for reconstruction losses on features. A "block" is each child of a
// top-level stage (ResNet's layerN.M, MobileNetV2's features.K); models without stages fall back to top-level
// children.

import type { Tensor } from '../core/index.js';
import type { Module } from '../nn/index.js';

export interface FeatureTap {
  readonly outputs: Map<string, Tensor>;
  clear(): void;
  remove(): void;
}

/** The module names whose outputs count as block outputs. */
export function blockNames(model: Module): string[] {
  const named = model.namedModules().filter(([n]) => n !== '');
  const depth2 = named.filter(([n]) => n.split('.').length === 2 && /^(layer\d+|features)\./.test(n));
  return (depth2.length > 0 ? depth2 : named.filter(([n]) => !n.includes('.'))).map(([n]) => n);
}

export function captureBlockOutputs(model: Module): FeatureTap {
  const outputs = new Map<string, Tensor>();
  const byName = new Map(model.namedModules());
  const handles = blockNames(model).map((name) =>
    byName.get(name)!.registerForwardHook((_m, _x, y) => {
      outputs.set(name, y);
    }),
  );
  return { outputs, clear: () => outputs.clear(), remove: () => handles.forEach((h) => h.remove()) };
}
