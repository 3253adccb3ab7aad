// Parametrizations, as torch.nn.utils.parametrize: a function stacked on one parameter of one module, so forward
// sees fn(parameter) while the raw Parameter stays at its place (module.weight, torch's
// `parametrizations.weight.original`): optimizers update it, stateDict() saves it under its usual key, and the
// gradient reaches it through the stack. Several can be stacked on one parameter and are applied in registration
// order; each handle removes exactly its own entry, in any order. withParametrizations scopes a set of them (the
// sparsity code's masks) so a transform the user registered survives: it is applied first and is still there after.
// The stacks live on the Module (registerParametrization / parametrized there); these functions are the public way
// to use them. A module's forward must read a parameter through parametrized() for its stack to apply: Conv2d,
// Linear and BatchNorm2d do for weight and bias; a custom module does it the same way (parametrized(this, 'scale')).

import type { Module } from './module.js';
import type { Tensor } from './tensor-utils.js';

/** Maps the current value of a parameter (raw, or the previous parametrization's output) to what forward uses. */
export type Parametrization = (value: Tensor) => Tensor;

export interface ParametrizationHandle {
  /** Remove exactly this entry (the others keep their order); calling it again does nothing. */
  remove(): void;
}

/** Stack fn on module's parameter `name` (applied after the ones already registered, like torch). */
export function registerParametrization(module: Module, name: string, fn: Parametrization): ParametrizationHandle {
  return module.registerParametrization(name, fn);
}

/** The parameter as forward sees it: the raw Parameter passed through its stack in registration order. */
export function parametrized(module: Module, name: string): Tensor {
  return module.parametrized(name);
}

/** Whether module's parameter `name` (any of its own parameters when name is omitted) has a parametrization. */
export function isParametrized(module: Module, name?: string): boolean {
  return module.isParametrized(name);
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';

/**
 * Register every [module, name, fn] for the duration of fn (sync or async: a returned promise is awaited), then
 * remove them, restoring what was there even on a throw. If one entry cannot be registered, the ones before it are
 * removed and the error is rethrown without calling fn. While an async fn is pending, everything that runs the
 * modules sees the parametrizations.
 */
export function withParametrizations<T>(entries: ReadonlyArray<readonly [Module, string, Parametrization]>, fn: () => T): T {
  const handles: ParametrizationHandle[] = [];
  const removeAll = () => {
    for (let i = handles.length - 1; i >= 0; i--) handles[i].remove();
  };
  let result: T;
  try {
    for (const [module, name, f] of entries) handles.push(registerParametrization(module, name, f));
    result = fn();
  } catch (e) {
    removeAll();
    throw e;
  }
  if (isThenable(result)) return Promise.resolve(result).finally(removeAll) as T;
  removeAll();
  return result;
}
