// The grid runner end to end on a random-weight ResNet-20 and MNIST (tiny settings: one-shot methods, 128 evaluation
// images): resume runs only the missing cell; two shards merged give the unsharded table; a failing cell is recorded
// and the others finish; results.md has the documented layout; the CLI exits 2 on a bad config (one line naming the
// key) and 1 when a cell failed.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../core/backend/all.js';
import { manualSeed, setBackend } from '../core/index.js';
import { saveSafetensors } from '../nn/index.js';
import { buildModel } from '../nn/train/index.js';
import { validateConfig } from '../experiments/runner/config.js';
import { expandGrid, inShard } from '../experiments/runner/grid.js';
import { makeProgress } from '../experiments/runner/progress.js';
import { runGrid } from '../experiments/runner/run.js';
import { resultsMarkdown, type CellRecord } from '../experiments/runner/results.js';
import { merge } from '../scripts/commands/merge.js';
import type { CellResult } from '../experiments/prune-cell.js';

setBackend('cpu');
const CLI = fileURLToPath(new URL('../scripts/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ptslab-run-'));
const weights = join(dir, 'r20.safetensors');
manualSeed(3);
saveSafetensors(weights, buildModel('resnet20', { numClasses: 10, inChannels: 1, inputSize: 28 }).stateDict());

const raw = (extra: Record<string, unknown> = {}) => ({
  name: 'tiny',
  model: { arch: 'resnet20', weights, dataset: 'mnist' },
  methods: ['uniform', 'lamp'],
  sparsities: [0.5, 0.9],
  options: { calib: 64, batchSize: 32 },
  eval: { images: 128 },
  ...extra,
});
const cfgOf = (extra: Record<string, unknown> = {}) => validateConfig(raw(extra), 'tiny.yaml');
const quiet = () => makeProgress(1, { tty: false, write: () => {} });
const go = (out: string, cells = expandGrid(cfgOf()), name = 'tiny') =>
  runGrid(cells, { out, meta: { name, smoke: false }, config: {}, commit: 'c0ffee', version: '0.0.0-test', progress: quiet() });

/** CSV without the seconds column (wall-clock time differs between runs). */
const csvNoSeconds = (p: string) => {
  const rows = readFileSync(p, 'utf8').trim().split('\n').map((l) => l.split(','));
  const k = rows[0].indexOf('seconds');
  return rows.map((r) => r.filter((_, i) => i !== k).join(','));
};

const A = join(dir, 'A');

test('a run writes every cell, tables and plots; a rerun after deleting one cell runs only that cell', async () => {
  const first = await go(A);
  assert.equal(first.ran, ['uniform-s0.5-seed0', 'uniform-s0.9-seed0', 'lamp-s0.5-seed0', 'lamp-s0.9-seed0']);
  for (const k of first.ran) for (const f of ['cell.json', 'result.json', 'history.json', 'model.safetensors']) assert.ok(existsSync(join(A, 'cells', k, f)), `${k}/${f}`);
  for (const f of ['results.json', 'results.csv', 'results.md', 'run.json', 'top1-vs-sparsity.svg', 'allocation-s0.9.svg']) assert.ok(existsSync(join(A, f)), f);
  assert.ok(readFileSync(join(A, 'top1-vs-sparsity.svg'), 'utf8').startsWith('<svg'));
  const r = JSON.parse(readFileSync(join(A, 'cells', 'lamp-s0.9-seed0', 'result.json'), 'utf8')) as CellResult;
  assert.is(r.evalImages, 128);
  assert.ok(Math.abs(r.achievedSparsity - 0.9) < 1e-3, String(r.achievedSparsity));
  const before = readFileSync(join(A, 'cells', 'uniform-s0.5-seed0', 'result.json'), 'utf8');
  rmSync(join(A, 'cells', 'lamp-s0.9-seed0'), { recursive: true });
  const again = await go(A);
  assert.equal(again.ran, ['lamp-s0.9-seed0']);
  assert.equal(again.skipped, ['uniform-s0.5-seed0', 'uniform-s0.9-seed0', 'lamp-s0.5-seed0']);
  assert.is(readFileSync(join(A, 'cells', 'uniform-s0.5-seed0', 'result.json'), 'utf8'), before, 'finished cells are not rerun');
  const rerun = JSON.parse(readFileSync(join(A, 'cells', 'lamp-s0.9-seed0', 'result.json'), 'utf8')) as CellResult;
  assert.is(rerun.top1, r.top1, 'same seed, same result');
  assert.is(again.cells.length, 4);
});

test('with resume off (npm start), every selected cell runs again and replaces its result', async () => {
  const cells = expandGrid(cfgOf()).filter((c) => c.method === 'uniform');
  const file = join(A, 'cells', 'uniform-s0.5-seed0', 'result.json');
  const old = JSON.parse(readFileSync(file, 'utf8')) as CellResult;
  writeFileSync(file, JSON.stringify({ ...old, top1: -1 }));
  const s = await runGrid(cells, { out: A, meta: { name: 'tiny', smoke: false }, config: {}, commit: 'c0ffee', version: '0.0.0-test', progress: quiet(), resume: false });
  assert.equal(s.ran, ['uniform-s0.5-seed0', 'uniform-s0.9-seed0']);
  assert.equal(s.skipped, []);
  const fresh = JSON.parse(readFileSync(file, 'utf8')) as CellResult;
  assert.is(fresh.top1, old.top1, 'the planted -1 is replaced by the rerun, which gives the same top-1');
  assert.is(s.cells.length, 4, 'cells outside the selection stay in the tables');
});

test('--reuse: a cell whose exact spec finished in another folder is copied, not run; other specs run', async () => {
  // an ablation grid whose `default` rows are A's lamp cells, plus a changed option that must run
  const cfg = cfgOf({ methods: ['lamp'], sparsities: [0.9], ablations: [{ name: 'default' }, { name: 'calib-32', calib: 32 }] });
  const out = join(dir, 'R');
  const s = await runGrid(expandGrid(cfg), { out, meta: { name: 'tiny-ablations', smoke: false }, config: {}, commit: 'c0ffee', version: '0.0.0-test', progress: quiet(), reuse: [A] });
  assert.equal(s.reused, ['lamp-s0.9-seed0-default']);
  assert.equal(s.ran, ['lamp-s0.9-seed0-calib-32']);
  const copied = join(out, 'cells', 'lamp-s0.9-seed0-default');
  assert.is(readFileSync(join(copied, 'result.json'), 'utf8'), readFileSync(join(A, 'cells', 'lamp-s0.9-seed0', 'result.json'), 'utf8'));
  assert.ok(existsSync(join(copied, 'model.safetensors')));
  const meta = JSON.parse(readFileSync(join(copied, 'cell.json'), 'utf8'));
  assert.is(meta.reusedFrom, join(A, 'cells', 'lamp-s0.9-seed0'));
  assert.is(meta.ablation, 'default');
  assert.is(meta.config, 'tiny-ablations');
  assert.equal(s.cells.map((c) => c.status), ['done', 'done']);
  const missing = await runGrid(expandGrid(cfg), { out, meta: { name: 'x', smoke: false }, config: {}, commit: null, version: '0', progress: quiet(), reuse: [join(dir, 'nowhere')] }).then(
    () => null,
    (e: Error) => e.message,
  );
  assert.match(missing ?? 'resolved', /reuse: .*nowhere is not a results folder/);
});

test('two shards merged equal the unsharded run', async () => {
  const cells = expandGrid(cfgOf());
  const B = [0, 1].map((i) => join(dir, `B${i}`));
  for (const [i, out] of B.entries()) {
    const mine = cells.filter((c) => inShard(c, { index: i, count: 2, source: 'test' }));
    assert.is(mine.length, 2);
    await go(out, mine);
  }
  const M = join(dir, 'M');
  const m = await merge(B, M);
  assert.is(m.cells, 4);
  assert.equal(csvNoSeconds(join(M, 'results.csv')), csvNoSeconds(join(A, 'results.csv')));
  const section = (p: string, title: string) => readFileSync(p, 'utf8').split('## ').find((s) => s.startsWith(title));
  for (const t of ['Top-1', 'Achieved sparsity']) assert.is(section(join(M, 'results.md'), t), section(join(A, 'results.md'), t));
  const strip = (p: string) => (JSON.parse(readFileSync(p, 'utf8')) as { cells: Array<{ result: { seconds?: number } }> }).cells.map((c) => ({ ...c, result: { ...c.result, seconds: 0 } }));
  assert.equal(strip(join(M, 'results.json')), strip(join(A, 'results.json')));
  assert.ok(existsSync(join(M, 'allocation-s0.9.svg')));
});

test('a failing cell is recorded, the others finish', async () => {
  const out = join(dir, 'F');
  const cells = expandGrid(cfgOf({ methods: ['fcpts', 'uniform'], sparsities: [0.5], methodOptions: { fcpts: { calib: 8, batchSize: 16, iters: 2 } } }));
  const s = await go(out, cells);
  assert.equal(s.ran, ['uniform-s0.5-seed0']);
  assert.equal(s.failed.map((f) => f.key), ['fcpts-s0.5-seed0']);
  assert.match(s.failed[0].error, /make no batch of 16/);
  const err = JSON.parse(readFileSync(join(out, 'cells', 'fcpts-s0.5-seed0', 'error.json'), 'utf8')) as { error: string };
  assert.is(err.error, s.failed[0].error);
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  assert.match(md, /\| fcpts \| failed \|/);
  assert.match(md, /## Failed cells\n\n- `fcpts-s0.5-seed0`: .*make no batch/);
});

const fake = (method: string, sparsity: number, seed: number, top1: number, ablation: string | null = null): CellRecord => ({
  key: `${method}-s${sparsity}-seed${seed}`, index: 0, method, sparsity, seed, ablation, config: 'x', status: 'done', dir: '/none',
  result: { method, model: 'm', arch: 'resnet20', dataset: 'mnist', targetSparsity: sparsity, achievedSparsity: sparsity, prunableParams: 100, zeroParams: 100 * sparsity, top1, denseTop1: 99, seconds: 1.25, seed, backend: 'cpu', commit: 'abc', version: '0.1.0', config: { method: 'uniform', sparsity }, evalImages: 1000, layers: [] } as CellResult,
});

test('results.md layout: rows = method (ablation in brackets), columns = sparsity, mean ± std over seeds', () => {
  const cells = [fake('fcpts', 0.5, 0, 90), fake('fcpts', 0.5, 1, 92), fake('fcpts', 0.9, 0, 80), fake('lamp', 0.5, 0, 85), fake('fcpts', 0.9, 0, 70, 'kde')];
  cells.push({ ...fake('lamp', 0.9, 0, 0), status: 'failed', result: undefined, error: 'boom' });
  cells[3] = { ...cells[3], result: { ...cells[3].result!, commit: 'def4567890abcdef' } }; // a grid resumed at a later commit
  const md = resultsMarkdown({ name: 'demo', smoke: false }, cells, ['top1-vs-sparsity.svg']);
  const lines = md.split('\n');
  assert.is(lines[0], '# demo');
  assert.ok(lines.includes('Backend cpu; version 0.1.0; commit abc, def4567.'), md);
  assert.ok(lines.includes('Dense top-1: 99.00% on 1000 images.'), md);
  assert.ok(lines.includes('6 cells: 5 done, 1 failed, 0 pending.'), md);
  const top = lines.indexOf('## Top-1 (%)');
  assert.equal(lines.slice(top, top + 7), [
    '## Top-1 (%)',
    '',
    '| method | 50% | 90% |',
    '| --- | ---: | ---: |',
    '| fcpts | 91.00 ± 1.41 (n=2) | 80.00 |',
    '| lamp | 85.00 | failed |',
    '| fcpts [kde] | – | 70.00 |',
  ]);
  assert.ok(lines.includes('## Achieved sparsity (%)') && lines.includes('## Seconds (sparsification, without evaluation)'));
  assert.ok(lines.includes('- `lamp-s0.9-seed0`: boom'));
  assert.ok(lines.includes('- [top1-vs-sparsity.svg](top1-vs-sparsity.svg)'));
  assert.match(resultsMarkdown({ name: 'demo', smoke: true }, cells), /^# demo \(smoke run/);
});

test('CLI: a bad config exits 2 with one line naming the key; a failed cell exits 1 listing it', () => {
  const env = { ...process.env, PTSLAB_BACKEND: 'cpu' };
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, `model: { arch: resnet20, weights: ${weights}, dataset: mnist }\nmethods: [uniform, lamp, magic]\nsparsities: [0.5]\n`);
  const r = spawnSync(process.execPath, [CLI, 'run', bad, '--out', join(dir, 'bad')], { encoding: 'utf8', env });
  assert.is(r.status, 2, r.stderr);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /methods\[2\]: expected one of fcpts, uniform/);
  const dry = spawnSync(process.execPath, [CLI, 'run', join(dir, 'tiny.json'), '--dry-run', '--only', 'method=lamp', '--shard', '1/2'], { encoding: 'utf8', env, input: '' });
  assert.is(dry.status, 2, 'missing config file is a usage error');
  writeFileSync(join(dir, 'tiny.json'), JSON.stringify(raw({ methods: ['fcpts', 'uniform'], sparsities: [0.5], methodOptions: { fcpts: { calib: 8, batchSize: 16 } } })));
  const list = spawnSync(process.execPath, [CLI, 'run', join(dir, 'tiny.json'), '--dry-run', '--shard', '1/2'], { encoding: 'utf8', env });
  assert.is(list.status, 0, list.stderr);
  assert.match(list.stdout, /uniform-s0.5-seed0/);
  assert.not.match(list.stdout, /fcpts-s0.5-seed0/);
  const typo = spawnSync(process.execPath, [CLI, 'run', join(dir, 'tiny.json'), '--dry-run', '--only', 'method=uniform|unifrom'], { encoding: 'utf8', env });
  assert.is(typo.status, 2, typo.stderr);
  assert.match(typo.stderr, /method=unifrom matches no cell of .*tiny\.json/);
  const fail = spawnSync(process.execPath, [CLI, 'run', join(dir, 'tiny.json'), '--out', join(dir, 'C')], { encoding: 'utf8', env });
  assert.is(fail.status, 1, fail.stderr);
  assert.match(fail.stderr, /1 cell\(s\) failed .*fcpts-s0.5-seed0/);
  assert.match(fail.stdout, /\| uniform \| \d+\.\d\d \|/);
  assert.match(fail.stdout, /results: .*results\.md/);
});

test.run();
