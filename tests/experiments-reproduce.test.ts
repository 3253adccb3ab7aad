// `ptslab reproduce` on the committed quickstart results: a one-shot cell re-run from its cell.json gives its
// result.json exactly (top-1, dense top-1, zero count, every layer's sparsity), a tampered copy is caught field by
// field, and the CLI exits 1 on a difference and 2 on a bad selection. The tolerance mode: sparsity counts exact,
// top-1 and layer sparsities within bands, histories compared by the means of each tenth of the run.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../core/backend/all.js';
import { compareCells, differences, historyDifferences, passes, reproduce } from '../experiments/runner/reproduce.js';

const CLI = fileURLToPath(new URL('../scripts/cli.js', import.meta.url));
const QUICKSTART = fileURLToPath(new URL('../../experiments/results/quickstart', import.meta.url));
const KEY = 'uniform+bnrecal-s0.9-seed0';

test('differences: exact numbers, NaN equals NaN, paths name the leaf', () => {
  assert.equal(differences({ a: [1, NaN, { b: 2 }] }, { a: [1, NaN, { b: 2 }] }, 'x'), []);
  assert.equal(differences({ a: [1, 2, { b: 2 }] }, { a: [1, 2 + 1e-12, { b: 3 }], c: 1 }, 'x'), [
    { field: 'x.a[1]', committed: 2, rerun: 2 + 1e-12 },
    { field: 'x.a[2].b', committed: 2, rerun: 3 },
    { field: 'x.c', committed: undefined, rerun: 1 },
  ]);
  assert.equal(differences([1, 2], [1], 'h'), [{ field: 'h.length', committed: 2, rerun: 1 }]);
});

test('a committed quickstart cell re-runs to its result exactly; a tampered copy is caught field by field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-repro-'));
  try {
    cpSync(join(QUICKSTART, 'cells', KEY), join(dir, 'cells', KEY), { recursive: true });
    const [same] = await reproduce(dir);
    assert.is(same.key, KEY);
    assert.is(same.backend, 'cpu');
    assert.equal(same.mismatches, [], 'the committed cell regenerates bit for bit');

    const file = join(dir, 'cells', KEY, 'result.json');
    const r = JSON.parse(readFileSync(file, 'utf8'));
    const top1 = r.top1, s1 = r.layers[1].sparsity;
    r.top1 += 0.2;
    r.layers[1].sparsity += 1e-9;
    r.seconds += 100; // timings are not compared
    writeFileSync(file, JSON.stringify(r));
    const cli = spawnSync(process.execPath, [CLI, 'reproduce', dir, '--json'], { encoding: 'utf8' });
    assert.is(cli.status, 1, cli.stderr);
    const [bad] = JSON.parse(cli.stdout) as Array<{ mismatches: Array<{ field: string; committed: number; rerun: number }> }>;
    assert.equal(bad.mismatches, [
      { field: 'top1', committed: top1 + 0.2, rerun: top1 },
      { field: 'layers[1].sparsity', committed: s1 + 1e-9, rerun: s1 },
    ]);
    // within the default bands (1 pp, 0.02): listed, marked within, exit 0; a band of 0.1 pp puts top-1 outside
    const tol = spawnSync(process.execPath, [CLI, 'reproduce', dir, '--tolerance'], { encoding: 'utf8' });
    assert.is(tol.status, 0, tol.stdout + tol.stderr);
    assert.match(tol.stdout, /2 difference\(s\), all within their bands/);
    assert.match(tol.stdout, new RegExp(`top1: committed ${top1 + 0.2}, re-run ${top1}  \\[within \\+-1 pp\\]`));
    assert.match(tol.stdout, /1 of 1 cell\(s\) reproduced within the bands/);
    const tight = spawnSync(process.execPath, [CLI, 'reproduce', dir, '--tolerance', '--top1-band', '0.1', '--json'], { encoding: 'utf8' });
    assert.is(tight.status, 1, tight.stderr);
    const [t] = JSON.parse(tight.stdout) as Array<{ mismatches: Array<{ field: string; within: boolean; band: string }> }>;
    assert.equal(t.mismatches.map((m) => [m.field, m.within, m.band]), [['top1', false, '+-0.1 pp'], ['layers[1].sparsity', true, '+-0.02']]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tolerance mode: sparsity counts exact, top-1 and layer sparsity in bands, a band flag without --tolerance is a usage error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-repro-tol-'));
  try {
    const src = join(QUICKSTART, 'cells', KEY);
    cpSync(src, join(dir, 'a'), { recursive: true });
    cpSync(src, join(dir, 'b'), { recursive: true });
    const file = join(dir, 'b', 'result.json');
    const r = JSON.parse(readFileSync(file, 'utf8'));
    r.zeroParams += 1;
    r.denseTop1 -= 0.4;
    r.layers[0].sparsity += 0.03;
    writeFileSync(file, JSON.stringify(r));
    const tol = { top1: 1, layerSparsity: 0.02, history: 0.1 };
    const m = compareCells(join(dir, 'a'), join(dir, 'b'), tol);
    assert.equal(m.map((x) => [x.field, x.band, x.within]), [
      ['zeroParams', 'exact', false],
      ['denseTop1', '+-1 pp', true],
      ['layers[0].sparsity', '+-0.02', false],
    ]);
    assert.not.ok(passes({ mismatches: m }));
    assert.ok(passes({ mismatches: [] }));
    // exact mode lists the same fields with no band, and fails
    assert.equal(compareCells(join(dir, 'a'), join(dir, 'b')).map((x) => [x.field, x.within]), [['zeroParams', undefined], ['denseTop1', undefined], ['layers[0].sparsity', undefined]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const usage = spawnSync(process.execPath, [CLI, 'reproduce', QUICKSTART, '--top1-band', '0.5'], { encoding: 'utf8' });
  assert.is(usage.status, 2);
  assert.match(usage.stderr, /--top1-band need --tolerance/);
});

test('historyDifferences: same steps and learning rates, window means within the band, every differing window listed', () => {
  const h = (n: number, f: (i: number) => number, lr = (i: number) => 0.01 * i) =>
    Array.from({ length: n }, (_, i) => ({ step: i, lr: lr(i), terms: { kl: f(i) }, loss: f(i), sparsity: 0.9 }));
  const base = h(100, (i) => 1 + Math.sin(i));
  assert.equal(historyDifferences(base, h(100, (i) => 1 + Math.sin(i))), []);
  // step-wise noise that averages out within each tenth: windows close, every one listed as within
  const noisy = historyDifferences(base, h(100, (i) => 1 + Math.sin(i) + (i % 2 ? 0.05 : -0.05)), 0.1);
  assert.ok(noisy.length > 0 && noisy.every((m) => m.within), JSON.stringify(noisy));
  assert.ok(noisy.every((m) => /^history\.(loss|terms\.kl)\[steps \d+-\d+\] mean$/.test(m.field)));
  // a drift in the last tenth is outside; the first nine tenths are identical and not listed
  const drift = historyDifferences(base, h(100, (i) => 1 + Math.sin(i) + (i >= 90 ? 0.5 : 0)), 0.1);
  assert.equal(drift.map((m) => [m.field, m.within]), [['history.loss[steps 90-99] mean', false], ['history.terms.kl[steps 90-99] mean', false]]);
  // a different length, step or learning rate is an exact mismatch
  assert.equal(historyDifferences(base, h(99, (i) => i)).map((m) => m.field), ['history.length']);
  assert.equal(historyDifferences(base, h(100, (i) => 1 + Math.sin(i), (i) => (i === 5 ? 1 : 0.01 * i)), 0.1).map((m) => [m.field, m.within]), [['history[5].lr', false]]);
});

test('reproduce: a folder without cells, a value that matches no finished cell and an empty selection are clear errors', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'reproduce', ...args], { encoding: 'utf8' });
  const none = run(tmpdir());
  assert.is(none.status, 1);
  assert.match(none.stderr, /not a results folder \(no cells\/ inside\)/);
  const nothing = run(QUICKSTART, '--only', 'sparsity=0.42');
  assert.is(nothing.status, 1);
  assert.match(nothing.stderr, /--only sparsity=0\.42 matches no finished cell/);
  // one misspelt alternative is named even though the other matches (it used to be dropped silently)
  const typo = run(QUICKSTART, '--only', 'method=lamp|lmap');
  assert.is(typo.status, 1);
  assert.match(typo.stderr, /--only method=lmap matches no finished cell/);
  assert.not.match(typo.stderr, /method=lamp[,\s]/);
  // values that each match, but no cell together: the selection is empty
  const empty = run(QUICKSTART, '--only', 'method=lamp,key=global-s0.9-seed0');
  assert.is(empty.status, 1);
  assert.match(empty.stderr, /no finished cell matches the selection/);
  const badKey = run(QUICKSTART, '--only', 'colour=red');
  assert.is(badKey.status, 2);
  assert.match(badKey.stderr, /--only: expected key=value/);
});

test.run();
