// PyTorch as the oracle for a whole evaluation: the bundled fmnist-resnet20, converted by `ptslab convert` to a .pth,
// evaluated by Debian's PyTorch on an image folder read the torchvision way (sorted class folders, sorted files, PIL
// decode, ToTensor, Normalize), gives the same predictions as `ptslab eval --dataset image-folder` on that folder.
// Without PyTorch the test is reported skipped with the reason.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFashionFolder } from './helpers/fmnist-folder.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(root, 'dist', 'scripts', 'cli.js');
const SCRIPTS = join(root, 'scripts');
const WEIGHTS = join(root, 'experiments', 'models', 'fmnist-resnet20', 'model.safetensors');
const PYTHON = process.env.PTSLAB_TORCH_PYTHON ?? '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import torch, PIL, numpy'], { encoding: 'utf8' });
const why = probe.error ? `${PYTHON} cannot run (${probe.error.message})` : probe.status !== 0 ? `${PYTHON} lacks torch, PIL or numpy (${(probe.stderr ?? '').trim().split('\n').pop()})` : null;
const test = suite('PyTorch on an image folder');
const dir = mkdtempSync(join(tmpdir(), 'ptslab-torch-folder-'));

// torchvision's ImageFolder + ToTensor + Normalize, written out (python3-torchvision is not a Debian dependency here)
const ORACLE = String.raw`
import json, os, sys
import numpy as np, torch
from PIL import Image
sys.path.insert(0, sys.argv[3])
from torch_cifar_resnet import CifarResNet
torch.set_num_threads(2)
root, weights = sys.argv[1], sys.argv[2]
model = CifarResNet(20, classes=10, in_channels=1)
model.load_state_dict(torch.load(weights), strict=True)
model.eval()
classes = sorted(d.name for d in os.scandir(root) if d.is_dir())
correct = total = 0
preds = []
for label, c in enumerate(classes):
    for dirpath, _, files in sorted(os.walk(os.path.join(root, c))):
        for f in sorted(files):
            img = np.asarray(Image.open(os.path.join(dirpath, f)).convert('L'), dtype=np.float32) / 255.0
            x = torch.from_numpy((img - 0.286) / 0.353)[None, None]
            with torch.no_grad():
                p = int(model(x).argmax(1))
            preds.append(p)
            correct += int(p == label)
            total += 1
print('RESULT ' + json.dumps({'top1': 100.0 * correct / total, 'count': total}))
`;

const run = why ? test.skip : test;
if (why) console.log(`SKIPPED torch-image-folder: ${why}`);
/** Convert a .safetensors to .pth with the CLI; ptslab's and PyTorch's top-1 of it on the folder. */
function bothTop1(safetensors: string, name: string): { ours: { top1: number; count: number }; theirs: { top1: number; count: number } } {
  const pth = join(dir, `${name}.pth`);
  const env = { ...process.env, PTSLAB_BACKEND: 'cpu' };
  const c = spawnSync(process.execPath, [CLI, 'convert', safetensors, pth], { cwd: root, encoding: 'utf8', env });
  assert.is(c.status, 0, c.stderr);
  const args = ['eval', '--arch', 'resnet20', '--weights', pth, '--dataset', 'image-folder', '--data-dir', dir, '--mean', '0.286', '--std', '0.353', '--json'];
  const e = spawnSync(process.execPath, [CLI, ...args], { cwd: root, encoding: 'utf8', env, timeout: 300_000 });
  assert.is(e.status, 0, e.stderr);
  writeFileSync(join(dir, 'oracle.py'), ORACLE);
  const t = spawnSync(PYTHON, [join(dir, 'oracle.py'), join(dir, 'val'), pth, SCRIPTS], { encoding: 'utf8', timeout: 300_000 });
  const line = (t.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `PyTorch oracle failed: ${t.stderr}`);
  const r = { ours: JSON.parse(e.stdout.trim()), theirs: JSON.parse(line!.slice(7)) };
  console.log(`  ${name}, ${r.ours.count} images: ptslab top-1 ${r.ours.top1}%, PyTorch ${r.theirs.top1}%`);
  return r;
}

run(`ptslab eval on an image folder gives PyTorch's top-1 on the same images, dense and pruned${why ? ` (PyTorch unavailable: ${why})` : ''}`, () => {
  writeFashionFolder(dir, 'test', 150);
  writeFashionFolder(dir, 'train', 100);
  const dense = bothTop1(WEIGHTS, 'dense');
  assert.is(dense.ours.count, dense.theirs.count);
  assert.is(dense.ours.top1, dense.theirs.top1);
  assert.ok(dense.ours.top1 > 80, `the bundled model is accurate on its own data: ${dense.ours.top1}%`);
  // pruned on the folder by ptslab, then back into PyTorch
  const out = join(dir, 'pruned');
  const p = spawnSync(process.execPath, [CLI, 'prune', '--arch', 'resnet20', '--weights', WEIGHTS, '--dataset', 'image-folder', '--data-dir', dir, '--mean', '0.286', '--std', '0.353', '--method', 'lamp', '--sparsity', '0.6', '--bn-recal', '--calib', '64', '--batch', '32', '--out', out], { cwd: root, encoding: 'utf8', env: { ...process.env, PTSLAB_BACKEND: 'cpu' }, timeout: 300_000 });
  assert.is(p.status, 0, p.stderr);
  const pruned = bothTop1(join(out, 'model.safetensors'), 'pruned');
  assert.is(pruned.ours.top1, pruned.theirs.top1);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
