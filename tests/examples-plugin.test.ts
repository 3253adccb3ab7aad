// The example plugin (examples/plugin/): its config's smoke grid runs end to end through the built CLI (every cell
// finishes, the plugin's method hits the target exactly, result.json records the plugin's sha256, the FCPTS history
// carries the plugin's term); in process, loading it into a forked registry registers its term and method, the term
// is what its comment says and differentiable, and the method's allocation follows its rule; bad plugins (missing,
// no default export, a throwing registration, a clash with a built-in, a broken import, nothing registered) are
// rejected with a PluginError `plugin <path>: ...` and leave the registry as it was; a term giving a non-scalar or a
// NaN fails naming the term and the plugin file; `prune --plugin <missing>` exits 2 with one line.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../core/backend/all.js';
import { cpuBackend } from '../core/backend/cpu/index.js';
import { ArgumentError, NumericError, manualSeed, randn, tensor, type Tensor } from '../core/index.js';
import { buildModel } from '../nn/train/index.js';
import {
  evaluateObjective, loadPlugin, objectiveFromConfig, prunableLayers, prunedCount, registry, PluginError, Registry,
  type MethodContext, type ObjectiveContext,
} from '../sparsity/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'scripts', 'cli.js');
const PLUGIN = join(ROOT, 'examples', 'plugin', 'plugin.js');
const CONFIG = join(ROOT, 'examples', 'plugin', 'config.yaml');
const BACKEND = cpuBackend.unavailableReason?.() ? 'reference' : 'cpu';
const dir = mkdtempSync(join(tmpdir(), 'ptslab-example-plugin-'));
const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const readJson = <T>(f: string): T => JSON.parse(readFileSync(f, 'utf8')) as T;

/** Write a plugin file into the scratch folder; returns its absolute path. */
let n = 0;
function pluginFile(body: string): string {
  const f = join(dir, `bad-${n++}.mjs`);
  writeFileSync(f, body);
  return f;
}

/** The PluginError loading `file` into a fresh registry gives (the test fails if it loads). */
async function rejection(file: string, reg = new Registry()): Promise<PluginError> {
  try {
    await loadPlugin(file, { registry: reg });
  } catch (e) {
    assert.instance(e, PluginError, `loading ${file} threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.ok((e as Error).message.startsWith(`plugin ${file}: `), `message does not start with 'plugin ${file}: ': ${(e as Error).message}`);
    assert.not.match((e as Error).message, /\n/, 'message is not one line');
    return e as PluginError;
  }
  return assert.unreachable(`${file} loaded`) as never;
}

/** A context for calling terms directly: random logits and [B, C, H, W] features for two modules. */
function fakeContext(o: { student?: Map<string, Tensor>; teacher?: Map<string, Tensor> } = {}): ObjectiveContext {
  manualSeed(11);
  const feats = () => new Map([['a', randn([2, 4, 3, 3])], ['b', randn([2, 8, 2, 2])]]);
  return {
    studentLogits: randn([2, 10]),
    teacherLogits: randn([2, 10]),
    studentFeatures: o.student ?? feats(),
    teacherFeatures: o.teacher ?? feats(),
    blocks: ['a', 'b'],
    globalSparsity: tensor([0.5]),
    targetSparsity: 0.5,
    layerSparsity: new Map(),
    step: 7,
    totalSteps: 10,
  };
}

// --- the example config through the CLI ------------------------------------------------------------------------

test(`examples/plugin/config.yaml --smoke runs every cell (backend ${BACKEND}); results record the plugin`, () => {
  const out = join(dir, 'smoke');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'run', CONFIG, '--smoke', '--out', out, '--no-resume'], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, PTSLAB_BACKEND: BACKEND }, timeout: 600_000,
  });
  assert.is(r.status, 0, `exit ${r.status} (signal ${r.signal}) after ${Date.now() - t0} ms: ${r.stderr.slice(-2000)}`);
  const want = ['fcpts', 'size-power', 'size-power+bnrecal', 'lamp', 'lamp+bnrecal'].map((m) => `${m}-s0.8-seed0`);
  assert.equal(readdirSync(join(out, 'cells')).sort(), [...want].sort());
  const hash = sha256(PLUGIN);
  for (const key of want) {
    const f = join(out, 'cells', key, 'result.json');
    assert.ok(existsSync(f), `${key}: no result.json`);
    const res = readJson<{ plugins?: Array<{ path: string; sha256: string }>; achievedSparsity: number; targetSparsity: number; prunableParams: number; zeroParams: number }>(f);
    assert.ok(res.plugins?.length, `${key}: result.json has no plugins`);
    assert.is(res.plugins![0].sha256, hash, `${key}: recorded sha256`);
    assert.is(res.plugins![0].path, 'examples/plugin/plugin.js', `${key}: recorded path (relative to the working directory)`);
    assert.ok(Math.abs(res.achievedSparsity - res.targetSparsity) <= 1 / res.prunableParams, `${key}: achieved ${res.achievedSparsity}, target ${res.targetSparsity}`);
  }
  for (const key of ['size-power-s0.8-seed0', 'size-power+bnrecal-s0.8-seed0']) {
    const res = readJson<{ zeroParams: number; prunableParams: number; config: { method: string; alpha?: number }; layers: Array<{ params: number; sparsity: number }> }>(join(out, 'cells', key, 'result.json'));
    assert.is(res.config.method, 'size-power');
    assert.is(res.config.alpha, 0.5, 'the config\'s alpha reached the cell');
    assert.is(res.zeroParams, Math.round(0.8 * res.prunableParams), `${key}: exactly round(S* N) weights pruned`);
    // the rule: a larger layer is at least as sparse (up to rounding of one weight), and the smallest (the first
    // conv, 144 weights) is far below the target
    const smallest = res.layers.reduce((a, b) => (b.params < a.params ? b : a));
    assert.ok(smallest.sparsity < 0.4, `${key}: the smallest layer (${smallest.params} weights) at ${smallest.sparsity}`);
    for (const a of res.layers) for (const b of res.layers) if (a.params > b.params) assert.ok(a.sparsity >= b.sparsity - 1 / b.params, `${key}: a layer of ${a.params} at ${a.sparsity}, one of ${b.params} at ${b.sparsity}`);
  }
  const history = readJson<Array<{ terms: Record<string, number> }>>(join(out, 'cells', 'fcpts-s0.8-seed0', 'history.json'));
  assert.ok(history.length >= 1, 'empty fcpts history');
  for (const h of history) {
    assert.ok('attention' in h.terms, `history terms ${Object.keys(h.terms).join(', ')} lack attention`);
    assert.ok(Number.isFinite(h.terms.attention) && h.terms.attention >= 0 && h.terms.attention <= 4, `attention ${h.terms.attention}`);
  }
  console.log(`examples/plugin smoke grid: ${want.length} cells in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${BACKEND}`);
});

test('prune --plugin <missing file> exits 2 with one line naming the file', () => {
  const missing = join(dir, 'no-such-plugin.js');
  const r = spawnSync(process.execPath, [CLI, 'prune', '--plugin', missing, '--model', 'fmnist-resnet20', '--method', 'lamp', '--sparsity', '0.8'], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, PTSLAB_BACKEND: BACKEND },
  });
  assert.is(r.status, 2, `exit ${r.status}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, `stderr: ${r.stderr}`);
  assert.is(lines[0], `plugin ${missing}: file not found`);
});

// --- the plugin in process --------------------------------------------------------------------------------------

test('loading the plugin into a forked registry registers attention and size-power there only', async () => {
  const reg = new Registry();
  assert.not.ok(reg.terms().has('attention'));
  const rec = await loadPlugin(PLUGIN, { registry: reg });
  assert.is(rec.sha256, sha256(PLUGIN));
  assert.ok(reg.terms().has('attention'), `terms: ${[...reg.terms().keys()].join(', ')}`);
  assert.ok(reg.hasMethod('size-power'), `methods: ${reg.methodNames().join(', ')}`);
  assert.is(reg.terms().get('attention')!.source, rec.path);
  assert.is(reg.method('size-power').source, rec.path);
  assert.is(reg.method('size-power').bnRecal, 'one-shot');
  assert.ok(reg.oneShotNames().includes('size-power'));
  assert.ok(reg.methodLabels().includes('size-power+bnrecal'));
  // the process-wide registry and a registry forked before the load are untouched
  assert.not.ok(registry.hasMethod('size-power'));
  assert.not.ok(new Registry().terms().has('attention'));
  // loading the same file again is a no-op
  assert.equal(await loadPlugin(PLUGIN, { registry: reg }), rec);
});

test('attention: 0 for identical features, in [0, 4], differentiable in the student, options validated', async () => {
  const reg = new Registry();
  await loadPlugin(PLUGIN, { registry: reg });
  const spec = reg.terms().get('attention')!;
  assert.equal(spec.needs!({}), { modules: 'blocks' });
  assert.equal(spec.needs!({ modules: 'layer3.2' }), { modules: ['layer3.2'] });
  assert.equal(spec.needs!({ modules: ['a', 'b'] }), { modules: ['a', 'b'] });
  const obj = objectiveFromConfig({ terms: { attention: { weight: 1 } } }, reg.terms());
  assert.equal(obj.attention.needs, { modules: 'blocks' });

  const same = fakeContext();
  const z = evaluateObjective(obj, { ...same, teacherFeatures: same.studentFeatures }).values.attention;
  assert.ok(Math.abs(z) < 1e-6, `identical features give ${z}`);

  manualSeed(5);
  const s = new Map([['a', randn([2, 4, 3, 3], { requiresGrad: true })], ['b', randn([2, 8, 2, 2], { requiresGrad: true })]]);
  const ctx = fakeContext({ student: s });
  const v = evaluateObjective(obj, ctx).values.attention;
  assert.ok(v > 0 && v <= 4, `attention ${v}`);
  // by hand: per module and image, Q = A / ||A||, A = mean_c f^2; mean over images of ||Q_s - Q_t||^2; mean over modules
  const byHand = (f: Tensor) => {
    const [B, C] = f.shape;
    const HW = f.size / (B * C);
    const x = f.toArray();
    return Array.from({ length: B }, (_, b) => {
      const a = Array.from({ length: HW }, (_, p) => {
        let m = 0;
        for (let c = 0; c < C; c++) m += x[(b * C + c) * HW + p] ** 2;
        return m / C;
      });
      const norm = Math.sqrt(a.reduce((q, y) => q + y * y, 0));
      return a.map((y) => y / norm);
    });
  };
  let want = 0;
  for (const m of ['a', 'b']) {
    const qs = byHand(s.get(m)!);
    const qt = byHand(ctx.teacherFeatures.get(m)!);
    want += qs.reduce((acc, row, b) => acc + row.reduce((q, y, p) => q + (y - qt[b][p]) ** 2, 0), 0) / qs.length;
  }
  want /= 2;
  assert.ok(Math.abs(v - want) < 1e-5 * Math.max(1, want), `attention ${v}, by hand ${want}`);
  const total = evaluateObjective(obj, ctx).total;
  total.backward();
  for (const [m, t] of s) {
    assert.ok(t.grad, `no gradient to student features '${m}'`);
    const g = t.grad!.toArray();
    assert.ok(g.every(Number.isFinite) && g.some((x) => x !== 0), `gradient of '${m}' is zero or not finite`);
  }
  // a named subset, and a bad option (an unknown key) names the term
  const one = objectiveFromConfig({ terms: { attention: { weight: 1, modules: ['b'] } } }, reg.terms());
  assert.ok(Number.isFinite(evaluateObjective(one, fakeContext()).values.attention));
  try {
    objectiveFromConfig({ terms: { attention: { weight: 1, modlues: ['b'] } } }, reg.terms());
    assert.unreachable('a misspelt option was accepted');
  } catch (e) {
    assert.instance(e, ArgumentError);
    assert.match((e as Error).message, /objective\.terms\.attention/);
  }
});

test('size-power: exact count, larger layers sparser, alpha 0 is uniform, sMax caps, options validated', async () => {
  const reg = new Registry();
  await loadPlugin(PLUGIN, { registry: reg });
  const m = reg.method('size-power');
  manualSeed(2);
  const layers = prunableLayers(buildModel('resnet20', { numClasses: 10, inChannels: 1, inputSize: 28 }));
  const N = layers.reduce((s, l) => s + l.weight.size, 0);
  const run = async (sparsity: number, o: Record<string, unknown>) => {
    const ctx = { layers, sparsity } as unknown as MethodContext;
    const parsed = m.options.parse(o);
    return (await m.run(ctx, parsed)).masks.map((k, i) => ({ n: layers[i].weight.size, pruned: prunedCount(k) }));
  };
  for (const [S, o] of [[0.8, {}], [0.5, { alpha: 1 }], [0.95, { alpha: 2, sMax: 0.97 }]] as const) {
    const got = await run(S, o);
    assert.is(got.reduce((s, x) => s + x.pruned, 0), Math.round(S * N), `S ${S} ${JSON.stringify(o)}: not exactly round(S* N)`);
    for (const a of got) for (const b of got) if (a.n > b.n) assert.ok(a.pruned / a.n >= b.pruned / b.n - 1 / b.n, `S ${S}: larger layer less sparse`);
    const sMax = (o as { sMax?: number }).sMax ?? 0.99;
    for (const x of got) assert.ok(x.pruned <= Math.ceil(sMax * x.n), `S ${S}: a layer above sMax ${sMax}: ${x.pruned}/${x.n}`);
  }
  const first = (await run(0.8, {}))[0];
  assert.ok(first.pruned / first.n < 0.2, `default alpha 0.5: the first conv (${first.n} weights) at ${first.pruned / first.n}`);
  for (const x of await run(0.6, { alpha: 0 })) assert.ok(Math.abs(x.pruned / x.n - 0.6) <= 1 / x.n, `alpha 0: layer at ${x.pruned / x.n}`);
  assert.not.ok(m.options.safeParse({ alpha: -1 }).success, 'alpha -1 accepted');
  assert.not.ok(m.options.safeParse({ beta: 1 }).success, 'an unknown key accepted');
});

// --- bad plugins ------------------------------------------------------------------------------------------------

test('bad plugins are rejected with a one-line PluginError `plugin <path>: ...` naming the problem', async () => {
  const missing = join(dir, 'missing.mjs');
  assert.match((await rejection(missing)).message, /file not found/);

  assert.match((await rejection(pluginFile('export const notAPlugin = 1;\n'))).message, /no default export function/);
  assert.match((await rejection(pluginFile('export default { registerTerm: 1 };\n'))).message, /no default export function.*got object/);

  // a registration that throws: nothing it registered before stays
  const reg = new Registry();
  const throwing = pluginFile(`export default function (api) {
  api.registerTerm({ name: 'halfway', description: 'x', options: api.z.strictObject({}), make: () => (ctx) => ctx.globalSparsity });
  throw new Error('boom in the plugin');
}
`);
  const e = await rejection(throwing, reg);
  assert.match(e.message, /registration failed after term halfway: boom in the plugin/);
  assert.not.ok(reg.terms().has('halfway'), 'a term of the failed plugin was kept');

  // a method named like a built-in
  const clash = pluginFile(`export default function (api) {
  api.registerMethod(api.oneShotMethod({ name: 'lamp', description: 'x', options: api.z.strictObject({}), allocate: (layers) => ({ sparsities: layers.map(() => 0.5) }) }));
}
`);
  const c = await rejection(clash, reg);
  assert.match(c.message, /'lamp' is already registered \(a built-in method\)/);
  assert.ok(reg.method('lamp').source === undefined, 'the built-in lamp was replaced');

  // a term named like a built-in, an invalid spec, a broken import, nothing registered
  assert.match((await rejection(pluginFile(`export default (api) => api.registerTerm({ name: 'kl', description: 'x', options: api.z.strictObject({}), make: () => () => null });\n`))).message, /term 'kl' is already registered \(a built-in term\)/);
  assert.match((await rejection(pluginFile(`export default (api) => api.registerMethod(api.oneShotMethod({ name: 'Bad Name', description: 'x', options: api.z.strictObject({}), allocate: () => ({ counts: [] }) }));\n`))).message, /'Bad Name'.*lower-case/);
  assert.match((await rejection(pluginFile('export default function (api) {\n'))).message, /cannot be imported/);
  assert.match((await rejection(pluginFile('export default function (api) {}\n'))).message, /registered no method and no term/);
});

test('a plugin term giving a non-scalar or NaN fails naming the term and the plugin file', async () => {
  const reg = new Registry();
  const file = pluginFile(`export default function (api) {
  const none = api.z.strictObject({});
  api.registerTerm({ name: 'vector', description: 'not a scalar', options: none, make: () => (ctx) => ctx.studentLogits.sub(ctx.teacherLogits).abs() });
  api.registerTerm({ name: 'notANumber', description: 'NaN', options: none, make: () => (ctx) => ctx.globalSparsity.mul(0).div(0).sum() });
  api.registerTerm({ name: 'notATensor', description: 'a number', options: none, make: () => () => 0.5 });
}
`);
  const rec = await loadPlugin(file, { registry: reg });
  assert.is(rec.path, file);
  const fails = (name: string, cls: new (...a: any[]) => Error, what: RegExp) => {
    const obj = objectiveFromConfig({ terms: { [name]: { weight: 1 } } }, reg.terms());
    try {
      evaluateObjective(obj, fakeContext());
    } catch (e) {
      assert.instance(e, cls, `${name}: ${(e as Error).name}: ${(e as Error).message}`);
      const msg = (e as Error).message;
      assert.ok(msg.includes(`'${name}'`), `${name}: message does not name the term: ${msg}`);
      assert.ok(msg.includes(file), `${name}: message does not name the plugin file: ${msg}`);
      assert.match(msg, what);
      return;
    }
    assert.unreachable(`${name}: evaluated`);
  };
  fails('vector', ArgumentError, /must return a scalar, got shape \[2,10\]/);
  fails('notANumber', NumericError, /is NaN at iteration 7/);
  fails('notATensor', ArgumentError, /must return a scalar Tensor, got number/);
});

test.run();
