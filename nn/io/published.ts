// Checkpoints as people publish them: readPublishedCheckpoint takes a .pth / .th / .pt (torch.save, zip or legacy)
// or .safetensors file and finds the state_dict in it, reporting each step: the wrapper dicts it went through
// ('state_dict', 'model', 'model_state_dict', 'net', 'module'; nested ones one at a time), the entries beside them
// (best_prec1, epoch, optimizer, ...) as extras, a 'module.' prefix (nn.DataParallel) stripped when every key has
// it, and prefix renames ('linear.=fc.', parsed by parseRename) applied in order. fillBatchNormBuffers adds the
// num_batches_tracked = 0 that PyTorch < 0.4.1 did not save, as torch's _BatchNorm._load_from_state_dict does for
// such files; loadPublished reads, fills and loads strictly (by default), and a StateDictError then names the
// leftover keys, what was done to them, and prefix renames that would map unexpected keys onto missing ones.

import { readFileSync } from 'node:fs';
import { ArgumentError, full } from '../../core/index.js';
import { Tensor } from '../tensor-utils.js';
import { CheckpointError, StateDictError } from '../errors.js';
import { BatchNorm2d } from '../layers.js';
import type { Module } from '../module.js';
import { detectFormat, type CheckpointFormat } from './checkpoint.js';
import type { PyValue, StorageDType, TensorRef } from './pickle.js';
import { parseSafetensors } from './safetensors.js';
import { parseTorchFile } from './torch-load.js';

/** Keys under which published checkpoints nest their state_dict, tried in this order. */
export const STATE_DICT_WRAPPERS: readonly string[] = ['state_dict', 'model_state_dict', 'model', 'net', 'module'];

/** A JSON-like summary of a non-state_dict entry: scalars as they are, tensors as 'tensor [shape] dtype'. */
export type ExtraValue = null | boolean | number | bigint | string | ExtraValue[] | { [key: string]: ExtraValue };

export interface ReadPublishedOptions {
  /** Prefix renames [from, to], applied in order, each to the name the previous ones left (see parseRename). */
  rename?: ReadonlyArray<readonly [string, string]>;
  /** Name of the input in messages (default: the path, or '<buffer>'). */
  source?: string;
}

export interface PublishedCheckpoint {
  stateDict: Record<string, Tensor>;
  format: CheckpointFormat;
  /** The wrapper keys gone through, outermost first (e.g. ['state_dict'], ['net', 'state_dict']); [] for a bare dict. */
  unwrapped: string[];
  /** Entries beside the wrappers, by dotted path ('best_prec1', 'net.arch'), summarised. */
  extras: Record<string, ExtraValue>;
  /** 'module.' when every key had it and it was removed. */
  prefixStripped: 'module.' | null;
  /** How many keys a rename rule changed. */
  renamed: number;
  /** Rename rules (as 'from=to') that matched no key. */
  unusedRenames: string[];
  /** The element type each (final) key had in the file; int64 and float64 are read as float64 tensors. */
  dtypes: Record<string, StorageDType>;
}

/**
 * 'linear.=fc.' -> ['linear.', 'fc.']: a key starting with the part before '=' gets the part after it instead.
 * The source prefix must be non-empty; the target may be empty ('backbone.=' drops a prefix).
 */
export function parseRename(rule: string): [string, string] {
  const bad = (why: string): never => {
    throw new ArgumentError(`rename rule ${JSON.stringify(rule)}: ${why}; expected FROM=TO, a key prefix and its replacement (e.g. 'linear.=fc.')`);
  };
  if (typeof rule !== 'string') bad(`is a ${typeof rule}, not a string`);
  const parts = rule.split('=');
  if (parts.length !== 2) bad(parts.length === 1 ? "has no '='" : `has ${parts.length - 1} '=' signs, not one`);
  const [from, to] = parts;
  if (from === '') bad('the prefix before \'=\' is empty');
  if (/\s/.test(rule)) bad('contains whitespace');
  return [from, to];
}

const isTensorRef = (v: PyValue): v is TensorRef =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && !(v instanceof Uint8Array) && v.kind === 'tensor';

const isTensorDict = (v: PyValue): v is Map<PyValue, PyValue> =>
  v instanceof Map && v.size > 0 && [...v].every(([k, x]) => typeof k === 'string' && isTensorRef(x));

/** What a Python value is, in a few words (for messages). */
function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'number' || typeof v === 'bigint') return `a number (${String(v)})`;
  if (typeof v === 'boolean') return `a bool (${v})`;
  if (typeof v === 'string') return 'a string';
  if (v instanceof Uint8Array) return `bytes (${v.length})`;
  if (Array.isArray(v)) return `a list/tuple of ${v.length}`;
  if (v instanceof Map) return `a dict of ${v.size} entries`;
  return v.kind === 'tensor' ? `a tensor [${v.shape.join(', ')}]` : v.kind;
}

/** A summary of an extra entry: containers to depth 2 and 20 entries, tensors by shape and dtype. */
function summarize(v: PyValue, depth = 0): ExtraValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string') return v;
  if (v instanceof Uint8Array) return `bytes (${v.length})`;
  if (Array.isArray(v)) return depth >= 2 || v.length > 20 ? `list/tuple of ${v.length}` : v.map((x) => summarize(x, depth + 1));
  if (v instanceof Map) {
    if (depth >= 2 || v.size > 20) return `dict of ${v.size} entries`;
    const out: Record<string, ExtraValue> = {};
    for (const [k, x] of v) if (String(k) !== '__proto__') out[String(k)] = summarize(x, depth + 1);
    return out;
  }
  if (v.kind === 'tensor') return `tensor [${v.shape.join(', ')}] ${v.storage.dtype}`;
  return v.kind === 'global' ? v.name : v.kind;
}

/** The wrapper path to the first dict of tensors (depth first, wrappers in STATE_DICT_WRAPPERS order), or null. */
function findStateDict(v: PyValue, depth: number): string[] | null {
  if (isTensorDict(v)) return [];
  if (!(v instanceof Map) || depth >= 8) return null;
  for (const w of STATE_DICT_WRAPPERS) {
    if (!v.has(w)) continue;
    const inner = findStateDict(v.get(w)!, depth + 1);
    if (inner) return [w, ...inner];
  }
  return null;
}

function noStateDict(root: PyValue, source: string): never {
  if (!(root instanceof Map)) throw new CheckpointError(`${source}: the checkpoint holds ${describe(root)}, not a dict; expected a state_dict (a dict of tensors)`);
  const keys = [...root.keys()].map((k) => String(k));
  const shown = keys.slice(0, 20).map((k) => `'${k}'`).join(', ') + (keys.length > 20 ? `, ... (${keys.length - 20} more)` : '');
  const nonTensor = [...root].filter(([, x]) => !isTensorRef(x));
  const tensors = root.size - nonTensor.length;
  const why = tensors > 0 && nonTensor.length > 0
    ? `; ${tensors} entries are tensors but ${nonTensor.slice(0, 5).map(([k, x]) => `'${String(k)}' is ${describe(x)}`).join(', ')}${nonTensor.length > 5 ? ', ...' : ''}`
    : '';
  throw new CheckpointError(
    `${source}: no state_dict found: the top level has ${keys.length} keys (${shown || 'none'})${why}; expected a dict of tensors, or one nested under ${STATE_DICT_WRAPPERS.map((w) => `'${w}'`).join(' / ')}`,
  );
}

/** The safetensors header's dtype per key (already validated by parseSafetensors). */
function safetensorsDTypes(bytes: Uint8Array): Record<string, StorageDType> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string }>;
  const map: Record<string, StorageDType> = {
    F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
  };
  const out: Record<string, StorageDType> = {};
  for (const [k, e] of Object.entries(header)) if (k !== '__metadata__') out[k] = map[e.dtype];
  return out;
}

/** Read a published checkpoint (path or bytes) and find, unwrap, strip and rename its state_dict. */
export function readPublishedCheckpoint(file: string | Uint8Array, o: ReadPublishedOptions = {}): PublishedCheckpoint {
  const source = o.source ?? (typeof file === 'string' ? file : '<buffer>');
  const rules = (o.rename ?? []).map((r, i) => {
    if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string' || typeof r[1] !== 'string' || r[0] === '') {
      throw new ArgumentError(`readPublishedCheckpoint ${source}: rename[${i}] must be a [from, to] pair of strings with a non-empty from (see parseRename)`);
    }
    return [r[0], r[1]] as const;
  });
  let bytes: Uint8Array;
  if (typeof file === 'string') {
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new CheckpointError(`${source}: cannot read (${(e as Error).message})`);
    }
  } else bytes = file;
  const format = detectFormat(bytes);
  if (format === null) {
    throw new CheckpointError(`${source}: not a safetensors file, a torch.save zip archive or a legacy torch.save pickle (first bytes ${[...bytes.subarray(0, 9)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`);
  }

  let entries: Array<[string, Tensor, StorageDType]>;
  const unwrapped: string[] = [];
  const extras: Record<string, ExtraValue> = {};
  if (format === 'safetensors') {
    const tensors = parseSafetensors(bytes, source).tensors;
    const dt = safetensorsDTypes(bytes);
    entries = Object.entries(tensors).map(([k, t]) => [k, t, dt[k]]);
  } else {
    const tf = parseTorchFile(bytes, source);
    const path = findStateDict(tf.root, 0);
    if (!path) noStateDict(tf.root, source);
    let node = tf.root as Map<PyValue, PyValue>;
    for (const w of path!) {
      const where = unwrapped.length ? `${unwrapped.join('.')}.` : '';
      for (const [k, v] of node) if (k !== w && String(k) !== '__proto__') extras[where + String(k)] = summarize(v);
      unwrapped.push(w);
      node = node.get(w) as Map<PyValue, PyValue>;
    }
    const where = unwrapped.length ? `${unwrapped.join('.')}.` : '';
    entries = [...node].map(([k, v]) => {
      const ref = v as TensorRef;
      return [k as string, tf.materialize(ref, where + (k as string)), ref.storage.dtype];
    });
  }

  const strip = entries.length > 0 && entries.every(([k]) => k.startsWith('module.'));
  const used = new Set<number>();
  let renamed = 0;
  const stateDict: Record<string, Tensor> = {};
  const dtypes: Record<string, StorageDType> = {};
  const origin: Record<string, string> = {};
  for (const [key, t, dtype] of entries) {
    const base = strip ? key.slice('module.'.length) : key;
    let name = base;
    rules.forEach(([from, to], i) => {
      if (name.startsWith(from)) {
        name = to + name.slice(from.length);
        used.add(i);
      }
    });
    if (name !== base) renamed++;
    if (name === '' || name === '__proto__') throw new CheckpointError(`${source}: key '${key}' becomes ${JSON.stringify(name)}, which is not a usable key`);
    if (Object.hasOwn(stateDict, name)) {
      throw new CheckpointError(`${source}: keys '${origin[name]}' and '${key}' both become '${name}' (after ${strip ? "stripping 'module.' and " : ''}renaming); check the rename rules`);
    }
    stateDict[name] = t;
    dtypes[name] = dtype;
    origin[name] = key;
  }
  return {
    stateDict,
    format,
    unwrapped,
    extras,
    prefixStripped: strip ? 'module.' : null,
    renamed,
    unusedRenames: rules.filter((_, i) => !used.has(i)).map(([f, t]) => `${f}=${t}`),
    dtypes,
  };
}

/**
 * PyTorch < 0.4.1 saved BatchNorm without num_batches_tracked; torch's _BatchNorm._load_from_state_dict sets a
 * missing one to tensor(0) for such files. This does the same in place on `stateDict`: for every BatchNorm2d of
 * `model` that tracks running statistics, whose running_mean is in the record and whose num_batches_tracked is
 * not, it adds a 0 (so a BN absent altogether is still reported missing). Returns the keys it added.
 */
export function fillBatchNormBuffers(model: Module, stateDict: Record<string, Tensor>): string[] {
  const filled: string[] = [];
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof BatchNorm2d) || m.numBatchesTracked === null) continue;
    const prefix = name ? `${name}.` : '';
    const key = `${prefix}num_batches_tracked`;
    if (Object.hasOwn(stateDict, key) || !Object.hasOwn(stateDict, `${prefix}running_mean`)) continue;
    stateDict[key] = full([], 0, { dtype: m.numBatchesTracked.dtype });
    filled.push(key);
  }
  return filled;
}

export interface LoadPublishedOptions {
  /** Prefix renames, as in readPublishedCheckpoint: [from, to] pairs or 'from=to' strings. */
  rename?: ReadonlyArray<readonly [string, string] | string>;
  /** Every key of the model must be in the checkpoint and nothing else (default true). */
  strict?: boolean;
  /** The checkpoint already read (readPublishedCheckpoint with the same rename), so the file is read once. */
  read?: PublishedCheckpoint;
}

export interface LoadPublishedReport extends Omit<PublishedCheckpoint, 'stateDict'> {
  source: string;
  /** num_batches_tracked keys added by fillBatchNormBuffers. */
  filled: string[];
  /** Model keys the checkpoint lacked (only when strict is false). */
  missingKeys: string[];
  /** Checkpoint keys the model lacks (only when strict is false). */
  unexpectedKeys: string[];
}

/**
 * Prefix renames that would map unexpected keys onto missing ones, best first: each pair of keys sharing a dotted
 * suffix proposes 'its prefix=the other prefix', and rules are taken greedily by how many keys they map.
 */
export function suggestRenames(missing: readonly string[], unexpected: readonly string[]): Array<{ rule: string; keys: number }> {
  if (missing.length * unexpected.length > 4_000_000) return [];
  const left = new Set(missing);
  let todo = [...unexpected];
  const out: Array<{ rule: string; keys: number }> = [];
  for (;;) {
    const counts = new Map<string, { from: string; to: string; keys: Set<string> }>();
    for (const u of todo) {
      const us = u.split('.');
      for (const m of left) {
        const ms = m.split('.');
        let s = 0;
        while (s < us.length - 1 && s < ms.length && us[us.length - 1 - s] === ms[ms.length - 1 - s]) s++;
        if (s === 0) continue;
        const from = `${us.slice(0, us.length - s).join('.')}.`;
        const to = ms.length - s > 0 ? `${ms.slice(0, ms.length - s).join('.')}.` : '';
        const id = `${from}=${to}`;
        if (!counts.has(id)) counts.set(id, { from, to, keys: new Set() });
        counts.get(id)!.keys.add(u);
      }
    }
    // A rule counts the unexpected keys it maps onto distinct missing keys.
    let best: { from: string; to: string; mapped: string[] } | null = null;
    for (const { from, to } of counts.values()) {
      const mapped = todo.filter((u) => u.startsWith(from) && left.has(to + u.slice(from.length)));
      if (mapped.length > (best?.mapped.length ?? 0)) best = { from, to, mapped };
    }
    if (!best) return out;
    out.push({ rule: `${best.from}=${best.to}`, keys: best.mapped.length });
    for (const u of best.mapped) left.delete(best.to + u.slice(best.from.length));
    todo = todo.filter((u) => !best!.mapped.includes(u));
    if (out.length >= 10) return out;
  }
}

/**
 * Read a published checkpoint, fill BatchNorm's num_batches_tracked where PyTorch would, and load it into `model`
 * (strict by default). A StateDictError names the file, the leftover keys, what was done to the keys, and the
 * prefix renames that would fit; its fields keep the complete lists.
 */
export function loadPublished(model: Module, file: string | Uint8Array, o: LoadPublishedOptions = {}): LoadPublishedReport {
  const rename = (o.rename ?? []).map((r) => (typeof r === 'string' ? parseRename(r) : r));
  const read = o.read ?? readPublishedCheckpoint(file, { rename });
  const source = typeof file === 'string' ? file : '<buffer>';
  const filled = fillBatchNormBuffers(model, read.stateDict);
  const strict = o.strict ?? true;
  let result: { missingKeys: string[]; unexpectedKeys: string[] };
  try {
    result = model.loadStateDict(read.stateDict, { strict });
  } catch (e) {
    if (!(e instanceof StateDictError)) throw e;
    const steps = [
      read.unwrapped.length ? `unwrapped ${read.unwrapped.map((w) => `'${w}'`).join(' > ')}` : 'no wrapper',
      read.prefixStripped ? "'module.' stripped" : "no 'module.' prefix",
      rename.length ? `${read.renamed} keys renamed by ${rename.map(([f, t]) => `'${f}=${t}'`).join(', ')}` : 'no renames',
      `${filled.length} num_batches_tracked filled`,
    ];
    const hints = suggestRenames(e.missingKeys, e.unexpectedKeys);
    const hint = hints.length ? `. Renames that would map unexpected keys onto missing ones: ${hints.map((h) => `'${h.rule}' (${h.keys} keys)`).join(', ')}` : '';
    const unused = read.unusedRenames.length ? `. Rename rules that matched no key: ${read.unusedRenames.map((r) => `'${r}'`).join(', ')}` : '';
    throw new StateDictError(`${source}: ${e.message} (checkpoint read with ${steps.join(', ')})${hint}${unused}`, e.missingKeys, e.unexpectedKeys, e.shapeMismatches);
  }
  const { stateDict: _, ...rest } = read;
  return { source, ...rest, filled, missingKeys: result.missingKeys, unexpectedKeys: result.unexpectedKeys };
}
