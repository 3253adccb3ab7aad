// Inference with sparse kernels and fused layers. A pruned model's conv (groups 1) and linear layers run the
// backend's sparse kernels (Backend.sparseConv2d / sparseLinear, on CSR weights) instead of the dense ones where that
// is faster, so pruning buys time and not only zeros; and with `fuse`, each eval-mode BatchNorm2d is folded into the
// conv before it (PyTorch's fuse_conv_bn_eval) and a ReLU / ReLU6 module after it runs inside the conv's kernel
// (Backend.conv2dAct, or the sparse kernel's epilogue), so neither costs a pass over fresh memory.
// enableSparseInference(model, mode, opts) snapshots every such layer's effective weight (parametrizations applied;
// BatchNorm folded in) and overrides its forward on the instance; remove() restores the class's.
// - mode 'off': no sparse kernels (fusion still applies when asked for);
// - 'on': every layer with at least one zero weight runs sparse;
// - 'auto' (the default of `ptslab eval`): on the first call at each input shape, a layer runs each engine once
//   untimed, then three times each, alternating, and keeps the faster (best time) for that shape. A fixed density threshold would not do: where the
//   sparse kernel wins depends on the layer's shape and the batch (measured on ResNet-18, see docs/sparse-inference.md).
// Fusion needs a probe batch: one forward with hooks finds the chains (a conv whose output goes to a BatchNorm2d in
// eval mode with running statistics, each called once per forward, then optionally a ReLU / ReLU6 module on the
// BatchNorm's output); after the overrides the model's output on the probe is checked against the unfused one (a
// chain whose conv output is also read elsewhere would differ), and a mismatch restores the model and throws. The
// folded BatchNorm and the activation module return their input unchanged only for the tensor their chain's conv
// produced; anything else they still compute. Inference only: these paths record no gradient, and running them where
// one would be recorded is an error. The snapshot is taken once: after changing the weights, remove() and enable again.

import { ArgumentError, AutogradError, backend, F, fromStorage, isGradEnabled, noGrad, PtslabError, type Tensor } from '../core/index.js';
import { convOut } from '../core/backend/reference.js';
import { densityOf, sparseWeightOf } from '../core/backend/sparse-weight.js';
import type { ConvAct, SparseWeight } from '../core/backend/types.js';
import { BatchNorm2d, Conv2d, Linear, ReLU, ReLU6 } from './layers.js';
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

/** A conv with the BatchNorm2d after it folded in and, where one follows, its activation fused. */
export interface FusedChain {
  conv: string;
  bn: string;
  /** The ReLU / ReLU6 module fused into the conv, or null. */
  act: string | null;
}

export interface InferenceOptions {
  /** Fold eval-mode BatchNorm2d layers into the convs before them and fuse the ReLU / ReLU6 after (needs probe). */
  fuse?: boolean;
  /** An input batch for fusion: traced once to find the chains, then the fused output on it checked. */
  probe?: Tensor;
  /**
   * Where the fused output on the probe differs from the unfused one: false (the default) restores the model and
   * throws; true enables the same mode without fusion instead (evaluate() does: fusion is only a speed-up there).
   */
  unfusedOnMismatch?: boolean;
}

export interface SparseInference {
  readonly mode: SparseKernelMode;
  readonly layers: readonly SparseLayer[];
  /** The fused chains (empty without opts.fuse). */
  readonly fused: readonly FusedChain[];
  /** Layers that ran sparse at some input shape so far. */
  sparseLayers(): string[];
  /** Restore every layer's own forward. */
  remove(): void;
}

type Forward = (x: Tensor) => Tensor;

/** Models with an enableSparseInference in effect (until its remove()). */
const active = new WeakSet<Module>();
/** Whether enableSparseInference is in effect on model (a second one is refused until remove()). */
export const inferenceActive = (model: Module): boolean => active.has(model);
const ownForward = (m: Module): Forward => {
  const f = (Object.getPrototypeOf(m) as { forward: Forward }).forward;
  return (x) => f.call(m, x);
};

/** A conv's weights with its BatchNorm folded in, and the activation its kernel applies. */
interface Folded {
  weight: Tensor;
  bias: Tensor;
  act: ConvAct | null;
}

const TIMED_RUNS = 3;

function time(f: () => unknown): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

function refuseGrad(name: string, m: Module, x: Tensor): void {
  if (isGradEnabled() && (x.requiresGrad || m.parameters().some((q) => q.requiresGrad))) {
    throw new AutogradError(`sparse kernels: layer '${name}' runs inference-only sparse kernels, which record no gradient; run it under noGrad, or remove the sparse inference (--sparse-kernels off) before training`);
  }
}

/**
 * The inference forward of one conv or linear layer, or null when nothing changes for it (not folded, and no sparse
 * kernel applies: float64, groups > 1, fully dense, mode 'off'). `done` records each output its activation was applied to.
 */
function layerForward(name: string, m: Module, mode: SparseKernelMode, fold: Folded | null, done: WeakMap<Tensor, ConvAct>):
  { layer: SparseLayer | null; forward: Forward } | null {
  const isConv = m instanceof Conv2d;
  if (!isConv && !(m instanceof Linear)) return null;
  const b = backend();
  const c = m as Conv2d;
  const p = isConv ? { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups } : null;
  const wt = fold ? fold.weight : noGrad(() => parametrized(m, 'weight').contiguous());
  const bias = fold ? fold.bias : (m as Conv2d | Linear).bias ? noGrad(() => parametrized(m, 'bias').contiguous()) : null;
  const act = fold?.act ?? null;
  const finish = (y: Tensor): Tensor => {
    if (act) done.set(y, act);
    return y;
  };
  // the dense engine: the layer's own forward, or with a fold the conv on the folded weights and the activation fused
  const dense: Forward = !fold ? ownForward(m) : (x) => {
    const shape = convShape(x, wt, p!);
    if (!act) return fromStorage(b.conv2d(x, wt, bias, p!), shape);
    if (b.conv2dAct) return finish(fromStorage(b.conv2dAct(x, wt, bias, p!, act), shape));
    return finish(noGrad(() => applyAct(fromStorage(b.conv2d(x, wt, bias, p!), shape), act)));
  };
  const sparse = sparseEngine(name, isConv, p, wt, bias, act, mode, b);
  if (!sparse && !fold) return null;
  const layer: SparseLayer | null = sparse ? { name, kind: isConv ? 'conv' : 'linear', density: sparse.density, choices: new Map() } : null;
  const forward: Forward = (x) => {
    if (x.dtype !== 'float32' || (!isConv && x.ndim !== 2)) return fold ? noGrad(() => finish(applyAct(F.conv2d(x, wt, bias, p!), act))) : ownForward(m)(x);
    refuseGrad(name, m, x);
    if (!sparse || !layer) return dense(x);
    const key = x.shape.join('x');
    let ch = layer.choices.get(key);
    if (!ch) {
      if (mode === 'on') ch = { engine: 'sparse' };
      else {
        // each engine's first run pays one-time costs (pool start, wasm memory growth, tap offsets): not timed
        const y = dense(x);
        sparse.run(x);
        // the best of three alternating runs each: other processes on the machine make single timings noisy
        let denseMs = Infinity, sparseMs = Infinity;
        for (let i = 0; i < TIMED_RUNS; i++) { denseMs = Math.min(denseMs, time(() => dense(x))); sparseMs = Math.min(sparseMs, time(() => sparse.run(x))); }
        layer.choices.set(key, { engine: sparseMs < denseMs ? 'sparse' : 'dense', denseMs, sparseMs });
        return y;
      }
      layer.choices.set(key, ch);
    }
    return ch.engine === 'sparse' ? finish(sparse.run(x)) : dense(x);
  };
  return { layer, forward };
}

const applyAct = (y: Tensor, act: ConvAct | null): Tensor => (act === 'relu' ? y.relu() : act === 'relu6' ? F.relu6(y) : y);

function convShape(x: Tensor, w: Tensor, p: { stride: readonly [number, number]; padding: readonly [number, number]; dilation: readonly [number, number]; groups: number }): number[] {
  const { OH, OW } = convOut(x.shape[2], x.shape[3], w.shape[2], w.shape[3], p);
  return [x.shape[0], w.shape[0], OH, OW];
}

/** The sparse engine of a layer, or null where none applies (mode 'off', float64, groups > 1, fully dense). */
function sparseEngine(name: string, isConv: boolean, p: { stride: readonly [number, number]; padding: readonly [number, number]; dilation: readonly [number, number]; groups: number } | null,
  wt: Tensor, bias: Tensor | null, act: ConvAct | null, mode: SparseKernelMode, b: ReturnType<typeof backend>): { run: Forward; density: number } | null {
  if (mode === 'off' || (isConv && p!.groups !== 1) || !(wt.data instanceof Float32Array)) return null;
  const data = wt.data.subarray(wt.offset, wt.offset + wt.size) as Float32Array;
  const w: SparseWeight = sparseWeightOf(data, wt.shape, `${name}.weight`);
  if (w.vals.length === data.length) return null;
  if (!(isConv ? b.sparseConv2d : b.sparseLinear)) {
    if (mode === 'on') throw new ArgumentError(`sparse kernels: backend '${b.name}' has none (${name}); use the cpu backend, or --sparse-kernels off`);
    return null;
  }
  const run: Forward = isConv
    ? (x) => {
      const { OH, OW } = convOut(x.shape[2], x.shape[3], w.KH, w.KW, p!);
      return fromStorage(b.sparseConv2d!(x, w, bias, p!, act ?? undefined), [x.shape[0], w.O, OH, OW]);
    }
    : (x) => fromStorage(b.sparseLinear!(x, w, bias), [x.shape[0], w.O]);
  return { run, density: densityOf(w) };
}

interface Chain { conv: Conv2d; bn: BatchNorm2d; actModule: ReLU | ReLU6 | null }

/** One forward of model on probe with hooks: the conv -> BatchNorm2d (-> ReLU / ReLU6) chains, and the output. */
function traceChains(model: Module, probe: Tensor): { chains: Chain[]; output: Tensor } {
  const calls = new Map<Module, number>();
  const producer = new Map<Tensor, Module>();
  const bnOf = new Map<Conv2d, BatchNorm2d>();
  const actOf = new Map<BatchNorm2d, ReLU | ReLU6>();
  const handles = [...model.modules()].filter((m) => m instanceof Conv2d || m instanceof BatchNorm2d || m instanceof ReLU || m instanceof ReLU6)
    .map((m) => m.registerForwardHook((mod, x, y) => {
      calls.set(mod, (calls.get(mod) ?? 0) + 1);
      const from = producer.get(x);
      if (mod instanceof BatchNorm2d && from instanceof Conv2d) bnOf.set(from, mod);
      if ((mod instanceof ReLU || mod instanceof ReLU6) && from instanceof BatchNorm2d && !actOf.has(from)) actOf.set(from, mod);
      producer.set(y, mod);
    }));
  let output: Tensor;
  try {
    output = noGrad(() => model.call(probe));
  } finally {
    for (const h of handles) h.remove();
  }
  const chains: Chain[] = [];
  for (const [conv, bn] of bnOf) {
    if (calls.get(conv) !== 1 || calls.get(bn) !== 1 || bn.training || !bn.runningMean || !bn.runningVar) continue;
    if (bn.numFeatures !== conv.outChannels) continue;
    chains.push({ conv, bn, actModule: actOf.get(bn) ?? null });
  }
  return { chains, output };
}

/** conv's effective weight and bias with bn folded in: w * s and (b - mean) * s + beta, s = gamma / sqrt(var + eps). */
function fold(chain: Chain): Folded {
  const { conv, bn } = chain;
  return noGrad(() => {
    const w = parametrized(conv, 'weight').contiguous();
    const O = w.shape[0];
    const get = (t: Tensor | null, fill: number): Float64Array => (t ? Float64Array.from(t.contiguous().toArray() as ArrayLike<number>) : new Float64Array(O).fill(fill));
    const mean = get(bn.runningMean, 0), variance = get(bn.runningVar, 1);
    const gamma = get(bn.weight ? parametrized(bn, 'weight') : null, 1), beta = get(bn.bias ? parametrized(bn, 'bias') : null, 0);
    const cb = get(conv.bias ? parametrized(conv, 'bias') : null, 0);
    const wd = w.toArray() as ArrayLike<number>;
    const per = wd.length / O;
    const wf = new Float32Array(wd.length), bf = new Float32Array(O);
    for (let o = 0; o < O; o++) {
      const s = gamma[o] / Math.sqrt(variance[o] + bn.eps);
      for (let i = o * per; i < (o + 1) * per; i++) wf[i] = wd[i] * s;
      bf[o] = (cb[o] - mean[o]) * s + beta[o];
    }
    const act: ConvAct | null = chain.actModule instanceof ReLU6 ? 'relu6' : chain.actModule ? 'relu' : null;
    return { weight: fromStorage(wf, w.shape), bias: fromStorage(bf, [O]), act };
  });
}

/** Largest |a - b| and largest |a| over two tensors of the same shape. */
function maxDiff(a: Tensor, b: Tensor): { diff: number; scale: number } {
  const x = a.toArray() as ArrayLike<number>, y = b.toArray() as ArrayLike<number>;
  let diff = 0, scale = 0;
  for (let i = 0; i < x.length; i++) { diff = Math.max(diff, Math.abs(x[i] - y[i])); scale = Math.max(scale, Math.abs(x[i])); }
  return { diff: Number.isNaN(diff) ? Infinity : diff, scale };
}

/** The fused output on the probe must be the unfused one up to float32 rounding: within this share of its largest magnitude. */
const FUSE_TOLERANCE = 1e-3;

/** Make model's pruned conv and linear layers run sparse kernels, and with opts.fuse fold and fuse (see the top). */
export function enableSparseInference(model: Module, mode: SparseKernelMode = 'auto', opts: InferenceOptions = {}): SparseInference {
  if (!SPARSE_KERNEL_MODES.includes(mode)) throw new ArgumentError(`sparse kernels: mode must be one of ${SPARSE_KERNEL_MODES.join(', ')}, got '${mode}'`);
  if (opts.fuse && !opts.probe) throw new ArgumentError('inference fusion: opts.probe (an input batch) is needed to find the conv -> BatchNorm -> activation chains');
  if (active.has(model)) throw new ArgumentError('sparse inference: already enabled on this model; call remove() on the earlier one first');
  const names = new Map<Module, string>([...model.namedModules()].map(([n, m]) => [m, n || '(root)']));
  const traced = opts.fuse ? traceChains(model, opts.probe!) : { chains: [], output: null };
  const folds = new Map<Module, { chain: Chain; folded: Folded }>(traced.chains.map((c) => [c.conv, { chain: c, folded: fold(c) }]));
  const layers: SparseLayer[] = [];
  const patched: Module[] = [];
  const patch = (m: Module, forward: Forward) => {
    Object.defineProperty(m, 'forward', { value: forward, configurable: true, writable: true });
    patched.push(m);
  };
  const remove = () => {
    for (const m of patched.splice(0)) delete (m as unknown as { forward?: Forward }).forward;
    active.delete(model);
  };
  // outputs of fused convs: which BatchNorm may pass each through, and which activation it already has
  const folded = new WeakMap<Tensor, BatchNorm2d>();
  const done = new WeakMap<Tensor, ConvAct>();
  for (const [m, name] of names) {
    const f = folds.get(m);
    const s = layerForward(name, m, mode, f?.folded ?? null, done);
    if (!s) continue;
    patch(m, f ? (x) => { const y = s.forward(x); folded.set(y, f.chain.bn); return y; } : s.forward);
    if (s.layer) layers.push(s.layer);
  }
  const actModules = new Set<Module>();
  for (const c of traced.chains) {
    const own = ownForward(c.bn);
    patch(c.bn, (x) => (folded.get(x) === c.bn ? x : own(x)));
    if (c.actModule && !actModules.has(c.actModule)) {
      actModules.add(c.actModule);
      const act: ConvAct = c.actModule instanceof ReLU6 ? 'relu6' : 'relu';
      const ownAct = ownForward(c.actModule);
      patch(c.actModule, (x) => (done.get(x) === act ? x : ownAct(x)));
    }
  }
  const fused = traced.chains.map((c) => ({ conv: names.get(c.conv)!, bn: names.get(c.bn)!, act: c.actModule ? names.get(c.actModule)! : null }));
  active.add(model);
  if (traced.output) {
    let check: { diff: number; scale: number };
    try {
      check = maxDiff(traced.output, noGrad(() => model.call(opts.probe!)));
    } catch (e) {
      remove();
      throw e;
    }
    if (!(check.diff === 0 || check.diff <= FUSE_TOLERANCE * check.scale)) {
      remove();
      if (opts.unfusedOnMismatch) return enableSparseInference(model, mode, { ...opts, fuse: false });
      throw new PtslabError(`inference fusion: the fused model's output on the probe differs from the unfused one by ${check.diff} (largest |output| ${check.scale}, allowed ${FUSE_TOLERANCE} of it): a conv's output is read by more than its BatchNorm (chains: ${fused.map((c) => c.conv).join(', ')}); run without fusion`);
    }
  }
  return {
    mode,
    layers,
    fused,
    sparseLayers: () => layers.filter((l) => [...l.choices.values()].some((c) => c.engine === 'sparse')).map((l) => l.name),
    remove,
  };
}
