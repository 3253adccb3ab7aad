// Reading a per-layer allocation (each prunable layer's sparsity by state_dict weight name) from a file, for method
// `given` and for fcpts / erk-kd's `allocation` option: either a result.json of `ptslab prune` / `ptslab run` (its
// `layers` list: e.g. the allocation FCPTS learned, to transplant it) or a plain JSON object { name: sparsity }.

import { ArgumentError } from '../core/index.js';
import { readJsonFile } from './json-file.js';

export function readAllocation(file: string): Record<string, number> {
  const raw = readJsonFile<unknown>(file, 'allocation');
  const obj = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : null;
  const entries: Array<[string, unknown]> = Array.isArray(obj?.layers)
    ? (obj.layers as Array<{ name?: unknown; sparsity?: unknown }>).map((l) => [String(l?.name), l?.sparsity])
    : obj
      ? Object.entries(obj)
      : [];
  if (!entries.length) throw new ArgumentError(`allocation: ${file} holds neither a result.json's "layers" list nor an object of layer sparsities`);
  for (const [name, s] of entries) {
    if (typeof s !== 'number' || !(s >= 0 && s <= 1)) throw new ArgumentError(`allocation: ${file}: the sparsity of ${name} must be a number in [0, 1], got ${JSON.stringify(s)}`);
  }
  return Object.fromEntries(entries) as Record<string, number>;
}
