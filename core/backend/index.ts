// The backend registry: which kernel set ops call. Switching backends never moves a tensor: a backend handed another
// backend's device array reads it back (counted by the owner); Tensor.moveTo(b) moves one explicitly.
//
// Until a program calls setBackend (or runs inside withBackend), no backend is chosen: the first backend() call asks
// the default resolver, once, and keeps its answer. select.ts installs that resolver (PTSLAB_BACKEND, else `auto`)
// when it loads, and the package entry loads it, so `import 'ptslab'` stays cheap and picks a fast backend on first
// use. Without a resolver (code that imports only this module) the default is the reference backend.

import { ArgumentError } from '../errors.js';
import { referenceBackend } from './reference.js';
import type { Backend } from './types.js';

export type { Backend, View } from './types.js';

const registry = new Map<string, Backend>([[referenceBackend.name, referenceBackend]]);
/** The backend in use; null until chosen (setBackend) or resolved (first backend() call). */
let current: Backend | null = null;
let resolver: (() => Backend) | null = null;
let resolvedDefault: Backend | null = null;
let resolving = false;

export function registerBackend(b: Backend): void {
  registry.set(b.name, b);
}

export function listBackends(): string[] {
  return [...registry.keys()];
}

/** The registered backend of that name, or undefined. Never changes the current one and never resolves the default. */
export function findBackend(name: string): Backend | undefined {
  return registry.get(name);
}

/**
 * Install the function that picks the backend when none was chosen (select.ts installs PTSLAB_BACKEND, else auto).
 * It runs once, on the first backend() call that finds no backend chosen, not now; null removes it. Installing one
 * forgets a default already resolved (a backend already chosen stays).
 */
export function setDefaultResolver(fn: (() => Backend) | null): void {
  resolver = fn;
  resolvedDefault = null;
}

/** The default, resolved once and kept (an invalid PTSLAB_BACKEND throws, each time, and keeps nothing). */
function defaultBackend(): Backend {
  if (resolvedDefault) return resolvedDefault;
  // No resolver: the reference backend, not kept, so that a resolver installed later still applies. An op run by the
  // resolver itself (re-entering here) gets the reference backend too.
  if (!resolver || resolving) return referenceBackend;
  resolving = true;
  try {
    resolvedDefault = resolver();
    return resolvedDefault;
  } finally {
    resolving = false;
  }
}

/** The backend ops call now (resolving the default on first use; an invalid PTSLAB_BACKEND throws here). */
export function backend(): Backend {
  if (current) return current;
  const b = defaultBackend();
  if (b === resolvedDefault) current = b;
  return b;
}

/**
 * Stands for "the default, not chosen yet" where setBackend must return the previous backend before the default was
 * resolved: handing it back to setBackend restores the unchosen state, and its name and kernels are the default's
 * (resolving it, without making it current).
 */
const deferredDefault: Backend = Object.freeze({
  ...Object.fromEntries(
    Object.entries(referenceBackend)
      .filter(([k, v]) => typeof v === 'function' && k !== 'unavailableReason')
      .map(([k]) => [k, (...args: unknown[]) => (defaultBackend() as unknown as Record<string, (...a: unknown[]) => unknown>)[k](...args)]),
  ),
  get name() {
    return defaultBackend().name;
  },
  get kernels() {
    return defaultBackend().kernels;
  },
  unavailableReason: () => defaultBackend().unavailableReason?.() ?? null,
}) as unknown as Backend;

/** Select a backend by name or object; returns the previous one so callers can restore it with setBackend(prev). */
export function setBackend(b: string | Backend): Backend {
  const prev = current ?? deferredDefault;
  current = pick(b);
  return prev;
}

function pick(b: string | Backend): Backend | null {
  if (b === deferredDefault) return null;
  if (typeof b === 'string') {
    const found = registry.get(b);
    if (!found) throw new ArgumentError(`setBackend: unknown backend '${b}', expected one of: ${listBackends().join(', ')}`);
    return found;
  }
  registerBackend(b);
  return b;
}

/**
 * Run fn with another backend, restoring the previous one after. When fn returns a promise (an async fn), the
 * previous backend comes back when that promise settles, and the promise returned resolves or rejects as fn's did.
 * The choice is process-wide, not per async context: while an async scope is pending, code that runs in its awaits
 * (timers, other requests) sees its backend too, and scopes that overlap in time restore in settle order, so the last
 * to settle decides what stays. Await async scopes one after another, or pick one backend with setBackend.
 */
export function withBackend<T>(b: string | Backend, fn: () => T): T {
  const prev = current;
  current = pick(b);
  let pending = false;
  try {
    const out = fn();
    if (isThenable(out)) {
      pending = true;
      const restore = () => {
        current = prev;
      };
      return Promise.resolve(out).then(
        (v) => (restore(), v),
        (e: unknown) => {
          restore();
          throw e;
        },
      ) as T;
    }
    return out;
  } finally {
    if (!pending) current = prev;
  }
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (typeof x === 'object' || typeof x === 'function') && x !== null && typeof (x as { then?: unknown }).then === 'function';
}
