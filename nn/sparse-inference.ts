// Inference with sparse kernels: a pruned model's conv (groups 1) and linear layers run the backend's sparse kernels
// (Backend.sparseConv2d / sparseLinear, on CSR weights) instead of the dense ones where that is faster, so pruning
// buys time and not only zeros. enableSparseInference(model, mode) snapshots every such layer's effective weight
// (parametrizations applied) into CSR and overrides its forward on the instance; remove() restores the class's.
// - 'off': nothing changes;
// - 'on': every layer with at least one zero weight runs sparse;
// - 'auto' (the default of `ptslab eval`): on the first call at each input shape, a layer runs each engine once
//   untimed, then three times each, alternating, and keeps the faster (best time) for that shape. A fixed density threshold would not do: where the
//   sparse kernel wins depends on the layer's shape and the batch (measured on ResNet-18, see docs/sparse-inference.md).
// Inference only: the sparse path records no gradient, and running it where one would be recorded is an error.
// The snapshot is taken once: after changing the weights, remove() and enable again.

import { ArgumentError, AutogradError, backend, fromStorage, isGradEnabled, noGrad, type Tensor } from '../core/index.js';
import { convOut } from '../core/backend/reference.js';
import { densityOf, sparseWeightOf } from '../core/backend/sparse-weight.js';
import type { SparseWeight } from '../core/backend/types.js';
import { Conv2d, Linear } from './layers.js';
import type { Module } from './module.js';
import { parametrized } from './parametrize.js';

export type SparseKernelMode = 'auto' | 'on' | 'off';
export const SPARSE_KERNEL_MODES: readonly SparseKernelMode[] = ['auto', 'on', 'off'];

/** One conv or linear layer the sparse path considered, and what it chose per input shape. */
export interface SparseLayer {
  name: string;
  kind: 'conv' | 'linear';
  /** Nonzero weights / weights. */
  density: number;
  /** Per input shape ("1x64x56x56"): the engine that runs it and, under 'auto', the two timings (ms). */
  choices: Map<string, { engine: 'sparse' | 'dense'; denseMs?: number; sparseMs?: number }>;
}

export interface SparseInference {
  readonly mode: SparseKernelMode;
  readonly layers: readonly SparseLayer[];
  /** Layers that ran sparse at some input shape so far. */
  sparseLayers(): string[];
  /** Restore every layer's own forward. */
  remove(): void;
}

type Forward = (x: Tensor) => Tensor;
const ownForward = (m: Module): Forward => {
  const f = (Object.getPrototypeOf(m) as { forward: Forward }).forward;
  return (x) => f.call(m, x);
};

/** The sparse forward of one layer, or null when the layer does not qualify (float64, groups > 1, fully dense). */
function sparseForward(name: string, m: Module, mode: SparseKernelMode): { layer: SparseLayer; forward: Forward } | null {
  const isConv = m instanceof Conv2d;
  if (!isConv && !(m instanceof Linear)) return null;
  if (isConv && (m as Conv2d).groups !== 1) return null;
  const wt = noGrad(() => parametrized(m, 'weight').contiguous());
  if (!(wt.data instanceof Float32Array)) return null;
  const data = wt.data.subarray(wt.offset, wt.offset + wt.size) as Float32Array;
  const w: SparseWeight = sparseWeightOf(data, wt.shape, `${name}.weight`);
  if (w.vals.length === data.length) return null;
  const bias = (m as Conv2d | Linear).bias ? noGrad(() => parametrized(m, 'bias').contiguous()) : null;
  const b = backend();
  const run: Forward = isConv
    ? (x) => {
      const c = m as Conv2d;
      const p = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: 1 };
      const { OH, OW } = convOut(x.shape[2], x.shape[3], w.KH, w.KW, p);
      return fromStorage(b.sparseConv2d!(x, w, bias, p), [x.shape[0], w.O, OH, OW]);
    }
    : (x) => fromStorage(b.sparseLinear!(x, w, bias), [x.shape[0], w.O]);
  if (!(isConv ? b.sparseConv2d : b.sparseLinear)) {
    if (mode === 'on') throw new ArgumentError(`sparse kernels: backend '${b.name}' has none (${name}); use the cpu backend, or --sparse-kernels off`);
    return null;
  }
  const dense = ownForward(m);
  const layer: SparseLayer = { name, kind: isConv ? 'conv' : 'linear', density: densityOf(w), choices: new Map() };
  const forward: Forward = (x) => {
    if (x.dtype !== 'float32' || (!isConv && x.ndim !== 2)) return dense(x);
    if (isGradEnabled() && (x.requiresGrad || m.parameters().some((q) => q.requiresGrad))) {
      throw new AutogradError(`sparse kernels: layer '${name}' runs inference-only sparse kernels, which record no gradient; run it under noGrad, or remove the sparse inference (--sparse-kernels off) before training`);
    }
    const key = x.shape.join('x');
    let c = layer.choices.get(key);
    if (!c) {
      if (mode === 'on') c = { engine: 'sparse' };
      else {
        // each engine's first run pays one-time costs (pool start, wasm memory growth, tap offsets): not timed
        const y = dense(x);
        run(x);
        // the best of three alternating runs each: other processes on the machine make single timings noisy
        let denseMs = Infinity, sparseMs = Infinity;
        for (let i = 0; i < TIMED_RUNS; i++) { denseMs = Math.min(denseMs, time(() => dense(x))); sparseMs = Math.min(sparseMs, time(() => run(x))); }
        layer.choices.set(key, { engine: sparseMs < denseMs ? 'sparse' : 'dense', denseMs, sparseMs });
        return y;
      }
      layer.choices.set(key, c);
    }
    return c.engine === 'sparse' ? run(x) : dense(x);
  };
  return { layer, forward };
}

const TIMED_RUNS = 3;

function time(f: () => unknown): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

/** Make model's pruned conv and linear layers run sparse kernels (see the top of this file). */
export function enableSparseInference(model: Module, mode: SparseKernelMode = 'auto'): SparseInference {
  if (!SPARSE_KERNEL_MODES.includes(mode)) throw new ArgumentError(`sparse kernels: mode must be one of ${SPARSE_KERNEL_MODES.join(', ')}, got '${mode}'`);
  const layers: SparseLayer[] = [];
  const patched: Module[] = [];
  if (mode !== 'off') {
    for (const [name, m] of model.namedModules()) {
      const s = sparseForward(name || '(root)', m, mode);
      if (!s) continue;
      Object.defineProperty(m, 'forward', { value: s.forward, configurable: true, writable: true });
      patched.push(m);
      layers.push(s.layer);
    }
  }
  return {
    mode,
    layers,
    sparseLayers: () => layers.filter((l) => [...l.choices.values()].some((c) => c.engine === 'sparse')).map((l) => l.name),
    remove: () => { for (const m of patched.splice(0)) delete (m as unknown as { forward?: Forward }).forward; },
  };
}
