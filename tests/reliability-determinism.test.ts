// Determinism: the same config, seed and backend give byte-identical result files apart from timing fields.
// - prune: every method (and one with BN re-calibration) through runCell twice on the cpu backend, tiny sizes:
//   result.json equal apart from "seconds", history.json equal, model.safetensors identical bytes;
// - train: a small run of train() twice: identical model.safetensors and checkpoint tensors;
// - the cpu backend's worker pool: convolutions (dense, depthwise, strided; forward and both backward passes; the
//   GEMM and the direct paths), a large matmul and a batch norm with its backward, all big enough to be split across
//   workers, computed twice per process and in processes with PTSLAB_THREADS = 1, 2 and 3. The backend's promise
//   (core/backend/cpu/jobs.ts: every task writes a disjoint part of the output, no reductions across threads; a
//   channel's batch-norm sums are taken by one task; the direct weight gradient's partial sums are per fixed chunk of
//   images, added in chunk order) means bit-identical outputs whatever the thread count; checked.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../core/backend/all.js';
import { selectBackend } from '../core/backend/select.js';
import { manualSeed } from '../core/index.js';
import { runCell, type CellSpec } from '../experiments/prune-cell.js';
import { PRUNE_METHODS, allocate, applicableConfig, type PruneMethod } from '../sparsity/index.js';
import { buildModel, checkpointFile, loadDataset, train, type TrainConfig } from '../nn/train/index.js';
import { readSafetensors } from '../nn/index.js';
import { tmp, writeRandomResnet20, writeTinyMnist } from './reliability-common.js';

const dir = tmp('determinism');
const data = writeTinyMnist(join(dir, 'mnist'), 32, 8);
const weights = writeRandomResnet20(join(dir, 'w.safetensors'), 11);
let checks = 0;

const noTiming = (text: string) => JSON.parse(text, (k, v) => (k === 'seconds' ? undefined : v));

test('prune: every method twice on the cpu backend gives identical result.json (but seconds), history.json and model.safetensors', async () => {
  selectBackend('cpu');
  const variants: Array<{ method: PruneMethod; bnRecal: boolean }> = [...PRUNE_METHODS.map((method) => ({ method, bnRecal: false })), { method: 'lamp', bnRecal: true }];
  for (const { method, bnRecal } of variants) {
    // `given` prunes to a stated allocation: uniform's, by name
    const allocation = method === 'given' ? allocate(buildModel('resnet20', { numClasses: 10, inChannels: 1, inputSize: 28 }), { method: 'uniform', sparsity: 0.6 }) : undefined;
    const spec: CellSpec = { model: null, arch: 'resnet20', weights, dataset: 'mnist', dataDir: data, evalImages: 8, prune: applicableConfig({ method, sparsity: 0.6, iters: 2, calib: 16, batchSize: 8, potIters: 2, potImages: 8, seed: 4, bnRecal, allocation }) };
    const outs = [join(dir, `${method}${bnRecal ? '-bn' : ''}-a`), join(dir, `${method}${bnRecal ? '-bn' : ''}-b`)];
    const logs: string[] = [];
    for (const out of outs) await runCell(spec, { out, commit: null, version: 'test', log: (l) => logs.push(l) });
    if (method === 'pot') {
      // one progress line per reconstructed layer (a POT cell of the scaled grids runs for minutes)
      const lines = logs.filter((l) => l.startsWith('pot: layer '));
      assert.is(lines.length, 2 * 22, lines.join('\n'));
      assert.match(lines[21], /^pot: layer 22 fc\.weight: reconstruction loss \d\.\d{3}e[-+]\d+ after \d+ steps \(\d+ s\)$/);
    }
    const [a, b] = outs.map((o) => ({
      result: noTiming(readFileSync(join(o, 'result.json'), 'utf8')),
      history: readFileSync(join(o, 'history.json'), 'utf8'),
      model: readFileSync(join(o, 'model.safetensors')),
    }));
    assert.equal(a.result, b.result, `${method}: result.json`);
    assert.is(a.history, b.history, `${method}: history.json`);
    assert.ok(Buffer.compare(a.model, b.model) === 0, `${method}: model.safetensors differs`);
    checks += 3;
  }
  console.log(`  prune: ${variants.length} methods x 3 files compared`);
});

test('train: a small run twice gives byte-identical weights and checkpoint tensors', async () => {
  selectBackend('cpu');
  const config: TrainConfig = {
    arch: 'resnet20', dataset: 'mnist', dataDir: data, epochs: 1, lr: 0.05, batch: 8, wd: 5e-4, seed: 9, momentum: 0.9, nesterov: true,
    labelSmoothing: 0.1, warmupIters: 1, widthMult: null, checkpointEvery: 2, backend: 'cpu',
  };
  const outs = [join(dir, 'train-a'), join(dir, 'train-b')];
  for (const out of outs) {
    manualSeed(config.seed);
    const model = buildModel('resnet20', { numClasses: 10, inChannels: 1, inputSize: 28 });
    const r = await train({ config, out, model, train: loadDataset('mnist', 'train', { dataDir: data }), test: loadDataset('mnist', 'test', { dataDir: data }) });
    assert.ok(r.finished);
  }
  const [a, b] = outs.map((o) => readFileSync(join(o, 'model.safetensors')));
  assert.ok(Buffer.compare(a, b) === 0, 'model.safetensors differs between two identical runs');
  const [ca, cb] = outs.map((o) => readSafetensors(checkpointFile(o)).tensors);
  assert.equal(Object.keys(ca), Object.keys(cb));
  for (const k of Object.keys(ca)) assert.equal(ca[k].toArray(), cb[k].toArray(), k);
  checks += 2;
});

const core = fileURLToPath(new URL('../core/', import.meta.url));
/** A child computation on the cpu backend: computes everything twice, prints "same" or "differ", then a digest. */
const CHILD = `
import '${core}backend/all.js';
import { setBackend, manualSeed, randn, F, matmul, mul, mean, add } from '${core}index.js';
import { shutdownThreads, threadCount } from '${core}backend/cpu/index.js';
import { createHash } from 'node:crypto';
setBackend('cpu');
function once() {
  manualSeed(7);
  const x = randn([6, 16, 22, 22], { requiresGrad: true });
  const w = randn([40, 16, 3, 3], { requiresGrad: true });
  const dw = randn([16, 1, 5, 5], { requiresGrad: true });
  const pw = randn([24, 16, 1, 1], { requiresGrad: true });
  // w: GEMM forward and backward-input, direct weight gradient (16 -> 40 channels, 40 x 22 x 22 outputs per image);
  // w2: all three direct (16 x 22 x 22 outputs; 6 images = weight-gradient chunks of 4 and 2)
  const w2 = randn([16, 16, 3, 3], { requiresGrad: true });
  const y = F.conv2d(x, w, null, { padding: 1 });
  const y2 = F.conv2d(x, w2, null, { padding: 1 });
  const z = F.conv2d(x, dw, null, { padding: 2, stride: 2, groups: 16 });
  const s = F.conv2d(x, pw, null, { stride: 2 });
  const bn = F.batchNorm2d(y, null, null, null, null, { training: true });
  const m = matmul(randn([301, 257]), randn([257, 190]));
  // 8 * 16 * 48 * 48 = 294,912 elements: batch norm splits its channels across the pool
  const x2 = randn([8, 16, 48, 48], { requiresGrad: true });
  const g2 = randn([16], { requiresGrad: true }), b2 = randn([16], { requiresGrad: true });
  const bn2 = F.batchNorm2d(x2, null, null, g2, b2, { training: true });
  add(add(add(add(mean(mul(bn, bn)), mean(mul(z, z))), mean(mul(s, s))), mean(mul(bn2, x2))), mean(mul(y2, y2))).backward();
  const h = createHash('sha256');
  for (const t of [y, y2, z, s, bn, m, bn2, x.grad, w.grad, w2.grad, dw.grad, pw.grad, x2.grad, g2.grad, b2.grad]) { const a = t.toArray(); h.update(new Uint8Array(Float32Array.from(a).buffer)); }
  return h.digest('hex');
}
const a = once(), b = once();
console.log(JSON.stringify({ threads: threadCount(), same: a === b, digest: a }));
shutdownThreads();
`;

test('cpu backend: repeated computations are bit-identical, and PTSLAB_THREADS = 1, 2, 3 give the same bits', () => {
  // A file, not -e: the pool's workers inherit execArgv, and --input-type is refused there.
  const script = join(dir, 'cpu-child.mjs');
  writeFileSync(script, CHILD);
  const runs = [1, 2, 3].map((n) => {
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, PTSLAB_THREADS: String(n) } });
    assert.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { threads: number; same: boolean; digest: string };
  });
  runs.forEach((r, i) => {
    assert.is(r.threads, i + 1);
    assert.ok(r.same, `PTSLAB_THREADS=${r.threads}: two runs of the same computation differ`);
  });
  assert.is(new Set(runs.map((r) => r.digest)).size, 1, `digests differ across thread counts: ${runs.map((r) => `${r.threads}: ${r.digest.slice(0, 12)}`).join(', ')}`);
  checks += 4;
});

test.after(() => {
  console.log(`determinism: ${checks} checks, 0 failures`);
  rmSync(dir, { recursive: true, force: true });
});

test.run();
