// A backend's kernels with every result read back to the host, for tests that compare any backend's output (host
// arrays on reference and cpu, device arrays on gpujs) with the reference's numbers.

import { KERNEL_NAMES } from '../../core/backend/compose.js';
import type { Backend, HostKernels } from '../../core/backend/types.js';
import { hostData, isHost, type TensorData } from '../../core/dtype.js';

const isArray = (r: unknown): r is TensorData =>
  ArrayBuffer.isView(r) || (typeof r === 'object' && r !== null && typeof (r as { read?: unknown }).read === 'function');

/** A kernel's result on the host: arrays read back (argmax as Int32Array), objects of arrays field by field. */
const toHost = (r: unknown, key = ''): unknown => {
  if (r instanceof Int32Array || r instanceof Uint8Array) return r;
  if (isArray(r)) return key === 'argmax' ? Int32Array.from(hostData(r)) : isHost(r) ? r : hostData(r);
  if (r === null || typeof r !== 'object') return r;
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, toHost(v, k)]));
};

/** b with its kernels' results on the host (max pooling's argmax as Int32Array), typed as host kernels. */
/** A backend whose kernels give host results. */
export type HostResults<B extends Backend> = HostKernels & Omit<B, keyof HostKernels>;

export function hostResults<B extends Backend>(b: B): HostResults<B> {
  // an object over b (its other members through the prototype) with every kernel wrapped; not a Proxy, since
  // registry entries are frozen
  const out = Object.create(b) as Record<string, unknown>;
  for (const n of KERNEL_NAMES) {
    const f = (b as unknown as Record<string, ((...a: unknown[]) => unknown) | undefined>)[n];
    if (f) Object.defineProperty(out, n, { value: (...args: unknown[]) => toHost(f.apply(b, args)), enumerable: true });
  }
  return out as unknown as HostResults<B>;
}
