// The training loop (nn/train) on a tiny conv net and a synthetic 3-class 8x8 dataset, a few iterations each: the
// loss goes down; a run interrupted twice (mid-epoch and across an epoch end) and resumed ends with byte-identical
// weights and checkpoint state to an uninterrupted run; a NaN input stops the run with NonFiniteError naming the
// iteration and the tensor, leaving a finite checkpoint of the last good iteration; top-k counting.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../core/backend/all.js';
import { manualSeed, full, Generator, setBackend, type Tensor } from '../core/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, Module, ReLU, Sequential, loadSafetensors } from '../nn/index.js';
import { ArrayDataset, type Dataset } from '../nn/data/index.js';
import { NonFiniteError, checkpointFile, countHits, evaluate, readTrainState, train, type TrainConfig, type TrainState } from '../nn/train/index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'ptslab-train-'));

/** Replaces NaN by 0 in the forward pass only: the loss stays finite while gradients through it carry the NaN. */
class NanToZero extends Module {
  forward(x: Tensor): Tensor {
    return x.where(x.eq(x), 0);
  }
}

function tinyNet(seed = 0, nanToZero = false): Sequential {
  manualSeed(seed);
  const act = nanToZero ? [new NanToZero(), new ReLU()] : [new ReLU()];
  return new Sequential(new Conv2d(1, 6, 3, { padding: 1 }), new BatchNorm2d(6), ...act, new AdaptiveAvgPool2d(1), new Flatten(), new Dropout(0.3), new Linear(6, 3));
}

/** 3 classes of 8x8 grey images: bright top half, bright left half, dark with a bright centre; seeded noise. */
function toyData(n: number, seed: number, augment = true): ArrayDataset {
  const g = new Generator(seed);
  const px = new Uint8Array(n * 64);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = (labels[i] = i % 3);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const on = c === 0 ? y < 4 : c === 1 ? x < 4 : y >= 3 && y < 5 && x >= 3 && x < 5;
        px[i * 64 + y * 8 + x] = Math.min(255, (on ? 180 : 30) + Math.floor(g.uniform() * 60));
      }
    }
  }
  const transform = augment ? { steps: [{ op: 'randomCrop' as const, size: 8, padding: 1 }], normalize: { mean: [0.4], std: [0.3] } } : { steps: [], normalize: { mean: [0.4], std: [0.3] } };
  return new ArrayDataset('toy', px, labels, { height: 8, width: 8, channels: 1 }, ['a', 'b', 'c'], transform);
}

const cfg = (o: Partial<TrainConfig> = {}): TrainConfig => ({
  arch: 'tiny', dataset: 'toy', epochs: 2, lr: 0.1, batch: 16, wd: 5e-4, seed: 3, momentum: 0.9, nesterov: true,
  labelSmoothing: 0, warmupIters: 2, checkpointEvery: 0, backend: 'reference', ...o,
});

test('a short run lowers the loss and records each epoch', async () => {
  const out = tmp();
  const losses: number[] = [];
  const r = await train({ config: cfg({ epochs: 5 }), out, model: tinyNet(), train: toyData(96, 1), test: toyData(30, 2, false), onProgress: (p) => losses.push(p.loss) });
  assert.ok(r.finished);
  assert.is(losses.length, 30);
  const h = r.state.history;
  assert.is(h.length, 5);
  assert.ok(h[4].trainLoss < h[0].trainLoss, `epoch losses ${h.map((e) => e.trainLoss)}`);
  const first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[27] + losses[28] + losses[29]) / 3;
  assert.ok(last < first * 0.75, `loss ${first} -> ${last}`);
  const rec = JSON.parse(readFileSync(join(out, 'record.json'), 'utf8'));
  assert.is(rec.status, 'finished');
  assert.is(rec.epochs.length, 5);
  assert.is(rec.final.count, 30);
  assert.is(rec.seed, 3);
  // the saved weights reproduce the recorded held-out figure exactly
  const back = tinyNet(5);
  back.loadStateDict(loadSafetensors(join(out, 'model.safetensors')));
  const acc = await evaluate(back, toyData(30, 2, false));
  assert.equal({ top1: acc.top1, top5: acc.top5, count: acc.count }, rec.final);
  assert.not.ok(back.training);
});

for (const backendName of ['reference', 'cpu']) test(`--resume after interruptions gives byte-identical weights to an uninterrupted run (${backendName} backend)`, async () => {
  const prev = setBackend(backendName);
  try {
    const data = toyData(96, 1), held = toyData(30, 2, false);
    const a = tmp(), b = tmp();
    await train({ config: cfg({ backend: backendName }), out: a, model: tinyNet(), train: data, test: held });
    // 6 iterations per epoch: stop mid-epoch 1, then at iteration 9 (mid-epoch 2, after an epoch end), then finish.
    const r1 = await train({ config: cfg({ checkpointEvery: 2, backend: backendName }), out: b, model: tinyNet(), train: data, test: held, stopAfterStep: 4 });
    assert.not.ok(r1.finished);
    assert.is(readTrainState<TrainState>(checkpointFile(b)).step, 4);
    // fresh models built from other seeds: everything must come from the checkpoint
    const r2 = await train({ config: cfg({ checkpointEvery: 2, backend: backendName }), out: b, model: tinyNet(7), train: data, test: held, resume: true, stopAfterStep: 9 });
    assert.not.ok(r2.finished);
    assert.equal(readTrainState<TrainState>(checkpointFile(b)), { ...readTrainState<TrainState>(checkpointFile(b)), epoch: 1, batchInEpoch: 3, step: 9 });
    const r3 = await train({ config: cfg({ checkpointEvery: 2, backend: backendName }), out: b, model: tinyNet(8), train: data, test: held, resume: true });
    assert.ok(r3.finished);
    assert.ok(Buffer.compare(readFileSync(join(a, 'model.safetensors')), readFileSync(join(b, 'model.safetensors'))) === 0, 'final weights differ');
    const ra = JSON.parse(readFileSync(join(a, 'record.json'), 'utf8')), rb = JSON.parse(readFileSync(join(b, 'record.json'), 'utf8'));
    assert.equal(rb.epochs.map((e: { top1: number; trainLoss: number }) => [e.top1, e.trainLoss]), ra.epochs.map((e: { top1: number; trainLoss: number }) => [e.top1, e.trainLoss]));
  } finally {
    setBackend(prev);
  }
});

test('--resume refuses a checkpoint made with another config', async () => {
  const out = tmp();
  await train({ config: cfg(), out, model: tinyNet(), train: toyData(48, 1), test: toyData(6, 2, false), stopAfterStep: 1 });
  try {
    await train({ config: cfg({ lr: 0.2 }), out, model: tinyNet(), train: toyData(48, 1), test: toyData(6, 2, false), resume: true });
    assert.unreachable('resumed with another lr');
  } catch (e) {
    assert.match((e as Error).message, /lr=0\.1.*lr=0\.2/);
  }
});

for (const [what, hideNan, tensorName, why] of [
  ['loss', false, 'loss', /the loss is NaN/],
  // NanToZero hides the NaN from the loss, so the first conv's gradient is what goes NaN
  ['gradient', true, '0.weight.grad', /gradient of '0\.weight' is not finite/],
] as const) {
  test(`a NaN ${what} stops with NonFiniteError naming it and leaves the last good checkpoint`, async () => {
    const base = toyData(48, 1, false);
    const bad = 29;
    const poisoned: Dataset = {
      length: base.length, classes: base.classes, label: (i) => base.label(i), raw: (i) => base.raw(i),
      get: (i, seed) => (i === bad ? { image: full([1, 8, 8], NaN), label: base.label(i) } : base.get(i, seed)),
    };
    const out = tmp();
    let err: unknown;
    try {
      await train({ config: cfg({ epochs: 1, checkpointEvery: 1 }), out, model: tinyNet(0, hideNan), train: poisoned, test: toyData(6, 2, false) });
    } catch (e) {
      err = e;
    }
    assert.instance(err, NonFiniteError);
    const e = err as NonFiniteError;
    assert.is(e.tensor, tensorName);
    assert.match(e.message, new RegExp(`iteration ${e.iteration} \\(epoch 1, batch ${e.iteration}\\)`));
    assert.match(e.message, why);
    assert.match(e.message, /saved the last good state/);
    const state = readTrainState<TrainState>(checkpointFile(out));
    assert.is(state.step, e.iteration - 1);
    for (const [k, t] of Object.entries(loadSafetensors(checkpointFile(out)))) {
      assert.ok(Array.from(t.toArray()).every(Number.isFinite), `${k} is not finite in the checkpoint`);
    }
  });
}

test('countHits ranks ties in favour of lower class indices', () => {
  // rows [0 1 5], [2 2 0], [3 2 1]: label 2 best; label 0 tied with class 1 (wins: lower index); label 2 last (top-5
  // of 3 classes still hits). Then labels 1, 1 (loses the tie to class 0), 0 at k = 1.
  const logits = [0, 1, 5, 2, 2, 0, 3, 2, 1];
  assert.equal(countHits(logits, [2, 0, 2], 3), { hit1: 2, hitK: 3 });
  assert.equal(countHits(logits, [1, 1, 0], 3, 1), { hit1: 1, hitK: 1 });
});

test.run();
