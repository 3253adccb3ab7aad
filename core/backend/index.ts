// The backend registry: which kernel set ops call. All backends read and write ordinary typed arrays, so switching
// backends never moves or converts a tensor.

import { ArgumentError } from '../errors.js';
import { referenceBackend } from './reference.js';
import type { Backend } from './types.js';

export type { Backend, View } from './types.js';

const registry = new Map<string, Backend>([[referenceBackend.name, referenceBackend]]);
let current: Backend = referenceBackend;

export function registerBackend(b: Backend): void {
  registry.set(b.name, b);
}

export function listBackends(): string[] {
  return [...registry.keys()];
}

/** The backend ops call now. */
export function backend(): Backend {
  return current;
}

/** Select a backend by name or object; returns the previous one so callers can restore it. */
export function setBackend(b: string | Backend): Backend {
  const prev = current;
  if (typeof b === 'string') {
    const found = registry.get(b);
    if (!found) throw new ArgumentError(`setBackend: unknown backend '${b}', available: ${listBackends().join(', ')}`);
    current = found;
  } else {
    registerBackend(b);
    current = b;
  }
  return prev;
}

/** Run fn with another backend, restoring the previous one after. */
export function withBackend<T>(b: string | Backend, fn: () => T): T {
  const prev = setBackend(b);
  try {
    return fn();
  } finally {
    current = prev;
  }
}
