// `ptslab reproduce` on the committed quickstart results: a one-shot cell re-run from its cell.json gives its
// result.json exactly (top-1, dense top-1, zero count, every layer's sparsity), a tampered copy is caught field by
// field, and the CLI exits 1 on a difference and 2 on a bad selection.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../core/backend/all.js';
import { differences, reproduce } from '../experiments/runner/reproduce.js';

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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
