// Usage errors before work: everything `ptslab prune` and `ptslab run` can know before they start is checked before
// the dense model is evaluated, and exits 2 with one line naming the flag, key, layer or file: method/option
// combinations (from the method registry), `--keep-dense` names, an allocation's layers and total, a checkpoint for
// another architecture (named from its keys), a missing plugin. "Before work" is asserted by the absence of the
// "evaluating the dense model" line and of any output folder.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(root, 'dist', 'scripts', 'cli.js');
const WEIGHTS = join(root, 'experiments', 'models', 'fmnist-resnet20', 'model.safetensors');
const dir = mkdtempSync(join(tmpdir(), 'ptslab-usage-'));
const test = suite('usage errors before work');

function cli(args: string[]): { status: number | null; stderr: string; out: string } {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  const r = spawnSync(process.execPath, [CLI, ...args, '--out', out], { cwd: root, encoding: 'utf8', env: { ...process.env, PTSLAB_BACKEND: 'reference' }, timeout: 120_000 });
  return { status: r.status, stderr: r.stderr, out };
}

const prune = (...extra: string[]) => ['prune', '--model', 'fmnist-resnet20', '--sparsity', '0.5', '--eval-images', '8', ...extra];

function usage(args: string[], pattern: RegExp): string {
  const r = cli(args);
  assert.is(r.status, 2, `exit ${r.status}: ${r.stderr}`);
  const line = r.stderr.trim();
  assert.is(line.split('\n').length, 1, line);
  assert.match(line, pattern);
  assert.not.match(line, /evaluating the dense model/);
  assert.not.ok(existsSync(r.out), 'nothing is written');
  return line;
}

const layerNames = ['conv1.weight', ...[1, 2, 3].flatMap((s) => [0, 1, 2].flatMap((b) => [`layer${s}.${b}.conv1.weight`, `layer${s}.${b}.conv2.weight`])), 'layer2.0.shortcut.0.weight', 'layer3.0.shortcut.0.weight', 'fc.weight'];

test('method and option combinations come from the registry', () => {
  usage(prune('--method', 'pot', '--bn-recal'), /--bn-recal does not apply to method pot/);
  usage(prune('--method', 'given'), /--allocation: method given needs an allocation/);
  const alloc = join(dir, 'alloc.json');
  writeFileSync(alloc, JSON.stringify({ 'conv1.weight': 0.5 }));
  usage(prune('--method', 'uniform', '--allocation', alloc), /--allocation does not apply to method uniform \(it applies to .*given/);
  usage(prune('--method', 'fcpts', '--pot-iters', '5'), /--pot-iters does not apply to method fcpts \(it applies to pot\)/);
  usage(prune('--method', 'lamp', '--lambda', '2'), /--lambda does not apply to method lamp/);
  usage(prune('--method', 'fcpts', '--term', 'nosuch=1'), /objective term 'nosuch' is not registered; registered terms: kl, mse, features, control/);
  usage(prune('--method', 'erk-kd', '--term', 'features=0.5,modules=["layer1.0","layer9"]'), /objective: the terms read module 'layer9', which resnet20 does not have/);
});

test('names that match nothing in the model, and allocations that do not fit it', () => {
  usage(prune('--method', 'lamp', '--keep-dense', 'fc', 'layer9.conv1'), /keepDense: no prunable layer named 'layer9.conv1'/);
  const wrong = join(dir, 'wrong-layers.json');
  writeFileSync(wrong, JSON.stringify(Object.fromEntries([...layerNames.slice(0, -1), 'classifier.weight'].map((n) => [n, 0.5]))));
  const line = usage(prune('--method', 'given', '--allocation', wrong), /allocation: does not match the model's \d+ prunable layers/);
  assert.match(line, /classifier\.weight/);
});

test('an allocation whose layers fit but whose total is not the target', async () => {
  const { loadExperiment, prunableLayers } = await import('../index.js');
  const exp = loadExperiment({ model: 'fmnist-resnet20' });
  const file = join(dir, 'total-off.json');
  writeFileSync(file, JSON.stringify(Object.fromEntries(prunableLayers(exp.model).map((l) => [l.name, 0.3]))));
  usage(prune('--method', 'given', '--allocation', file), /allocation: its layers total 30\.000% sparsity, the target is 50\.000%/);
});

test('a checkpoint for another architecture names the one its keys look like, in a short line', () => {
  const line = usage(['prune', '--arch', 'resnet18', '--weights', WEIGHTS, '--dataset', 'fashion-mnist', '--method', 'lamp', '--sparsity', '0.5'], /its keys look like resnet20 with shortcut B \(\d+ of \d+ keys\), not resnet18/);
  assert.match(line, /missing keys \(\d+\)/);
  assert.ok(line.length < 1200, `${line.length} characters`);
});

test('a missing plugin, and a config whose per-method options do not apply', () => {
  usage(prune('--method', 'lamp', '--plugin', join(dir, 'none.js')), /^plugin .*none\.js: file not found$/);
  const cfg = join(dir, 'grid.yaml');
  writeFileSync(cfg, 'model: fmnist-resnet20\nmethods: [uniform, fcpts]\nsparsities: [0.5]\nmethodOptions:\n  uniform: { iters: 5 }\n');
  usage(['run', cfg], /methodOptions\.uniform\.iters: applies to fcpts, erk-kd, not to uniform/);
  writeFileSync(cfg, 'model: fmnist-resnet20\nmethods: [given]\nsparsities: [0.5]\n');
  usage(['run', cfg], /cell given-s0\.5-seed0: allocation: method given needs an allocation/);
  // known only with the model loaded, still before any cell runs
  writeFileSync(cfg, 'model: fmnist-resnet20\nmethods: [lamp]\nsparsities: [0.5]\noptions: { keepDense: [nosuch] }\n');
  usage(['run', cfg], /cell lamp-s0\.5-seed0: keepDense: no prunable layer named 'nosuch'/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
