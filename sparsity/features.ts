// Capturing module outputs with forward hooks, for reconstruction losses on features (the modules a term names,
// or every block). A "block" is each child of a
// top-level stage (ResNet's layerN.M, MobileNetV2's features.K); models without stages fall back to top-level
// children.

import { ArgumentError, type Tensor } from '../core/index.js';
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
  return captureModuleOutputs(model, blockNames(model));
}

/** Hook the named modules' outputs (an unknown name is an ArgumentError listing the model's module names). */
export function captureModuleOutputs(model: Module, names: readonly string[]): FeatureTap {
  const outputs = new Map<string, Tensor>();
  const byName = new Map(model.namedModules());
  const unknown = names.filter((n) => !byName.has(n));
  if (unknown.length) {
    throw new ArgumentError(`captureModuleOutputs: ${model.constructor.name} has no module ${unknown.map((u) => `'${u}'`).join(', ')} (modules: ${[...byName.keys()].filter(Boolean).slice(0, 12).join(', ')}, ...)`);
  }
  const handles = names.map((name) =>
    byName.get(name)!.registerForwardHook((_m, _x, y) => {
      outputs.set(name, y);
    }),
  );
  return { outputs, clear: () => outputs.clear(), remove: () => handles.forEach((h) => h.remove()) };
}
