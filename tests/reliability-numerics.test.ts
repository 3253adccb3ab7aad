// Non-finite numbers stop work loudly, never silently: `ptslab train` with an exploding learning rate exits 1 with
// one line naming the iteration and the tensor, leaving a finite checkpoint of the last good iteration; pruning a
// model whose weights hold a NaN, or FCPTS driven to overflow, fails with a PtslabError naming where (and writes no
// result.json), where before evaluate() counted NaN logits as correct answers (top-1 100%).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import '../core/backend/all.js';
import { selectBackend } from '../core/backend/select.js';
import { fromStorage, PtslabError } from '../core/index.js';
import { runCell, type CellSpec } from '../experiments/prune-cell.js';
import { loadSafetensors, readSafetensors, saveSafetensors } from '../nn/index.js';
import { applicableConfig, type PruneConfig } from '../sparsity/index.js';
import { cli, tmp, writeRandomResnet20, writeTinyMnist } from './reliability-common.js';

const dir = tmp('numerics');
const data = writeTinyMnist(join(dir, 'mnist'), 16, 8);
const weights = writeRandomResnet20(join(dir, 'w.safetensors'), 2);

test('train: an exploding learning rate stops with the iteration and tensor named, exit 1, a finite last checkpoint', async () => {
  const out = join(dir, 'train');
  const r = await cli(['train', '--arch', 'resnet20', '--dataset', 'mnist', '--data-dir', data, '--epochs', '1', '--batch', '8', '--lr', '1e30', '--warmup-epochs', '0', '--checkpoint-every', '1', '--out', out]);
  assert.is(r.status, 1, r.stderr);
  const line = r.stderr.trim();
  assert.is(line.split('\n').length, 1, line);
  assert.match(line, /^NonFiniteError: .*iteration \d+/);
  assert.match(line, /the loss|weight '|gradient of '/);
  const { tensors } = readSafetensors(join(out, 'checkpoint.safetensors'));
  for (const [k, t] of Object.entries(tensors)) assert.ok(t.toArray().every(Number.isFinite), `${k} is not finite in the last good checkpoint`);
});

const spec = (w: string, prune: Partial<PruneConfig>): CellSpec => ({
  model: null, arch: 'resnet20', weights: w, dataset: 'mnist', dataDir: data, evalImages: 8,
  // the options that apply to the method (a grid cell's view of its shared options)
  prune: applicableConfig({ method: 'uniform', sparsity: 0.5, iters: 3, calib: 16, batchSize: 8, ...prune }),
});

async function fails(s: CellSpec, out: string, pattern: RegExp): Promise<void> {
  try {
    await runCell(s, { out, commit: null, version: 'test' });
  } catch (e) {
    assert.instance(e, PtslabError, `${(e as Error).name}: ${(e as Error).message}`);
    assert.match((e as Error).message, pattern);
    assert.not.ok(existsSync(join(out, 'result.json')), 'a failed cell wrote result.json');
    return;
  }
  assert.unreachable(`${s.prune.method}: finished despite non-finite numbers`);
}

test('prune: a NaN in the dense weights fails (one-shot and FCPTS) instead of reporting an accuracy', async () => {
  selectBackend('cpu');
  const w = loadSafetensors(weights);
  const t = w['layer2.0.conv1.weight'];
  const a = Float32Array.from(t.toArray());
  a[5] = NaN;
  w['layer2.0.conv1.weight'] = fromStorage(a, [...t.shape]);
  const bad = join(dir, 'nan.safetensors');
  saveSafetensors(bad, w);
  for (const method of ['uniform', 'lamp', 'fcpts'] as const) await fails(spec(bad, { method }), join(dir, `nan-${method}`), /NaN/);
});

test('prune: FCPTS pushed to overflow (lr 1e30) stops naming the step', async () => {
  selectBackend('cpu');
  await fails(spec(weights, { method: 'fcpts', lr: 1e30 }), join(dir, 'overflow'), /(step|iteration) \d+/);
  assert.ok(readFileSync(weights).length > 0);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
