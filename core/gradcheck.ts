// gradcheck: the public gradient check, as torch.autograd.gradcheck. It compares the gradients backward() gives every
// input that requires grad against central finite differences, in float64 on the reference backend.
//
// Outputs are contracted with a fixed random tensor R (seeded normal, one per output): the checked quantity is
// L = sum_j sum(out_j * R_j), so every element of every output takes part with a random weight (a wrong gradient
// escapes only if its error is orthogonal to R, probability zero), at the cost of one backward pass plus two
// forward passes per input element. This is torch's fast_mode in output space and its slow mode in input space:
// each input element is compared on its own, |analytic - numeric| <= atol + rtol * |numeric|. When a check fails
// (and raiseException is on), the failing element's Jacobian column is computed in full (one backward pass per
// output element, for outputs of up to 4096 elements) to name the first output element whose derivative is wrong.
//
// Choices, with torch's where they differ: inputs that require grad must be float64 leaves (torch only warns on
// float32; here differences of 1e-6 in float32 are noise, so it is an error). An input that requires grad but gets
// no gradient counts as analytic zero, as in torch, and the failure message says it got none. Misuse that makes the
// check meaningless (no input requiring grad, a float32 or non-leaf input, an output no input reaches, a call inside
// noGrad) throws ArgumentError or AutogradError whatever raiseException says; errors thrown by fn or by backward
// itself (the engine's AutogradError for a wrongly shaped gradient names the op) propagate unchanged, as in torch.
// Only the verdict "these gradients differ" is a GradcheckError, or false with raiseException: false.
// Inputs are restored: every perturbed value is put back (also when fn throws), and the .grad of every input and of
// every leaf the graph reaches (closed-over parameters) is what it was before the call.

import { isGradEnabled, noGrad } from './autograd.js';
import { withBackend } from './backend/index.js';
import { ArgumentError, AutogradError, PtslabError, fmtShape } from './errors.js';
import { Generator } from './random.js';
import { sameShape } from './shape.js';
import { Tensor, fromStorage, hostElements, randn } from './tensor.js';

export interface GradcheckOptions {
  /** Step of the central difference (f(x + eps) - f(x - eps)) / (2 eps). Default 1e-6. */
  eps?: number;
  /** Absolute tolerance. Default 1e-5, as torch. */
  atol?: number;
  /** Relative tolerance, times |numeric|. Default 1e-3, as torch. */
  rtol?: number;
  /** Throw a GradcheckError on a mismatch (default); false returns false instead. Misuse still throws. */
  raiseException?: boolean;
}

/** One wrong entry of the Jacobian: d output[output][outputIndex] / d input[input][index]. */
export interface JacobianEntry {
  output: number;
  outputIndex: number[];
  analytic: number;
  numeric: number;
}

/** Analytic and numeric gradients differ. Names the input, its shape, the element and both values. */
export class GradcheckError extends PtslabError {
  constructor(
    message: string,
    /** Index of the first input whose gradient differs. */
    readonly input: number,
    readonly shape: readonly number[],
    /** Multi-index of the first differing element of that input. */
    readonly index: number[],
    /** d L / d input[index] from backward(), L = sum_j sum(out_j * R_j). */
    readonly analytic: number,
    /** The same derivative by central differences. */
    readonly numeric: number,
    /** atol + rtol * |numeric|, which |analytic - numeric| exceeded. */
    readonly tolerance: number,
    /** The first wrong entry of that element's Jacobian column, when it was computed and one exceeds the tolerance. */
    readonly jacobian: JacobianEntry | null,
  ) {
    super(message);
  }
}

type Fn = (...inputs: Tensor[]) => Tensor | readonly Tensor[];

const R_SEED = 12345;
const LOCALIZE_MAX_OUTPUT = 4096;

/**
 * Check the gradients of fn at inputs: for every input that requires grad, backward() against central differences.
 * fn returns one tensor or several; all their elements are checked through a fixed random contraction (see the file
 * comment). Returns true; on a mismatch throws GradcheckError, or returns false with raiseException: false.
 */
export function gradcheck(fn: Fn, inputs: readonly Tensor[], opts: GradcheckOptions = {}): boolean {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-3;
  const raise = opts.raiseException ?? true;
  if (!(eps > 0 && Number.isFinite(eps))) throw new ArgumentError(`gradcheck: eps must be a positive finite number, got ${eps}`);
  if (!(atol >= 0) || !(rtol >= 0)) throw new ArgumentError(`gradcheck: atol and rtol must be >= 0, got atol ${atol}, rtol ${rtol}`);
  if (!isGradEnabled()) throw new ArgumentError('gradcheck: called inside noGrad, so no graph is recorded; call it outside');
  const checked = validateInputs(inputs);
  return withBackend('reference', () => run(fn, inputs, checked, { eps, atol, rtol, raise }));
}

/** Indices of the inputs that require grad, after checking each is a float64 leaf that does not overlap another. */
function validateInputs(inputs: readonly Tensor[]): number[] {
  if (!Array.isArray(inputs)) throw new ArgumentError('gradcheck: inputs must be an array of tensors');
  const checked: number[] = [];
  const claimed = new Map<unknown, Map<number, number>>(); // storage -> position -> input index
  inputs.forEach((x, k) => {
    if (!(x instanceof Tensor)) throw new ArgumentError(`gradcheck: input ${k} is ${typeof x}, expected a Tensor`);
    if (!x.requiresGrad) return;
    const what = `gradcheck: input ${k} (shape ${fmtShape(x.shape)})`;
    if (x.dtype !== 'float64') {
      throw new ArgumentError(
        `${what} is ${x.dtype}, expected float64: differences of eps = 1e-6 are rounding noise in float32 (make it with { dtype: 'float64' }, or x.detach().to('float64').requiresGrad_())`,
      );
    }
    if (!x.isHost) hostElements(x, 'gradcheck');
    if (!x.isLeaf) {
      throw new ArgumentError(`${what} is the output of '${x.node!.op}', expected a leaf: only leaves receive .grad (pass a leaf and apply the op inside fn)`);
    }
    if (inputs.indexOf(x) !== k) { checked.push(k); return; } // the same tensor twice: both get the total gradient
    const seen = claimed.get(x.data) ?? new Map<number, number>();
    claimed.set(x.data, seen);
    for (const p of positions(x)) {
      const other = seen.get(p);
      if (other !== undefined) {
        throw new ArgumentError(
          other === k
            ? `${what} has overlapping elements (strides ${fmtShape(x.strides)}, e.g. an expand): perturbing one would move several; pass a contiguous copy`
            : `${what} shares storage with input ${other}: perturbing one would move the other; pass separate copies`,
        );
      }
      seen.set(p, k);
    }
    checked.push(k);
  });
  if (checked.length === 0) {
    throw new ArgumentError(`gradcheck: none of the ${inputs.length} inputs requires grad, so there is nothing to check (make them with { requiresGrad: true })`);
  }
  return checked;
}

/** Storage position of each element of x, in row-major order. */
function positions(x: Tensor): number[] {
  const out = new Array<number>(x.size);
  const idx = new Array<number>(x.ndim).fill(0);
  for (let i = 0; i < x.size; i++) {
    let p = x.offset;
    for (let d = 0; d < x.ndim; d++) p += idx[d] * x.strides[d];
    out[i] = p;
    for (let d = x.ndim - 1; d >= 0; d--) {
      if (++idx[d] < x.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Row-major multi-index of flat index i in shape. */
function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Six significant digits; exponent form below 1e-3 (1.5e-5, not 0.000015). */
const num = (v: number): string => {
  if (!Number.isFinite(v)) return String(v);
  const r = Number(v.toPrecision(6));
  return r !== 0 && Math.abs(r) < 1e-3 ? r.toExponential() : String(r);
};

function asOutputs(r: unknown, when: string): Tensor[] {
  const outs = Array.isArray(r) ? (r as unknown[]) : [r];
  if (outs.length === 0) throw new ArgumentError(`gradcheck: fn returned no tensors ${when}`);
  outs.forEach((o, j) => {
    if (!(o instanceof Tensor)) throw new ArgumentError(`gradcheck: output ${j} of fn is ${typeof o}, expected a Tensor`);
  });
  return outs as Tensor[];
}

interface Tol {
  eps: number;
  atol: number;
  rtol: number;
  raise: boolean;
}

function run(fn: Fn, inputs: readonly Tensor[], checked: number[], { eps, atol, rtol, raise }: Tol): boolean {
  // Every .grad the backward passes below can touch: the inputs and every leaf the graph reaches.
  const saved = new Map<Tensor, Tensor | null>();
  for (const k of checked) saved.set(inputs[k], inputs[k].grad);
  try {
    const outs = asOutputs(fn(...inputs), 'for the analytic pass');
    outs.forEach((o, j) => {
      if (!o.requiresGrad) {
        throw new AutogradError(
          `gradcheck: output ${j} (shape ${fmtShape(o.shape)}) does not require grad: no input that requires grad reaches it (an op computed without record, detach or noGrad cuts the graph)`,
        );
      }
    });
    for (const t of graphLeaves(outs)) if (!saved.has(t)) saved.set(t, t.grad);
    const gen = new Generator(R_SEED);
    const R = outs.map((o) => randn(o.shape, { dtype: 'float64', generator: gen }));
    const Rv = R.map((r) => r.toArray());

    /** Gradients of sum_j sum(out_j * w_j) w.r.t. each checked input (zeros where none arrived), and which got one. */
    const vjp = (w: ReadonlyArray<Tensor | null>): { grads: Float64Array[]; got: boolean[] } => {
      for (const t of saved.keys()) t.grad = null;
      const terms = outs.flatMap((o, j) => (w[j] ? [o.mul(w[j]!).sum()] : []));
      terms.reduce((a, b) => a.add(b)).backward();
      const got = checked.map((k) => inputs[k].grad !== null);
      const grads = checked.map((k) => {
        const x = inputs[k];
        if (x.grad === null) return new Float64Array(x.size);
        if (!sameShape(x.grad.shape, x.shape)) {
          throw new AutogradError(`gradcheck: input ${k} got a gradient of shape ${fmtShape(x.grad.shape)} but has shape ${fmtShape(x.shape)}`);
        }
        return Float64Array.from(x.grad.toArray());
      });
      return { grads, got };
    };
    const { grads: analytic, got } = vjp(R);

    /** fn's outputs, flattened, at the inputs' current values (no graph). */
    const evaluate = (): Float64Array[] => {
      const r = asOutputs(noGrad(() => fn(...inputs)), 'on re-evaluation');
      if (r.length !== outs.length || r.some((o, j) => !sameShape(o.shape, outs[j].shape))) {
        throw new ArgumentError(
          `gradcheck: fn returned ${r.map((o) => fmtShape(o.shape)).join(', ')} on re-evaluation but ${outs.map((o) => fmtShape(o.shape)).join(', ')} at first; it must be deterministic`,
        );
      }
      return r.map((o) => Float64Array.from(o.toArray()));
    };
    const contract = (vs: Float64Array[]): number => {
      let s = 0;
      vs.forEach((v, j) => v.forEach((e, i) => (s += e * Rv[j][i])));
      return s;
    };
    /** Evaluate at x[i] + eps and x[i] - eps, restoring x[i] whatever happens. */
    const perturbed = <T>(x: Tensor, pos: number, f: () => T): [T, T] => {
      const xs = hostElements(x, 'gradcheck');
      const orig = xs[pos];
      try {
        xs[pos] = orig + eps;
        const up = f();
        xs[pos] = orig - eps;
        return [up, f()];
      } finally {
        xs[pos] = orig;
      }
    };

    interface Failure { slot: number; i: number; a: number; n: number; tol: number; count: number }
    const failures: Failure[] = [];
    checked.forEach((k, slot) => {
      const x = inputs[k];
      const pos = positions(x);
      let first: Failure | null = null;
      let count = 0;
      for (let i = 0; i < x.size; i++) {
        const [up, down] = perturbed(x, pos[i], () => contract(evaluate()));
        const n = (up - down) / (2 * eps);
        const a = analytic[slot][i];
        const tol = atol + rtol * Math.abs(n);
        if (!(Math.abs(a - n) <= tol)) {
          count++;
          first ??= { slot, i, a, n, tol, count: 0 };
        }
      }
      if (first) failures.push({ ...first, count });
    });
    if (failures.length === 0) return true;
    if (!raise) return false;

    const f = failures[0];
    const k = checked[f.slot];
    const x = inputs[k];
    const index = unravel(f.i, x.shape);
    const jacobian = localize(outs, x, f.i, f.slot, { eps, atol, rtol }, vjp, evaluate, perturbed);
    const outName = (j: number) => (outs.length === 1 ? 'output' : `output ${j}`);
    const parts = [
      `gradcheck: input ${k} (shape ${fmtShape(x.shape)}) element ${fmtShape(index)}: analytic ${num(f.a)} vs numeric ${num(f.n)}, ` +
        `|difference| ${num(Math.abs(f.a - f.n))} > tolerance ${num(f.tol)} (atol ${num(atol)} + rtol ${num(rtol)} * |numeric|); ` +
        `${f.count} of ${x.size} elements of input ${k} differ.`,
      `Values are d sum(out * R) / d input for a fixed random R of the output's shape.`,
    ];
    if (!got[f.slot]) parts.push(`Input ${k} got no gradient (no recorded op reached it), which counts as zero.`);
    if (jacobian) {
      parts.push(
        `First wrong Jacobian entry: d ${outName(jacobian.output)} element ${fmtShape(jacobian.outputIndex)} / d input ${k} element ${fmtShape(index)}: ` +
          `analytic ${num(jacobian.analytic)} vs numeric ${num(jacobian.numeric)}.`,
      );
    }
    if (failures.length > 1) parts.push(`Inputs ${failures.slice(1).map((g) => checked[g.slot]).join(', ')} differ too.`);
    throw new GradcheckError(parts.join(' '), k, [...x.shape], index, f.a, f.n, f.tol, jacobian);
  } finally {
    for (const [t, g] of saved) t.grad = g;
  }
}

/**
 * The first entry of the Jacobian column of element i (row-major) of input x that differs, scanning outputs and
 * their elements in order; null when none exceeds the tolerance or the outputs are too large to scan.
 */
function localize(
  outs: Tensor[],
  x: Tensor,
  i: number,
  slot: number,
  { eps, atol, rtol }: { eps: number; atol: number; rtol: number },
  vjp: (w: ReadonlyArray<Tensor | null>) => { grads: Float64Array[] },
  evaluate: () => Float64Array[],
  perturbed: <T>(x: Tensor, pos: number, f: () => T) => [T, T],
): JacobianEntry | null {
  if (outs.reduce((s, o) => s + o.size, 0) > LOCALIZE_MAX_OUTPUT) return null;
  const [up, down] = perturbed(x, positions(x)[i], evaluate);
  for (let j = 0; j < outs.length; j++) {
    for (let q = 0; q < outs[j].size; q++) {
      const hot = new Float64Array(outs[j].size);
      hot[q] = 1;
      const onehot = fromStorage(hot, outs[j].shape);
      const a = vjp(outs.map((_, m) => (m === j ? onehot : null))).grads[slot][i];
      const n = (up[j][q] - down[j][q]) / (2 * eps);
      if (!(Math.abs(a - n) <= atol + rtol * Math.abs(n))) return { output: j, outputIndex: unravel(q, outs[j].shape), analytic: a, numeric: n };
    }
  }
  return null;
}

/** Leaves that require grad reachable from the outputs (their .grad is saved and restored around the check). */
function graphLeaves(outs: Tensor[]): Tensor[] {
  const leaves: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack = outs.filter((o) => o.requiresGrad);
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.node === null) leaves.push(t);
    else for (const c of t.node.inputs) if (c.requiresGrad) stack.push(c);
  }
  return leaves;
}
