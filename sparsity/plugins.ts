// Plugins: an ES module whose default export is a function that receives the plugin API and registers objective
// terms and pruning methods (Vite's and ESLint's plugin shape):
//
//   export default function (api) {
//     api.registerTerm({ name: 'logitL1', description: '...', options: api.z.strictObject({}), make: () => (ctx) => ... });
//     api.registerMethod(api.oneShotMethod({ name: 'my-rule', description: '...', options: ..., allocate: ... }));
//   }
//
// The host validates every registration and reports each problem as one PluginError line naming the plugin file
// (and the term or method). Each loaded plugin is identified by its path and the sha256 of its file, which results
// record and `ptslab reproduce` compares.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { PtslabError } from '../core/errors.js';
import { defineMethod, oneShotMethod, type MethodSpec } from './methods/index.js';
import { defineTerm, type TermSpec } from './objective.js';
import { registry as defaultRegistry, type Registry } from './registry.js';

/** A plugin that cannot be loaded or whose registration failed; the message starts with `plugin <file>:`. */
export class PluginError extends PtslabError {}

/** A loaded plugin: its path (relative to the working directory when inside it) and the sha256 of its file. */
export interface PluginRecord {
  path: string;
  sha256: string;
}

/** What a plugin's default export receives. */
export interface PluginApi {
  registerMethod(spec: MethodSpec): void;
  registerTerm(spec: TermSpec): void;
  defineMethod: typeof defineMethod;
  defineTerm: typeof defineTerm;
  oneShotMethod: typeof oneShotMethod;
  /** The zod the host validates with (declare option schemas with it). */
  z: typeof z;
}

export type Plugin = (api: PluginApi) => void | Promise<void>;

/** How results name a plugin file: relative to the working directory when inside it. */
export function pluginPath(file: string): string {
  const abs = resolve(file);
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

export const sha256Of = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

const loaded = new WeakMap<Registry, Map<string, PluginRecord>>();

/** Load one plugin into a registry (default the process-wide one). Loading the same file twice is a no-op. */
export async function loadPlugin(file: string, o: { registry?: Registry } = {}): Promise<PluginRecord> {
  const reg = o.registry ?? defaultRegistry;
  const path = pluginPath(file);
  const fail = (msg: string): never => {
    throw new PluginError(`plugin ${path}: ${msg}`);
  };
  if (!existsSync(file) || !statSync(file).isFile()) fail('file not found');
  const record = { path, sha256: sha256Of(file) };
  const seen = loaded.get(reg) ?? new Map<string, PluginRecord>();
  loaded.set(reg, seen);
  const before = seen.get(resolve(file));
  if (before) {
    if (before.sha256 !== record.sha256) fail('changed on disk since it was loaded in this process');
    return before;
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown };
  } catch (e) {
    return fail(`cannot be imported: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof mod.default !== 'function') fail(`has no default export function (expected \`export default function (api) { api.registerTerm(...) }\`), got ${typeof mod.default}`);
  // Registrations go to a fork first, so that a plugin that fails halfway leaves the registry as it was.
  const staged = reg.fork();
  const names: string[] = [];
  const api: PluginApi = {
    registerMethod: (spec) => {
      staged.registerMethod(spec, path);
      names.push(`method ${spec.name}`);
    },
    registerTerm: (spec) => {
      staged.registerTerm(spec, path);
      names.push(`term ${spec.name}`);
    },
    defineMethod,
    defineTerm,
    oneShotMethod,
    z,
  };
  try {
    await (mod.default as Plugin)(api);
  } catch (e) {
    fail(`registration failed${names.length ? ` after ${names.join(', ')}` : ''}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!names.length) fail('registered no method and no term');
  for (const m of staged.methods()) if (!reg.hasMethod(m.name)) reg.registerMethod(m, path);
  for (const [name, t] of staged.terms()) if (!reg.terms().has(name)) reg.registerTerm(t, path);
  seen.set(resolve(file), record);
  return record;
}

/** Load several plugins in order; returns their records. */
export async function loadPlugins(files: readonly string[], o: { registry?: Registry } = {}): Promise<PluginRecord[]> {
  const out: PluginRecord[] = [];
  for (const f of files) out.push(await loadPlugin(f, o));
  return out;
}

/** The plugins of a record whose file is missing or changed: one line each, empty when all match. */
export function changedPlugins(records: readonly PluginRecord[]): string[] {
  return records.flatMap((p) => {
    if (!existsSync(p.path)) return [`plugin ${p.path}: file not found`];
    const now = sha256Of(p.path);
    return now === p.sha256 ? [] : [`plugin ${p.path}: sha256 ${now.slice(0, 12)} differs from the recorded ${p.sha256.slice(0, 12)}`];
  });
}
