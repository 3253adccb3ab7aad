// The training CLI end to end (compiled dist/scripts/cli.js in child processes): `ptslab eval --json` prints exactly
// one { top1, top5, count } object; `ptslab models --json` lists the three bundled models with top1 null exactly when
// the weights are missing (and loadBundledModel then fails naming the file); usage errors exit 2.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manualSeed } from '../core/index.js';
import { saveSafetensors } from '../nn/index.js';
import { buildModel } from '../nn/train/index.js';
import { BundledModelError, loadBundledModel, listBundledModels } from '../experiments/models/index.js';

const CLI = fileURLToPath(new URL('../scripts/cli.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, PTSLAB_BACKEND: 'cpu' } });

test('eval --json prints exactly one { top1, top5, count } object', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-eval-'));
  manualSeed(1);
  const w = join(dir, 'r20.safetensors');
  saveSafetensors(w, buildModel('resnet20', { numClasses: 10, inChannels: 1, inputSize: 28 }).stateDict());
  const r = run('eval', '--arch', 'resnet20', '--weights', w, '--dataset', 'mnist', '--eval-images', '24', '--batch', '12', '--json');
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1, r.stdout);
  const o = JSON.parse(lines[0]);
  assert.equal(Object.keys(o).sort(), ['count', 'top1', 'top5']);
  assert.is(o.count, 24);
  // percentages of 24 images: a whole number of hits each
  for (const k of ['top1', 'top5']) assert.ok(o[k] >= 0 && o[k] <= 100 && Math.abs((o[k] * 24) / 100 - Math.round((o[k] * 24) / 100)) < 1e-9, `${k} ${o[k]}`);
  assert.ok(o.top5 >= o.top1);
});

test('models --json lists the bundled models; top1 is null exactly while untrained', () => {
  const r = run('models', '--json');
  assert.is(r.status, 0, r.stderr);
  const list = JSON.parse(r.stdout) as Array<{ name: string; arch: string; dataset: string; top1: number | null }>;
  assert.equal(list.map((m) => m.name), ['fmnist-resnet20', 'fmnist-mobilenetv2', 'mnist-resnet20']);
  assert.equal(list.map((m) => [m.arch, m.dataset]), [['resnet20', 'fashion-mnist'], ['mobilenetv2', 'fashion-mnist'], ['resnet20', 'mnist']]);
  for (const [i, info] of listBundledModels().entries()) {
    assert.equal(Object.keys(list[i]).sort(), ['arch', 'dataset', 'name', 'top1']);
    assert.is(existsSync(info.weights), info.trained);
    if (!info.trained) {
      assert.is(list[i].top1, null);
      assert.throws(() => loadBundledModel(info.name), (e: unknown) => e instanceof BundledModelError && (e as Error).message.includes(info.weights));
    } else {
      assert.type(list[i].top1, 'number');
      assert.is(loadBundledModel(info.name).model.training, false);
    }
  }
});

test('usage errors exit 2 with one line; a missing weights file exits 1', () => {
  const bad = run('eval', '--model', 'no-such-model');
  assert.is(bad.status, 2);
  const missing = run('eval', '--arch', 'resnet20', '--dataset', 'mnist');
  assert.is(missing.status, 2);
  assert.is(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  const gone = run('eval', '--arch', 'resnet20', '--weights', '/nonexistent/w.safetensors', '--dataset', 'mnist', '--eval-images', '1');
  assert.is(gone.status, 1);
  assert.match(gone.stderr, /\/nonexistent\/w\.safetensors/);
  const noDir = run('train', '--arch', 'resnet20', '--dataset', 'cifar10', '--epochs', '1');
  assert.is(noDir.status, 2);
  assert.match(noDir.stderr, /--data-dir/);
});

test.run();
