// The shipped ImageNet configs run end to end: each of imagenet-{resnet18,resnet50,mobilenetv2}.yaml with --smoke on a
// synthetic ImageNet folder (makeSyntheticImageNet: 3 classes of real JPEGs, labels < 1000 are fine for top-1) and
// torchvision-shaped random weights (1000 classes), through the real CLI with the config's environment variables.
// --smoke shrinks a cell to 2 iterations on 8 images at crop 64 and 8 evaluation images. By default one FCPTS cell per
// config runs (about a minute in all on a busy 2-core CPU; FCPTS touches data, teacher, training, exact correction,
// evaluation); PTSLAB_IMAGENET_SMOKE_FULL=1 runs all six methods at 50% (several minutes: ResNet-50's POT alone takes
// minutes on this CPU).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manualSeed } from '../core/index.js';
import { saveSafetensors } from '../nn/index.js';
import { buildModel, type Arch } from '../nn/train/index.js';
import { makeSyntheticImageNet } from '../nn/data/index.js';
import type { CellResult } from '../experiments/prune-cell.js';

const CLI = fileURLToPath(new URL('../scripts/cli.js', import.meta.url));
const CONFIGS = fileURLToPath(new URL('../../experiments/configs', import.meta.url));
const FULL = process.env.PTSLAB_IMAGENET_SMOKE_FULL === '1';
const dir = mkdtempSync(join(tmpdir(), 'ptslab-imagenet-smoke-'));
const data = makeSyntheticImageNet(join(dir, 'imagenet'), { classes: 3, perClass: 3, size: 48, seed: 0 });

const MODELS: Array<[string, Arch, string]> = [
  ['imagenet-resnet18.yaml', 'resnet18', 'RESNET18_WEIGHTS'],
  ['imagenet-resnet50.yaml', 'resnet50', 'RESNET50_WEIGHTS'],
  ['imagenet-mobilenetv2.yaml', 'mobilenetv2', 'MOBILENETV2_WEIGHTS'],
];

for (const [file, arch, envVar] of MODELS) {
  test(`${file} --smoke runs end to end on synthetic ImageNet`, () => {
    manualSeed(0);
    const weights = join(dir, `${arch}.safetensors`);
    saveSafetensors(weights, buildModel(arch, { numClasses: 1000, inChannels: 3, inputSize: 224 }).stateDict());
    const out = join(dir, `out-${arch}`);
    const only = FULL ? 'sparsity=0.5' : 'method=fcpts,sparsity=0.5';
    const env = { ...process.env, PTSLAB_BACKEND: 'cpu', IMAGENET_DIR: data.root, [envVar]: weights };
    const r = spawnSync(process.execPath, [CLI, 'run', join(CONFIGS, file), '--smoke', '--only', only, '--out', out], { encoding: 'utf8', env });
    assert.is(r.status, 0, `${r.stderr}\n${r.stdout}`);
    const methods = FULL ? ['uniform', 'global-l2', 'erk', 'lamp', 'pot', 'fcpts'] : ['fcpts'];
    for (const m of methods) {
      const cell = join(out, 'cells', `${m}-s0.5-seed0`);
      const res = JSON.parse(readFileSync(join(cell, 'result.json'), 'utf8')) as CellResult;
      const spec = JSON.parse(readFileSync(join(cell, 'cell.json'), 'utf8')) as { spec: { imageSize: unknown; prune: { iters: number; calib: number } } };
      assert.is(res.arch, arch);
      assert.is(res.dataset, 'imagenet');
      assert.is(res.evalImages, Math.min(8, data.valCount));
      assert.ok(Math.abs(res.achievedSparsity - 0.5) < 1e-4, `${m}: ${res.achievedSparsity}`);
      assert.ok(res.top1 >= 0 && res.top1 <= 100);
      assert.equal(spec.spec.imageSize, { crop: 64, resize: 73 });
      assert.equal([spec.spec.prune.iters, spec.spec.prune.calib], [2, 8]);
    }
    assert.match(readFileSync(join(out, 'results.md'), 'utf8'), /^# imagenet-\S+ \(smoke run/);
    assert.ok(existsSync(join(out, 'top1-vs-sparsity.svg')));
    assert.ok(existsSync(join(out, 'fcpts-curves-s0.5.svg')));
    rmSync(out, { recursive: true });
    rmSync(weights);
  });
}

test.run();
