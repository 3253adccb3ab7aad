// A checkpoint as the common CIFAR ResNet code publishes it, end to end through the CLI: an option-A ResNet-20
// saved as torch.save writes it from nn.DataParallel (every key `module.`-prefixed, the classifier named `linear`,
// BatchNorm without num_batches_tracked) evaluates with `--shortcut A --rename linear.=fc.` to exactly the top-1 of
// the model it came from, prunes from the CLI and from a config, and goes back to a .pth; without the rename, the
// strict load is a usage error that says what is left over and which rename would fit.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { manualSeed, noGrad, type Tensor } from '../core/index.js';
import { selectBackend } from '../core/backend/select.js';
import { loadCheckpoint, models, saveTorch } from '../nn/index.js';
import { loadExperiment } from '../experiments/kit.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(root, 'dist', 'scripts', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'ptslab-published-'));
const test = suite('published checkpoints from the CLI');
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, PTSLAB_BACKEND: 'cpu' }, timeout: 300_000 });

// Train-free but not trivial: a ResNet-20 (option A) with the bundled fmnist model's stem and random blocks would
// be near chance; accuracy is not the point, equality is: the same weights must give the same top-1.
manualSeed(3);
const model = models.resnet20({ numClasses: 10, inChannels: 1, shortcut: 'A' });
noGrad(() => {
  for (const [k, t] of Object.entries(model.stateDict())) if (k.endsWith('running_var')) t.copy_(t.mul(0).add(0.5));
});
const published: Record<string, Tensor> = {};
for (const [k, t] of Object.entries(model.stateDict())) {
  if (k.endsWith('num_batches_tracked')) continue; // PyTorch < 0.4.1
  published[`module.${k.replace(/^fc\./, 'linear.')}`] = t;
}
const file = join(dir, 'resnet20-A.th');
saveTorch(file, published);
const base = ['--arch', 'resnet20', '--shortcut', 'A', '--weights', file, '--dataset', 'fashion-mnist'];

test('eval: the published file gives the top-1 of the model it came from', async () => {
  const r = cli('eval', ...base, '--rename', 'linear.=fc.', '--eval-images', '200', '--json');
  assert.is(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim()) as { top1: number; count: number };
  selectBackend('cpu');
  const exp = loadExperiment({ model: 'fmnist-resnet20' });
  const want = await exp.evaluate(model.eval(), { images: 200 });
  assert.is(got.count, 200);
  assert.is(got.top1, want.top1);
});

test('without the rename: a usage error naming what is left over and the rename that fits', () => {
  const r = cli('eval', ...base, '--eval-images', '8');
  assert.is(r.status, 2, r.stderr);
  const line = r.stderr.trim();
  assert.is(line.split('\n').length, 1, line);
  assert.match(line, /missing keys \(2\): fc\.weight, fc\.bias/);
  assert.match(line, /unexpected keys \(2\): linear\.weight, linear\.bias/);
  assert.match(line, /'linear\.=fc\.' \(2 keys\)/);
  const b = cli('eval', '--arch', 'resnet20', '--weights', file, '--dataset', 'fashion-mnist', '--rename', 'linear.=fc.', '--eval-images', '8');
  assert.is(b.status, 2, b.stderr);
  assert.match(b.stderr, /its keys look like resnet20 with shortcut A .*not resnet20 with shortcut B/);
});

test('prune from the CLI and from a config (FCPTS and baselines), and convert the result back to .pth', () => {
  const out = join(dir, 'pruned');
  const r = cli('prune', ...base, '--rename', 'linear.=fc.', '--method', 'global', '--sparsity', '0.6', '--bn-recal', '--calib', '32', '--batch', '16', '--eval-images', '32', '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { achievedSparsity: number; arch: string };
  assert.ok(Math.abs(res.achievedSparsity - 0.6) < 1e-5);
  const cfg = join(dir, 'grid.yaml');
  writeFileSync(cfg, `model: { arch: resnet20, shortcut: A, weights: ${file}, dataset: fashion-mnist, rename: ['linear.=fc.'] }\nmethods: [fcpts, lamp, erk-kd]\nsparsities: [0.5]\noptions: { calib: 32, batchSize: 16, iters: 3 }\neval: { images: 32 }\n`);
  const g = cli('run', cfg, '--out', join(dir, 'grid'));
  assert.is(g.status, 0, g.stderr);
  for (const key of ['fcpts-s0.5-seed0', 'lamp-s0.5-seed0', 'erk-kd-s0.5-seed0']) {
    const cell = JSON.parse(readFileSync(join(dir, 'grid', 'cells', key, 'result.json'), 'utf8')) as { achievedSparsity: number };
    assert.ok(Math.abs(cell.achievedSparsity - 0.5) < 1e-5, `${key}: ${cell.achievedSparsity}`);
  }
  const pth = join(dir, 'pruned.pth');
  const c = cli('convert', join(out, 'model.safetensors'), pth);
  assert.is(c.status, 0, c.stderr);
  const back = loadCheckpoint(pth);
  const zeros = Object.entries(back).filter(([k]) => k.endsWith('conv1.weight') || k.endsWith('conv2.weight')).reduce((n, [, t]) => n + t.toArray().filter((v) => v === 0).length, 0);
  assert.ok(zeros > 0, 'the pruned weights come back as zeros');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
