// Fuzzing the experiment-config loader of `ptslab run` (experiments/runner/config.ts: YAML/JSON, zod schema,
// ${ENV} substitution, file checks). Seeds are the repository's own configs and generated valid ones (a weights file
// that exists, every method label, ablations, bnRecal, eval and smoke sections); each case damages one: bytes of
// the text (flips, cuts, inserts), or the parsed structure (a value replaced by anything fast-check can build, a key
// deleted or added), written as YAML or JSON. Every case must end in a config that expands into a grid
// (expandGrid) or a ConfigError naming the file; YAML alias bombs and deep nesting included.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { ConfigError, loadConfig } from '../experiments/runner/config.js';
import { registry } from '../sparsity/index.js';

// `given` needs an allocation, which these generated configs do not carry
const METHOD_LABELS = registry.methodLabels().filter((l) => !l.startsWith('given'));
import { expandGrid } from '../experiments/runner/grid.js';
import { FUZZ_RUNS, fuzz, mutate, mutationsArb, outcome, Tally, tmp } from './reliability-common.js';

const CONFIGS = fileURLToPath(new URL('../../experiments/configs/', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const optionsArb = fc.record({ iters: fc.integer({ min: 1, max: 20 }), calib: fc.integer({ min: 1, max: 64 }), batchSize: fc.integer({ min: 1, max: 32 }), estimator: fc.constantFrom('histogram', 'kde'), objective: fc.record({ lambda: fc.double({ min: 0, max: 10, noNaN: true }) }, { requiredKeys: [] }) }, { requiredKeys: [] });

function validArb(weights: string): fc.Arbitrary<Json> {
  return fc.record({
    name: fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/),
    model: fc.constant({ arch: 'resnet20', weights: '${PTSLAB_W}', dataset: 'mnist' }),
    methods: fc.uniqueArray(fc.constantFrom(...METHOD_LABELS), { minLength: 1, maxLength: 4 }),
    sparsities: fc.uniqueArray(fc.constantFrom(0.3, 0.5, 0.7, 0.9, 0.95), { minLength: 1, maxLength: 3 }),
    seeds: fc.uniqueArray(fc.nat(3), { minLength: 1, maxLength: 2 }),
    options: optionsArb,
    ablations: fc.uniqueArray(fc.record({ name: fc.constantFrom('a', 'b', 'c'), iters: fc.integer({ min: 1, max: 9 }) }), { maxLength: 2, selector: (a) => a.name }),
    bnRecal: fc.boolean(),
    eval: fc.record({ images: fc.integer({ min: 1, max: 100 }) }, { requiredKeys: [] }),
    smoke: fc.record({ iters: fc.integer({ min: 1, max: 3 }) }, { requiredKeys: [] }),
  }, { requiredKeys: ['model', 'methods', 'sparsities'] }).map((c) => (void weights, c as unknown as Json));
}

/** Every path to a value inside `v` (as key lists). */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

type Edit = { kind: 'replace'; pick: number; value: unknown } | { kind: 'delete'; pick: number } | { kind: 'add'; pick: number; key: string; value: unknown };
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('replace' as const), pick: fc.nat(), value: fc.oneof(fc.anything({ maxDepth: 2 }), fc.constantFrom(-1, 0, 1.5, 1e308, '', 'fcpts', [], {}, null, true, '__proto__')) }),
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), pick: fc.nat(), key: fc.constantFrom('__proto__', 'constructor', 'iters', 'weights', 'extra', 'toString'), value: fc.anything({ maxDepth: 1 }) }),
);

function edit(root: Json, e: Edit): unknown {
  const copy = JSON.parse(JSON.stringify(root)) as Json;
  const all = paths(copy);
  const p = all[e.pick % all.length];
  if (p.length === 0) return e.kind === 'replace' ? e.value : copy;
  let parent = copy as Record<string | number, unknown>;
  for (const k of p.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = p[p.length - 1];
  if (e.kind === 'replace') parent[last] = e.value;
  else if (e.kind === 'delete') Array.isArray(parent) ? parent.splice(last as number, 1) : delete parent[last];
  else {
    const target = parent[last];
    if (target && typeof target === 'object' && !Array.isArray(target)) Object.defineProperty(target, e.key, { value: e.value, enumerable: true, configurable: true, writable: true });
  }
  return copy;
}

const serialise = (v: unknown, json: boolean): string => {
  try {
    return json ? JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? Number(x) : x)) ?? 'null' : toYaml(v);
  } catch {
    return json ? '{' : ':';
  }
};

const BOMB = `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\nmodel: *f\n`;

test(`experiment configs: ${FUZZ_RUNS} damaged YAML/JSON configs through loadConfig + expandGrid`, () => {
  const dir = tmp('config');
  const weights = join(dir, 'w.safetensors');
  writeFileSync(weights, 'not checked here');
  const env = { PTSLAB_W: weights };
  const repo = readdirSync(CONFIGS).filter((f) => f.endsWith('.yaml')).map((f) => readFileSync(join(CONFIGS, f), 'utf8'));
  const texts = [...repo, BOMB, `${'['.repeat(5000)}${']'.repeat(5000)}`, `${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`];
  const tally = new Tally('experiment config (loadConfig)');
  let n = 0;
  // The yaml parser warns on stderr about every odd tag or alias it meets; thousands of damaged files would flood the
  // test log. Those warnings are muted while fuzzing (the loader could pass { logLevel: 'error' } to parse).
  const emit = process.emitWarning;
  process.emitWarning = ((w: string | Error, ...rest: unknown[]) => {
    if ((w as Error)?.name === 'YAMLWarning') return;
    (emit as (...a: unknown[]) => void).call(process, w, ...rest);
  }) as typeof process.emitWarning;
  const seedArb = fc.oneof(
    { weight: 3, arbitrary: validArb(weights).map((v) => ({ kind: 'generated' as const, v })) },
    { weight: 1, arbitrary: fc.nat(texts.length - 1).map((i) => ({ kind: 'text' as const, i })) },
  );
  fuzz([seedArb, fc.array(editArb, { maxLength: 2 }), mutationsArb, fc.boolean()], (seed, edits, ms, json) => {
    let text: string;
    if (seed.kind === 'generated') {
      let v: unknown = seed.v;
      for (const e of edits) v = edit(v as Json, e);
      text = serialise(v, json);
    } else text = texts[seed.i];
    const isJson = seed.kind === 'generated' && json;
    const file = join(dir, `case-${n++}.${isJson ? 'json' : 'yaml'}`);
    writeFileSync(file, mutate(new TextEncoder().encode(text), ms));
    const intact = seed.kind === 'generated' && edits.length === 0 && ms.length === 0;
    const checkFiles = seed.kind === 'generated';
    const ok = outcome(tally, file, () => {
      const cfg = loadConfig(file, { env, checkFiles });
      return { cfg, cells: expandGrid(cfg), smoke: expandGrid(cfg, { smoke: true }) };
    }, ({ cfg, cells, smoke }) => {
      if (cfg.file !== file || typeof cfg.name !== 'string' || !cfg.methods.length || !cfg.sparsities.every((s) => s > 0 && s < 1)) return false;
      if (!cells.length || cells.length !== smoke.length || new Set(cells.map((c) => c.key)).size !== cells.length) return false;
      if (intact) assert.is(cfg.model.weights, weights);
    }, ConfigError);
    rmSync(file);
    return ok;
  });
  process.emitWarning = emit;
  rmSync(dir, { recursive: true, force: true });
  tally.done(100, 100);
});

/** loadConfig(path) must reject `path` with a ConfigError that names it. */
function refuses(path: string): void {
  try {
    loadConfig(path);
    assert.unreachable(`${path} loaded`);
  } catch (e) {
    assert.instance(e, ConfigError, `${path}: ${(e as Error).name}: ${(e as Error).message}`);
    assert.match((e as Error).message, path);
  }
}

test('a missing config file is a ConfigError naming it', () => {
  const d = tmp('config-missing');
  refuses(join(d, 'missing.yaml'));
  rmSync(d, { recursive: true, force: true });
});

test('a config path that is a folder is a ConfigError naming it', () => {
  const folder = join(tmp('config-dir'), 'grid.yaml');
  mkdirSync(folder);
  refuses(folder);
});

test.run();
