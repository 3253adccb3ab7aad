// The teacher-logit cache shared between the cells of one run (experiments/prune-cell.ts teacherKey): an FCPTS cell
// and then an erk-kd cell on the same model and calibration set run the teacher on each view once between them,
// and the erk-kd cell's files are byte-identical to those of the same cell run with a cache of its own; a cell with
// another calibration seed gets a cache of its own.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import '../core/backend/all.js';
import { selectBackend } from '../core/backend/select.js';
import { runCell, teacherKey, type CellSpec } from '../experiments/prune-cell.js';
import { applicableConfig } from '../sparsity/index.js';
import type { TeacherCache } from '../sparsity/teacher-cache.js';
import { tmp, writeRandomResnet20, writeTinyMnist } from './reliability-common.js';

const dir = tmp('teacher-share');
const data = writeTinyMnist(join(dir, 'mnist'), 32, 8);
const weights = writeRandomResnet20(join(dir, 'w.safetensors'), 5);
const spec = (method: string, seed = 3): CellSpec => ({
  model: null, arch: 'resnet20', weights, dataset: 'mnist', dataDir: data, evalImages: 8,
  prune: applicableConfig({ method, sparsity: 0.6, iters: 6, calib: 16, batchSize: 8, seed }),
});
const files = (out: string) => ({
  result: JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'), (k, v) => (k === 'seconds' ? undefined : v)),
  history: readFileSync(join(out, 'history.json'), 'utf8'),
  model: readFileSync(join(out, 'model.safetensors')),
});

test('fcpts then erk-kd on one calibration set share the teacher cache; erk-kd comes out byte-identical', async () => {
  selectBackend('cpu');
  const caches = new Map<string, TeacherCache>();
  const run = (s: CellSpec, out: string, shared?: Map<string, TeacherCache>) => runCell(s, { out: join(dir, out), commit: null, version: 'test', teacherCaches: shared });
  assert.is(teacherKey(spec('fcpts')), teacherKey(spec('erk-kd')), 'method and its options are not part of the key');
  assert.is.not(teacherKey(spec('fcpts')), teacherKey(spec('fcpts', 4)), 'the calibration seed is');
  await run(spec('fcpts'), 'fcpts', caches);
  assert.is(caches.size, 1);
  const cache = [...caches.values()][0];
  const first = cache.stats();
  assert.ok(first.misses > 0 && first.entries === first.misses, JSON.stringify(first));
  await run(spec('erk-kd'), 'erk-kd-shared', caches);
  const second = cache.stats();
  // the same 6 batches of 8 views: every one of erk-kd's 48 lookups is a hit, the teacher never runs
  assert.is(second.misses, first.misses, JSON.stringify(second));
  assert.is(second.hits - first.hits, 48);
  assert.is(second.teacherCalls, first.teacherCalls);
  await run(spec('erk-kd'), 'erk-kd-own');
  const [a, b] = [files(join(dir, 'erk-kd-shared')), files(join(dir, 'erk-kd-own'))];
  assert.equal(a.result, b.result);
  assert.is(a.history, b.history);
  assert.ok(Buffer.compare(a.model, b.model) === 0, 'model.safetensors differs');
  await run(spec('erk-kd', 4), 'erk-kd-seed4', caches);
  assert.is(caches.size, 2, 'another calibration seed, another cache');
});

test.run();
