// Grid expansion (experiments/runner/grid.ts): cell counts and stable keys, +bnrecal labels, option precedence
// (options < methodOptions < ablation < smoke), the --only filter, and sharding: --shard i/n, SLURM and Kubernetes
// variables, and every cell in exactly one shard for any grid and shard count (fast-check).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig, validateConfig } from '../experiments/runner/config.js';
import { expandGrid, inShard, matchesOnly, parseOnly, parseShard, shardFromEnv, unmatchedOnly } from '../experiments/runner/grid.js';

const cfg = (extra: Record<string, unknown> = {}) =>
  validateConfig({ model: { arch: 'resnet20', weights: '/w', dataset: 'mnist' }, methods: ['fcpts', 'lamp', 'pot'], sparsities: [0.5, 0.9], seeds: [0, 1], ...extra }, 'g.yaml', { env: {}, checkFiles: false });

test('methods x sparsities x seeds, method-major, with stable keys', () => {
  const cells = expandGrid(cfg());
  assert.is(cells.length, 12);
  assert.equal(cells.slice(0, 4).map((c) => c.key), ['fcpts-s0.5-seed0', 'fcpts-s0.5-seed1', 'fcpts-s0.9-seed0', 'fcpts-s0.9-seed1']);
  assert.equal(cells.map((c) => c.index), [...Array(12).keys()]);
  assert.is(new Set(cells.map((c) => c.key)).size, 12);
  assert.equal(cells[4].spec.prune, { method: 'lamp', sparsity: 0.5, seed: 0, bnRecal: false });
  assert.equal(expandGrid(cfg()).map((c) => c.key), cells.map((c) => c.key), 'same config, same keys');
});

test('bnRecal adds +bnrecal cells for one-shot methods only', () => {
  const all = expandGrid(cfg({ methods: ['fcpts', 'uniform', 'lamp', 'pot'], bnRecal: true, seeds: [0], sparsities: [0.8] }));
  assert.equal(all.map((c) => c.key), ['fcpts-s0.8-seed0', 'uniform-s0.8-seed0', 'uniform+bnrecal-s0.8-seed0', 'lamp-s0.8-seed0', 'lamp+bnrecal-s0.8-seed0', 'pot-s0.8-seed0']);
  assert.equal(all.map((c) => c.spec.prune.bnRecal), [false, false, true, false, true, false]);
  assert.equal(all[4].spec.prune.method, 'lamp');
  const some = expandGrid(cfg({ methods: ['uniform', 'lamp'], bnRecal: ['lamp'], seeds: [0], sparsities: [0.8] }));
  assert.equal(some.map((c) => c.method), ['uniform', 'lamp', 'lamp+bnrecal']);
  const listed = expandGrid(cfg({ methods: ['erk', 'erk+bnrecal', 'fcpts+bnrecal'], seeds: [0], sparsities: [0.8] }));
  assert.equal(listed.map((c) => [c.method, c.spec.prune.method, c.spec.prune.bnRecal]), [['erk', 'erk', false], ['erk+bnrecal', 'erk', true], ['fcpts+bnrecal', 'fcpts', true]]);
});

test('options merge: shared < per-method < ablation < smoke; objective key by key', () => {
  const c = cfg({
    methods: ['fcpts', 'pot'], seeds: [0], sparsities: [0.9],
    options: { iters: 100, calib: 512, objective: { temperature: 4, lambda: 1 } },
    methodOptions: { fcpts: { iters: 200, objective: { lambda: 2 } }, pot: { potIters: 50 } },
    ablations: [{ name: 'base' }, { name: 'kde', methods: ['fcpts'], estimator: 'kde', objective: { control: 'pow2' } }],
    eval: { images: 1000 },
  });
  const cells = expandGrid(c);
  assert.equal(cells.map((x) => x.key), ['fcpts-s0.9-seed0-base', 'pot-s0.9-seed0-base', 'fcpts-s0.9-seed0-kde']);
  assert.equal(cells[0].spec.prune, { iters: 200, calib: 512, objective: { temperature: 4, lambda: 2 }, method: 'fcpts', sparsity: 0.9, seed: 0, bnRecal: false });
  assert.equal(cells[1].spec.prune.potIters, 50);
  assert.equal(cells[2].spec.prune.objective, { temperature: 4, lambda: 2, control: 'pow2' });
  assert.is(cells[2].spec.prune.estimator, 'kde');
  assert.is(cells[0].spec.evalImages, 1000);
  const smoke = expandGrid(c, { smoke: true });
  assert.equal([smoke[2].spec.prune.iters, smoke[2].spec.prune.calib, smoke[2].spec.prune.batchSize, smoke[1].spec.prune.potIters], [4, 64, 32, 5]);
  assert.is(smoke[0].spec.evalImages, 256);
  assert.is(smoke[2].spec.prune.estimator, 'kde', 'smoke keeps what it does not override');
  const own = expandGrid(cfg({ seeds: [0], sparsities: [0.9], smoke: { iters: 2, calib: 8, batchSize: 4, eval: { images: 8, crop: 64 } } }), { smoke: true });
  assert.equal([own[0].spec.prune.iters, own[0].spec.prune.calib, own[0].spec.prune.batchSize, own[0].spec.evalImages], [2, 8, 4, 8]);
  assert.equal(own[0].spec.imageSize, { crop: 64, resize: 73 });
});

test('--only selects by method, sparsity, seed, ablation or key; a|b and repeated keys mean either', () => {
  const cells = expandGrid(cfg());
  const pick = (s: string) => cells.filter((c) => matchesOnly(c, parseOnly(s))).map((c) => c.key);
  assert.equal(pick('method=lamp,sparsity=0.9'), ['lamp-s0.9-seed0', 'lamp-s0.9-seed1']);
  assert.equal(pick('method=lamp|pot,seed=1,sparsity=0.50'), ['lamp-s0.5-seed1', 'pot-s0.5-seed1']);
  assert.equal(pick('method=lamp,method=fcpts,seed=0,sparsity=0.5'), ['fcpts-s0.5-seed0', 'lamp-s0.5-seed0']);
  assert.equal(pick('key=pot-s0.9-seed0'), ['pot-s0.9-seed0']);
  assert.equal(pick('method=nope'), []);
  // every value must match some cell on its own: a misspelt alternative is reported, not silently dropped
  assert.equal(unmatchedOnly(cells, parseOnly('method=lamp|lmap,sparsity=0.9|0.95,seed=1')), ['method=lmap', 'sparsity=0.95']);
  assert.equal(unmatchedOnly(cells, parseOnly('method=lamp|pot,sparsity=0.50,key=pot-s0.9-seed0')), []);
  assert.throws(() => parseOnly('colour=red'), /key one of method, sparsity, seed, ablation, key/);
  assert.throws(() => parseOnly('method'), /expected key=value/);
});

test('--shard, SLURM and Kubernetes shard parsing', () => {
  assert.equal(parseShard('1/4'), { index: 1, count: 4, source: '--shard' });
  for (const bad of ['4/4', '1', 'a/b', '0/0', '-1/3']) assert.throws(() => parseShard(bad), /--shard/);
  assert.is(shardFromEnv({}), null);
  assert.equal(shardFromEnv({ SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '3' }), { index: 2, count: 3, source: 'SLURM' });
  assert.equal(shardFromEnv({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '1' }), { index: 2, count: 3, source: 'SLURM' });
  assert.throws(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '3' }), /outside 0..2/);
  assert.equal(shardFromEnv({ JOB_COMPLETION_INDEX: '1' }, 4), { index: 1, count: 4, source: 'Kubernetes' });
  assert.equal(shardFromEnv({ JOB_COMPLETION_INDEX: '1', PTSLAB_SHARDS: '2' }, 4), { index: 1, count: 2, source: 'Kubernetes' });
  assert.throws(() => shardFromEnv({ JOB_COMPLETION_INDEX: '1' }), /shard count/);
});

test('every cell lands in exactly one shard, for any grid and shard count', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), (nm, ns, nseed, shards) => {
      const methods = ['fcpts', 'uniform', 'lamp', 'erk'].slice(0, nm);
      const sparsities = [0.5, 0.6, 0.7, 0.8, 0.9].slice(0, ns);
      const cells = expandGrid(cfg({ methods, sparsities, seeds: [...Array(nseed).keys()] }));
      const counts = new Map<string, number>();
      for (let i = 0; i < shards; i++) for (const c of cells.filter((x) => inShard(x, { index: i, count: shards, source: 't' }))) counts.set(c.key, (counts.get(c.key) ?? 0) + 1);
      assert.is(counts.size, cells.length);
      assert.ok([...counts.values()].every((n) => n === 1));
    }),
    { numRuns: 60 },
  );
});

/** The cells of a shipped config (experiments/configs/<name>.yaml), file checks off. */
const load = (name: string) => expandGrid(loadConfig(fileURLToPath(new URL(`../../experiments/configs/${name}.yaml`, import.meta.url)), { env: {}, checkFiles: false }));

test('the shipped grids that --reuse fmnist-resnet20 share its cell specs where they overlap (benchmarks.sh copies them)', () => {
  const main = new Map(load('fmnist-resnet20').map((c) => [c.key, c.spec]));
  const seeds = load('fmnist-resnet20-seeds');
  const seed0 = seeds.filter((c) => c.seed === 0);
  assert.equal(seed0.map((c) => c.key), ['fcpts-s0.8-seed0', 'fcpts-s0.9-seed0', 'erk-kd-s0.8-seed0', 'erk-kd-s0.9-seed0']);
  for (const c of seed0) assert.equal(c.spec, main.get(c.key), c.key);
  // other seeds differ from seed 0 in the seed only
  for (const c of seeds.filter((x) => x.seed > 0)) {
    const s0 = main.get(c.key.replace(/seed\d+$/, 'seed0'))!;
    assert.equal(c.spec, { ...s0, prune: { ...s0.prune, seed: c.seed } }, c.key);
  }
  // the ablations' erk-kd rows are the benchmark's erk-kd cells
  const ablations = load('fmnist-resnet20-ablations').filter((c) => c.method === 'erk-kd');
  assert.ok(ablations.length >= 3);
  for (const c of ablations) assert.equal(c.spec, main.get(`erk-kd-s${c.sparsity}-seed0`), c.key);
});

test('every `grid <config> --only ...` line of experiments/benchmarks.sh names values that match cells of that config', () => {
  const script = readFileSync(fileURLToPath(new URL('../../experiments/benchmarks.sh', import.meta.url)), 'utf8');
  const lines = [...script.matchAll(/^grid (\S+) --only (\S+)/gm)];
  assert.ok(lines.length >= 10, `${lines.length} --only lines`);
  for (const [line, name, only] of lines) {
    const cells = load(name);
    const filter = parseOnly(only.replace(/^'|'$/g, '').replace(/\\\|/g, '|'));
    assert.equal(unmatchedOnly(cells, filter), [], line);
    assert.ok(cells.some((c) => matchesOnly(c, filter)), line);
  }
});

test.run();
