// Module and Parameter, as torch.nn.Module: a module registers its parameters, buffers (BatchNorm running
// statistics) and child modules explicitly, by name, in the order PyTorch registers them, so namedParameters() and
// stateDict() give torchvision's keys in torchvision's order. forward(x) is the computation, protected: call(x) is
// the one public way to run a module (pre-hooks, forward, forward hooks), and what a parent uses to run a child
// (reconstruction losses hook block outputs). Each module also keeps the parametrization stacks of its own
// parameters (nn/parametrize.ts is the public interface); layers read their parameters through parametrized().

import { Tensor, noGrad, fmtShapeOf } from './tensor-utils.js';
import { StateDictError } from './errors.js';
import { ArgumentError, type Backend } from '../core/index.js';
import type { Parametrization, ParametrizationHandle } from './parametrize.js';

/** A trainable tensor: a contiguous leaf with requiresGrad (default true). It owns compact storage. */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    const compact = data.isContiguous && data.offset === 0 && data.data.length === data.size;
    super(compact ? data.data : data.toArray(), data.shape, undefined, 0, requiresGrad);
  }
}

/** Called after forward with the module, its input and its output; returning a tensor replaces the output. */
export type ForwardHook = (module: Module, input: Tensor, output: Tensor) => Tensor | void;
/** Called before forward with the module and its input; returning a tensor replaces the input. */
export type ForwardPreHook = (module: Module, input: Tensor) => Tensor | void;

export interface HookHandle {
  remove(): void;
}

export interface LoadStateDictOptions {
  /** Every key of the module must be in the record and nothing else (default true). Shapes must always match. */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

let nextHookId = 0;
let nextParametrizationId = 0;

/** At most this many keys (or shape mismatches) of each kind are named in a StateDictError's message. */
const LISTED_KEYS = 5;

/** The first LISTED_KEYS items joined by sep, then '... (N more)' when there are more. */
function firstFew(items: readonly string[], sep: string): string {
  const shown = items.slice(0, LISTED_KEYS).join(sep);
  return items.length > LISTED_KEYS ? `${shown}${sep}... (${items.length - LISTED_KEYS} more)` : shown;
}

export abstract class Module {
  /** Training mode (BatchNorm uses batch statistics, Dropout drops); set through train() and eval(). */
  training = true;
  private readonly paramMap = new Map<string, Parameter>();
  private readonly bufferMap = new Map<string, Tensor>();
  private readonly childMap = new Map<string, Module>();
  private readonly hooks = new Map<number, ForwardHook>();
  private readonly preHooks = new Map<number, ForwardPreHook>();
  /** Per own parameter name, its parametrizations by id, in registration order (absent when none). */
  private readonly parametrizationMap = new Map<string, Map<number, Parametrization>>();

  /** The computation; run a module with call(x), which adds the hooks. */
  protected abstract forward(x: Tensor): Tensor;

  /** forward with the hooks: pre-hooks, forward, forward hooks (in registration order). */
  call(x: Tensor): Tensor {
    for (const h of this.preHooks.values()) x = h(this, x) ?? x;
    let y = this.forward(x);
    for (const h of this.hooks.values()) y = h(this, x, y) ?? y;
    return y;
  }

  registerForwardHook(hook: ForwardHook): HookHandle {
    const id = nextHookId++;
    this.hooks.set(id, hook);
    return { remove: () => void this.hooks.delete(id) };
  }

  registerForwardPreHook(hook: ForwardPreHook): HookHandle {
    const id = nextHookId++;
    this.preHooks.set(id, hook);
    return { remove: () => void this.preHooks.delete(id) };
  }

  private ownParameter(caller: string, name: string): Parameter {
    const p = this.paramMap.get(name);
    if (!p) {
      const own = [...this.paramMap.keys()];
      throw new ArgumentError(
        `${caller}: ${this.constructor.name} has no parameter '${name}' (expected one of its own parameters: ${own.length ? own.join(', ') : 'none'})`,
      );
    }
    return p;
  }

  /**
   * Stack fn on this module's own parameter `name`, after those already there (see nn/parametrize.ts). The handle
   * removes exactly this entry and is idempotent.
   */
  registerParametrization(name: string, fn: Parametrization): ParametrizationHandle {
    this.ownParameter('registerParametrization', name);
    if (typeof fn !== 'function') throw new ArgumentError(`registerParametrization: ${this.constructor.name}.${name}: expected a function, got ${typeof fn}`);
    let stack = this.parametrizationMap.get(name);
    if (!stack) this.parametrizationMap.set(name, (stack = new Map()));
    const id = nextParametrizationId++;
    stack.set(id, fn);
    return {
      remove: () => {
        const s = this.parametrizationMap.get(name);
        if (s?.delete(id) && s.size === 0) this.parametrizationMap.delete(name);
      },
    };
  }

  /**
   * Parameter `name` as forward sees it: the raw Parameter passed through its parametrizations in registration
   * order (the Parameter itself when there are none). Each must return a tensor of the parameter's shape.
   */
  parametrized(name: string): Tensor {
    const raw = this.ownParameter('parametrized', name);
    const stack = this.parametrizationMap.get(name);
    if (!stack) return raw;
    let v: Tensor = raw;
    let i = 0;
    for (const fn of stack.values()) {
      const out: unknown = fn(v);
      if (!(out instanceof Tensor)) {
        throw new ArgumentError(`parametrized: ${this.constructor.name}.${name}: parametrization ${i} returned ${typeof out}, expected a Tensor`);
      }
      if (out.shape.length !== raw.shape.length || out.shape.some((d, j) => d !== raw.shape[j])) {
        throw new ArgumentError(
          `parametrized: ${this.constructor.name}.${name}: parametrization ${i} returned shape ${fmtShapeOf(out)}, expected the parameter's ${fmtShapeOf(raw)}`,
        );
      }
      v = out;
      i++;
    }
    return v;
  }

  /** Whether own parameter `name` (any own parameter when omitted) has at least one parametrization. */
  isParametrized(name?: string): boolean {
    return name === undefined ? this.parametrizationMap.size > 0 : this.parametrizationMap.has(name);
  }

  private checkName(kind: string, name: string): void {
    if (name === '' || name.includes('.')) throw new ArgumentError(`${this.constructor.name}.${kind}: name '${name}' must be non-empty and contain no '.'`);
    if (this.paramMap.has(name) || this.bufferMap.has(name) || this.childMap.has(name)) {
      throw new ArgumentError(`${this.constructor.name}.${kind}: '${name}' is already registered`);
    }
  }

  registerParameter<P extends Parameter>(name: string, p: P): P {
    this.checkName('registerParameter', name);
    this.paramMap.set(name, p);
    return p;
  }

  /** A persistent buffer: in stateDict(), moved by loadStateDict(), never trained. Updated in place. */
  registerBuffer(name: string, t: Tensor): Tensor {
    this.checkName('registerBuffer', name);
    this.bufferMap.set(name, t);
    return t;
  }

  registerModule<M extends Module>(name: string, m: M): M {
    this.checkName('registerModule', name);
    this.childMap.set(name, m);
    return m;
  }

  namedChildren(): Array<[string, Module]> {
    return [...this.childMap];
  }

  children(): Module[] {
    return [...this.childMap.values()];
  }

  /** This module ('') and every descendant, depth first in registration order, with dotted names. */
  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [[prefix, this]];
    for (const [name, child] of this.childMap) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Parameters with dotted names, each tensor once (a shared parameter keeps its first name), as PyTorch. */
  namedParameters(): Array<[string, Parameter]> {
    return this.collect((m) => m.paramMap) as Array<[string, Parameter]>;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(): Array<[string, Tensor]> {
    return this.collect((m) => m.bufferMap);
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  /**
   * Move every parameter and buffer, in place, to where backend b keeps arrays (PyTorch's module.to(device)): onto
   * its device (uploads) or back to the host (readbacks). Gradients are dropped (they live where they were made).
   */
  moveTo(b: Backend): this {
    for (const t of [...this.parameters(), ...this.buffers()]) {
      t.moveTo(b);
      t.grad = null;
    }
    return this;
  }

  private collect(pick: (m: Module) => Map<string, Tensor>): Array<[string, Tensor]> {
    const seen = new Set<Tensor>();
    const out: Array<[string, Tensor]> = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of pick(m)) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([prefix ? `${prefix}.${name}` : name, t]);
      }
    }
    return out;
  }

  /** Total number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /**
   * Every parameter and buffer by dotted key, in PyTorch's order (per module: parameters, then buffers, then
   * children). The tensors are detached views sharing the module's storage, as PyTorch's state_dict.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    const walk = (m: Module, prefix: string) => {
      for (const [n, p] of m.paramMap) out[prefix + n] = p.detach();
      for (const [n, b] of m.bufferMap) out[prefix + n] = b.detach();
      for (const [n, c] of m.childMap) walk(c, `${prefix}${n}.`);
    };
    walk(this, '');
    return out;
  }

  /**
   * Copy a record's tensors into the parameters and buffers in place (so optimizers keep their references),
   * converting the element type. Every missing key, unexpected key (strict only) and shape mismatch is reported
   * in one StateDictError (its message gives the counts and the first 5 of each, its fields the full lists), and
   * nothing is copied unless everything fits.
   */
  loadStateDict(record: Record<string, Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const has = (r: object, k: string) => Object.hasOwn(r, k);
    const missingKeys = Object.keys(own).filter((k) => !has(record, k));
    const unexpectedKeys = Object.keys(record).filter((k) => !has(own, k));
    const mismatches: string[] = [];
    for (const [k, t] of Object.entries(own)) {
      if (!has(record, k)) continue;
      const src = record[k];
      if (!(src instanceof Tensor)) mismatches.push(`${k}: not a tensor`);
      else if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i])) {
        mismatches.push(`${k}: checkpoint ${fmtShapeOf(src)}, model ${fmtShapeOf(t)}`);
      }
    }
    const problems: string[] = [];
    if (strict && missingKeys.length) problems.push(`missing keys (${missingKeys.length}): ${firstFew(missingKeys, ', ')}`);
    if (strict && unexpectedKeys.length) problems.push(`unexpected keys (${unexpectedKeys.length}): ${firstFew(unexpectedKeys, ', ')}`);
    if (mismatches.length) problems.push(`shape mismatches (${mismatches.length}): ${firstFew(mismatches, '; ')}`);
    if (problems.length) {
      throw new StateDictError(
        `loadStateDict into ${this.constructor.name}: ${problems.join('. ')}`,
        strict ? missingKeys : [],
        strict ? unexpectedKeys : [],
        mismatches,
      );
    }
    noGrad(() => {
      for (const [k, t] of Object.entries(own)) if (has(record, k)) t.copy_(record[k]);
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Set training mode on this module and every descendant. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Run fn on every module (children first, then this one), as PyTorch's apply. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.childMap.values()) c.apply(fn);
    fn(this);
    return this;
  }

  /** Drop every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** The descendant at a dotted path ('layer1.0.conv1'); '' is this module. */
  getSubmodule(path: string): Module {
    let m: Module = this;
    if (path === '') return m;
    for (const part of path.split('.')) {
      const next = m.childMap.get(part);
      if (!next) throw new ArgumentError(`getSubmodule: ${m.constructor.name} has no child '${part}' (path '${path}')`);
      m = next;
    }
    return m;
  }

  /** A one-line summary per module, indented as PyTorch prints models. */
  toString(): string {
    const lines: string[] = [];
    const walk = (m: Module, name: string, depth: number) => {
      const extra = m.extraRepr();
      lines.push(`${'  '.repeat(depth)}${name ? `(${name}): ` : ''}${m.constructor.name}(${extra})`);
      for (const [n, c] of m.childMap) walk(c, n, depth + 1);
    };
    walk(this, '', 0);
    return lines.join('\n');
  }

  /** Layer arguments shown by toString(). */
  extraRepr(): string {
    return '';
  }
}
