// The browser page's run (web/run.ts) in Node, on the cpu backend, on a few images: the image-file format
// and its error, the events a page draws from (in order, with per-layer sparsities that average to the logged global
// sparsity), each cell as prune() and the CLI's result.json make it (exact sparsity, BN re-calibration for the
// one-shot baselines), a resumed run that skips finished cells and the dense evaluation, and the page's other models
// (their files, their dataset in the cells).

import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import { bundledModelInfo } from '../experiments/models/index.js';
import '../core/backend/all.js';
import { withBackend } from '../core/index.js';
import { DataError } from '../nn/data/types.js';
import { BundledModelError } from '../experiments/models/index.js';
import { IMAGE, PAGE_MODEL, PAGE_MODELS, pageConfig, pageFiles, parseImageSet, runPage, type ImageSet, type PageEvent } from '../web/run.js';
import { throwsMatching } from './helpers/throws.js';

/** n deterministic pseudo-images in the page's file format. */
function imageFile(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(4 + n * (IMAGE + 1));
  new DataView(b.buffer).setUint32(0, n, true);
  let s = seed;
  for (let i = 4; i < 4 + n * IMAGE; i++) b[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  for (let i = 0; i < n; i++) b[4 + n * IMAGE + i] = i % 10;
  return b;
}

test('parseImageSet reads the page format and names the file of a truncated one', () => {
  const s = parseImageSet(imageFile(3, 1), 'x.bin');
  assert.is(s.pixels.length, 3 * IMAGE);
  assert.equal([...s.labels], [0, 1, 2]);
  throwsMatching(() => parseImageSet(imageFile(3, 1).subarray(0, 100), 'data/calib.bin'), DataError, /data\/calib\.bin: 100 bytes is not an image set.*2359 bytes for 3 images/);
  throwsMatching(() => parseImageSet(new Uint8Array(2), 'data/test.bin'), DataError, /data\/test\.bin: 2 bytes/);
});

test('pageConfig: FCPTS with the page schedule, the one-shot baselines with BN re-calibration', () => {
  const calib: ImageSet = parseImageSet(imageFile(16, 2), 'c');
  assert.equal(pageConfig('fcpts', { sparsity: 0.8, iters: 5, batchSize: 8, calib }), { method: 'fcpts', sparsity: 0.8, seed: 0, calib: 16, batchSize: 8, iters: 5 });
  assert.equal(pageConfig('lamp', { sparsity: 0.8, iters: 5, batchSize: 8, calib }), { method: 'lamp', sparsity: 0.8, seed: 0, calib: 16, batchSize: 8, bnRecal: true });
});

// on the cpu backend: the flow is what is tested here (the reference takes 6 s per FCPTS iteration of this model)
test('runPage: events, exact cells with the CLI result fields, and a resumed run', () => withBackend('cpu', async () => {
  const weights = readFileSync(bundledModelInfo(PAGE_MODEL).weights);
  const calib = parseImageSet(imageFile(8, 3), 'calib');
  const test = parseImageSet(imageFile(8, 4), 'test');
  const events: PageEvent[] = [];
  const o = { model: PAGE_MODEL, weights, calib, test, sparsity: 0.7, iters: 2, batchSize: 4, methods: ['fcpts', 'erk'] as const, build: { version: 'v', commit: 'c0ffee' } };
  const report = await runPage(o, (e) => void events.push(e));
  const kinds = events.filter((e) => e.kind !== 'status').map((e) => (e.kind === 'begin' || e.kind === 'step' ? `${e.kind}:${e.method}` : e.kind === 'cell' ? `cell:${e.result.method}` : e.kind));
  assert.equal(kinds, ['dense', 'begin:fcpts', 'step:fcpts', 'step:fcpts', 'cell:fcpts', 'begin:erk', 'cell:erk']);
  const begin = events.find((e) => e.kind === 'begin')!;
  assert.ok(begin.kind === 'begin');
  const sizes = begin.layers.map((l) => l.params);
  const N = sizes.reduce((a, b) => a + b, 0);
  for (const e of events) {
    if (e.kind !== 'step') continue;
    assert.is(e.layers.length, sizes.length);
    // the global sparsity the loop logs is the size-weighted mean of the layer sparsities it reports
    const mean = e.layers.reduce((a, s, i) => a + (s * sizes[i]) / N, 0);
    assert.ok(Math.abs(mean - e.log.sparsity) < 1e-5, `step ${e.log.step}: mean of layers ${mean} vs logged ${e.log.sparsity}`);
    assert.ok(e.layers.every((s) => s >= 0 && s <= 1));
  }
  assert.is(report.cells.length, 2);
  for (const c of report.cells) {
    assert.is(c.zeroParams, Math.round(0.7 * c.prunableParams), `${c.method}: exact sparsity`);
    assert.is(c.prunableParams, N);
    assert.is(c.evalImages, 8);
    assert.is(c.denseTop1, report.denseTop1);
    assert.is(c.commit, 'c0ffee');
    assert.is(c.version, 'v');
    assert.is(c.model, PAGE_MODEL);
    assert.is(c.dataset, 'fashion-mnist');
    assert.is(c.layers.length, sizes.length);
    assert.ok(c.macs && c.macs.pruned < c.macs.dense, `${c.method}: pruned MACs below dense`);
  }
  assert.equal(report.cells[0].config, pageConfig('fcpts', o));
  assert.ok(report.cells[0].correction, 'FCPTS records its exact correction');
  assert.is(report.cells[1].config.bnRecal, true);
  const cellEvent = events.find((e) => e.kind === 'cell' && e.result.method === 'fcpts');
  assert.ok(cellEvent?.kind === 'cell' && cellEvent.history.length === 2);

  // resumed: FCPTS finished before, the dense top-1 known: only ERK runs, and it comes out the same
  const again: PageEvent[] = [];
  const resumed = await runPage({ ...o, done: [report.cells[0]], denseTop1: report.denseTop1 }, (e) => void again.push(e));
  assert.equal(again.filter((e) => e.kind !== 'status').map((e) => e.kind), ['begin', 'cell']);
  assert.equal(resumed.cells.map((c) => c.method), ['fcpts', 'erk']);
  assert.is(resumed.cells[1].top1, report.cells[1].top1);
  assert.equal(resumed.cells[1].layers, report.cells[1].layers);
}));

test('the page models: each with its weights file and its dataset\'s image files; another model runs with its dataset', () => withBackend('cpu', async () => {
  assert.equal([...PAGE_MODELS], ['fmnist-resnet20', 'mnist-resnet20', 'fmnist-mobilenetv2']);
  assert.equal(pageFiles('mnist-resnet20'), { weights: 'models/mnist-resnet20.safetensors', calib: 'data/mnist-calib.bin', test: 'data/mnist-test.bin' });
  assert.equal(pageFiles('fmnist-mobilenetv2'), { weights: 'models/fmnist-mobilenetv2.safetensors', calib: 'data/fashion-mnist-calib.bin', test: 'data/fashion-mnist-test.bin' });
  throwsMatching(() => pageFiles('nope'), BundledModelError, /unknown bundled model 'nope'/);
  const o = {
    model: 'mnist-resnet20', weights: readFileSync(bundledModelInfo('mnist-resnet20').weights), calib: parseImageSet(imageFile(8, 5), 'c'), test: parseImageSet(imageFile(8, 6), 't'),
    sparsity: 0.5, iters: 1, batchSize: 4, methods: ['lamp'] as const, build: { version: 'v', commit: null },
  };
  const r = await runPage(o, () => undefined);
  assert.equal(r.cells.map((c) => [c.model, c.dataset, c.zeroParams === Math.round(0.5 * c.prunableParams)]), [['mnist-resnet20', 'mnist', true]]);
}));

test.run();
