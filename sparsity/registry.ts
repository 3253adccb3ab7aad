// The registry of pruning methods and objective terms: names to specs, the built-in ones (sparsity/methods/,
// BUILTIN_TERMS) and whatever plugins add. Everything that names a method or a term reads it: prune(), config
// validation and the grid's `+bnrecal` rows, the CLI's `--method` choices, flags and `--help`, objectives built
// from configs. `registry` is the process-wide one the CLI and prune() use; `new Registry()` (or `fork()`) gives an
// independent one, e.g. for a test.

import { z } from 'zod';
import { ArgumentError } from '../core/index.js';
import { BUILTIN_METHODS, RESERVED_KEYS, type MethodSpec } from './methods/index.js';
import { BUILTIN_TERMS, type TermSpec } from './objective.js';

export const BNRECAL_SUFFIX = '+bnrecal';
const NAME = /^[a-z][a-z0-9-]*$/;
const TERM_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** The method options a registry knows, by key: the schemas that declare it and the methods that take it. */
export interface OptionKey {
  key: string;
  schemas: z.ZodType[];
  methods: string[];
}

export class Registry {
  private readonly methodMap = new Map<string, MethodSpec>();
  private readonly termMap = new Map<string, TermSpec>();

  constructor(builtins = true) {
    if (!builtins) return;
    for (const [k, m] of Object.entries(BUILTIN_METHODS)) {
      if (k !== m.name) throw new ArgumentError(`BUILTIN_METHODS: key '${k}' holds method '${m.name}'`);
      this.methodMap.set(k, m as MethodSpec);
    }
    for (const [k, t] of Object.entries(BUILTIN_TERMS)) this.termMap.set(k, t as TermSpec);
  }

  /** A copy with the same entries; registering into it leaves this one alone. */
  fork(): Registry {
    const r = new Registry(false);
    for (const [k, m] of this.methodMap) r.methodMap.set(k, m);
    for (const [k, t] of this.termMap) r.termMap.set(k, t);
    return r;
  }

  /** Add a method; `source` (a plugin file) is recorded on it and named in errors. */
  registerMethod(spec: MethodSpec, source?: string): void {
    const what = `method '${String(spec?.name)}'`;
    if (!spec || typeof spec !== 'object') throw new ArgumentError(`registerMethod: expected a method spec object, got ${typeof spec}`);
    if (typeof spec.name !== 'string' || !NAME.test(spec.name)) throw new ArgumentError(`registerMethod: ${what}: a name is lower-case letters, digits and '-', starting with a letter`);
    const clash = this.methodMap.get(spec.name);
    if (clash) throw new ArgumentError(`registerMethod: ${what} is already registered (${clash.source ? `by plugin ${clash.source}` : 'a built-in method'})`);
    if (typeof spec.run !== 'function') throw new ArgumentError(`registerMethod: ${what}: run must be a function`);
    if (!(spec.options instanceof z.ZodObject)) throw new ArgumentError(`registerMethod: ${what}: options must be a zod object schema (z.strictObject({...}))`);
    if (!['one-shot', 'optional', 'never'].includes(spec.bnRecal)) throw new ArgumentError(`registerMethod: ${what}: bnRecal must be 'one-shot', 'optional' or 'never', got ${String(spec.bnRecal)}`);
    if (typeof spec.calibration !== 'boolean') throw new ArgumentError(`registerMethod: ${what}: calibration must be true or false`);
    const reserved = Object.keys(spec.options.shape).filter((k) => (RESERVED_KEYS as readonly string[]).includes(k));
    if (reserved.length) throw new ArgumentError(`registerMethod: ${what}: option ${reserved.join(', ')} is common to every method (it comes in the context), not part of a method's options`);
    this.methodMap.set(spec.name, source ? { ...spec, source } : spec);
  }

  /** Add an objective term; `source` (a plugin file) is recorded on it and named in errors. */
  registerTerm(spec: TermSpec, source?: string): void {
    const what = `term '${String(spec?.name)}'`;
    if (!spec || typeof spec !== 'object') throw new ArgumentError(`registerTerm: expected a term spec object, got ${typeof spec}`);
    if (typeof spec.name !== 'string' || !TERM_NAME.test(spec.name)) throw new ArgumentError(`registerTerm: ${what}: a name is letters, digits, '_' and '-', starting with a letter`);
    const clash = this.termMap.get(spec.name);
    if (clash) throw new ArgumentError(`registerTerm: ${what} is already registered (${clash.source ? `by plugin ${clash.source}` : 'a built-in term'})`);
    if (typeof spec.make !== 'function') throw new ArgumentError(`registerTerm: ${what}: make must be a function returning the term (ctx) => Tensor`);
    if (!(spec.options instanceof z.ZodObject)) throw new ArgumentError(`registerTerm: ${what}: options must be a zod object schema`);
    this.termMap.set(spec.name, source ? { ...spec, source } : spec);
  }

  /** The method of that name; an ArgumentError lists the registered ones. */
  method(name: string): MethodSpec {
    const m = this.methodMap.get(name);
    if (!m) throw new ArgumentError(`unknown method '${name}', expected one of ${this.methodNames().join(', ')}`);
    return m;
  }

  hasMethod(name: string): boolean {
    return this.methodMap.has(name);
  }

  methodNames(): string[] {
    return [...this.methodMap.keys()];
  }

  methods(): MethodSpec[] {
    return [...this.methodMap.values()];
  }

  /** Every label a grid may name: the methods and `<m>+bnrecal` for those BN re-calibration applies to. */
  methodLabels(): string[] {
    const ms = this.methods();
    return [...ms.map((m) => m.name), ...ms.filter((m) => m.bnRecal !== 'never').map((m) => `${m.name}${BNRECAL_SUFFIX}`)];
  }

  /** Methods whose `+bnrecal` row a config's `bnRecal: true` adds. */
  oneShotNames(): string[] {
    return this.methods().filter((m) => m.bnRecal === 'one-shot').map((m) => m.name);
  }

  terms(): ReadonlyMap<string, TermSpec> {
    return this.termMap;
  }

  /** Every method option key, with the schemas that declare it and the methods that take it. */
  optionKeys(): Map<string, OptionKey> {
    const out = new Map<string, OptionKey>();
    for (const m of this.methods()) {
      for (const [key, schema] of Object.entries(m.options.shape)) {
        const o = out.get(key) ?? { key, schemas: [], methods: [] };
        if (!o.schemas.includes(schema as z.ZodType)) o.schemas.push(schema as z.ZodType);
        o.methods.push(m.name);
        out.set(key, o);
      }
    }
    return out;
  }
}

/** The process-wide registry: the built-ins plus what loaded plugins registered. */
export const registry = new Registry();

/** Split a grid label into its method and whether BN re-calibration follows. */
export function parseLabel(label: string): { method: string; bnRecal: boolean } {
  return label.endsWith(BNRECAL_SUFFIX) ? { method: label.slice(0, -BNRECAL_SUFFIX.length), bnRecal: true } : { method: label, bnRecal: false };
}
