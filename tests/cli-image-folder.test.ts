// Any image folder from the command line: Fashion-MNIST images written as PNGs into DIR/train/<class>/ and
// DIR/val/<class>/ give, through `ptslab eval --dataset image-folder --mean --std`, exactly the top-1 the bundled
// model gets on the same images from the dataset itself (PNG is lossless; the folder's class order is the sorted
// folder names); `ptslab prune` runs on the folder; a folder whose class count differs from the model's head is a
// usage error naming both numbers, before any work.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Subset } from '../nn/data/index.js';
import { writeFashionFolder } from './helpers/fmnist-folder.js';
import { evaluate } from '../nn/train/index.js';
import { loadExperiment } from '../experiments/kit.js';
import { selectBackend } from '../core/backend/select.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(root, 'dist', 'scripts', 'cli.js');
const WEIGHTS = join(root, 'experiments', 'models', 'fmnist-resnet20', 'model.safetensors');
const dir = mkdtempSync(join(tmpdir(), 'ptslab-cli-folder-'));
const test = suite('image folders from the CLI');
const N_VAL = 120;

const writeSplit = (split: 'train' | 'test', sub: string, n: number, classes = 10) => writeFashionFolder(join(dir, sub), split, n, classes);

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, PTSLAB_BACKEND: 'cpu' }, timeout: 300_000 });
const folderArgs = (sub: string) => ['--arch', 'resnet20', '--weights', WEIGHTS, '--dataset', 'image-folder', '--data-dir', join(dir, sub), '--mean', '0.286', '--std', '0.353'];

test('eval on an image folder gives the top-1 of the same images from the dataset', async () => {
  const val = writeSplit('test', 'ten', N_VAL);
  writeSplit('train', 'ten', 64);
  const r = cli('eval', ...folderArgs('ten'), '--json');
  assert.is(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim()) as { top1: number; count: number };
  assert.is(got.count, N_VAL);
  selectBackend('cpu');
  const exp = loadExperiment({ model: 'fmnist-resnet20' });
  const want = await evaluate(exp.model, new Subset(exp.heldOut(), Int32Array.from(val)));
  assert.is(got.top1, want.top1, `folder ${got.top1}% vs dataset ${want.top1}% on the same ${N_VAL} images`);
  assert.ok(want.top1 > 80, `the bundled model should be accurate here: ${want.top1}`);
});

test('prune runs on the folder and writes its result', () => {
  const out = join(dir, 'pruned');
  const r = cli('prune', ...folderArgs('ten'), '--method', 'lamp', '--sparsity', '0.5', '--bn-recal', '--calib', '32', '--batch', '16', '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { dataset: string; achievedSparsity: number; evalImages: number };
  assert.is(res.dataset, 'image-folder');
  assert.is(res.evalImages, N_VAL);
  assert.ok(Math.abs(res.achievedSparsity - 0.5) < 1e-5);
});

test('a folder with another class count, or --mean for another dataset, is a usage error before work', () => {
  writeSplit('test', 'seven', 100, 7);
  writeSplit('train', 'seven', 100, 7);
  const r = cli('prune', ...folderArgs('seven'), '--method', 'lamp', '--sparsity', '0.5', '--out', join(dir, 'never'));
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr.trim(), /7 classes, the model's head has 10/);
  assert.not.match(r.stderr, /evaluating/);
  const m = cli('eval', '--model', 'fmnist-resnet20', '--mean', '0.5', '--std', '0.5');
  assert.is(m.status, 2, m.stderr);
  assert.match(m.stderr, /mean, std apply to dataset image-folder|image-folder/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
