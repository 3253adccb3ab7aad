// FCPTS end to end on a tiny model: the control loss moves the global sparsity to the target from a distant start,
// the exact correction prunes exactly round(S* N) weights, pruned weights are zero, both gradient modes and both
// estimators run, erk-kd keeps its masks, and a NaN stops the run naming the iteration.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Generator, NumericError, randn, type Tensor } from '../core/index.js';
import { erkKd, fcpts, type FcptsConfig } from '../sparsity/fcpts.js';
import { prunableLayers } from '../sparsity/prunable.js';
import { tinyNet } from './helpers/tiny-net.js';

function setup(seed = 0) {
  const model = tinyNet(seed);
  const teacher = tinyNet(seed + 100);
  teacher.loadStateDict(model.stateDict());
  const data = randn([32, 1, 8, 8], { generator: new Generator(seed + 1) });
  const batch = (step: number): Tensor => data.slice(0, (step % 4) * 8, (step % 4) * 8 + 8);
  return { model, teacher, batch, calibSize: 32 };
}

const base: FcptsConfig = { sparsity: 0.6, iters: 120, batchSize: 8, lr: 0.05, weightDecay: 0 };

const test = suite('fcpts');

test('the control loss pulls the global sparsity from 0.2 to the target 0.6', async () => {
  const s = setup();
  const N = prunableLayers(s.model).reduce((a, l) => a + l.weight.size, 0);
  const r = await fcpts(s, { ...base, initSparsity: 0.2, lr: 0.1 });
  assert.ok(Math.abs(r.history[0].sparsity - 0.2) < 0.05, `starts near 0.2: ${r.history[0].sparsity}`);
  assert.ok(Math.abs(r.correction.learnedSparsity - 0.6) < 0.03, `learned ${r.correction.learnedSparsity}`);
  const pruned = r.layers.reduce((a, l) => a + Math.round(l.sparsity * l.params), 0);
  assert.is(pruned, Math.round(0.6 * N));
});

test('after the run, pruned weights are exactly zero and the mask count is exact', async () => {
  const s = setup(3);
  const r = await fcpts(s, { ...base, iters: 30 });
  const layers = prunableLayers(s.model);
  let zeros = 0;
  layers.forEach((l, i) => {
    const w = l.weight.toArray();
    r.masks[i].forEach((m, j) => {
      if (m === 0) assert.is(w[j], 0);
    });
    zeros += w.filter((v) => v === 0).length;
  });
  const N = layers.reduce((a, l) => a + l.weight.size, 0);
  assert.is(zeros, Math.round(0.6 * N));
});

for (const gradMode of ['detached', 'ste'] as const) {
  for (const est of ['histogram', 'kde'] as const) {
    test(`runs with gradMode=${gradMode}, estimator=${est}; the objective's KL term stays finite`, async () => {
      const s = setup(5);
      const r = await fcpts(s, { ...base, iters: 15, gradMode, estimator: est });
      assert.is(r.history.length, 15);
      assert.ok(r.history.every((h) => Number.isFinite(h.terms.kl) && h.terms.kl >= 0));
      assert.ok(r.history.every((h) => 'control' in h.terms));
    });
  }
}

test('ste mode moves thresholds through the reconstruction loss too (detached mode does not)', async () => {
  // With lambda = 0 only L_rec acts: detached thresholds never move, STE thresholds do.
  const runOnce = async (gradMode: 'detached' | 'ste') => {
    const s = setup(7);
    const r = await fcpts(s, { ...base, iters: 20, gradMode, objective: { lambda: 0 }, lr: 0.2 });
    return r.history.map((h) => h.sparsity);
  };
  const det = await runOnce('detached');
  const ste = await runOnce('ste');
  assert.ok(Math.max(...det) - Math.min(...det) < 0.03, `detached sparsity should barely move: ${det[0]} .. ${det[det.length - 1]}`);
  assert.ok(ste.some((v, i) => Math.abs(v - det[i]) > 1e-6), 'ste thresholds should move');
});

test('erk-kd keeps the ERK masks fixed through distillation', async () => {
  const s = setup(9);
  const r = await erkKd(s, { ...base, iters: 10 });
  assert.ok(r.history.every((h) => h.sparsity === r.history[0].sparsity));
  const pruned = r.layers.reduce((a, l) => a + l.sparsity * l.params, 0) / r.layers.reduce((a, l) => a + l.params, 0);
  assert.ok(Math.abs(pruned - 0.6) < 0.01);
});

test('erk-kd and fcpts start from a given allocation instead of ERK (erk-kd keeps it exactly)', async () => {
  const names = prunableLayers(setup().model).map((l) => l.name);
  // layers of 72, 1,152 and 80 weights: 36 + 706 + 40 = 782 = round(0.6 x 1,304); ERK would prune the first conv far less
  const allocation = { [names[0]]: 0.5, [names[1]]: 706 / 1152, [names[2]]: 0.5 };
  const frozen = await erkKd(setup(10), { ...base, iters: 4, allocation });
  assert.equal(frozen.layers.map((l) => Math.round(l.sparsity * l.params)), [36, 706, 40]);
  const learned = await fcpts(setup(10), { ...base, iters: 1, allocation });
  assert.ok(Math.abs(learned.layers[0].sparsity - 0.5) < 0.05, `fcpts starts at the given allocation: ${learned.layers[0].sparsity}`);
  const erk = await fcpts(setup(10), { ...base, iters: 1 });
  assert.ok(erk.layers[0].sparsity < 0.4, `ERK prunes the first conv less: ${erk.layers[0].sparsity}`);
});

test('a NaN in the data stops the run naming the iteration, handing over the last good state', async () => {
  const s = setup(11);
  const batch = (step: number) => (step === 3 ? s.batch(0).mul(NaN) : s.batch(step));
  let saved: { state: Record<string, Tensor>; iteration: number } | null = null;
  const onNumericError = (state: Record<string, Tensor>, iteration: number) => {
    saved = { state, iteration };
    return '/somewhere/last-good.safetensors';
  };
  try {
    await fcpts({ ...s, batch, onNumericError, goodStateEvery: 2 }, { ...base, iters: 10 });
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, NumericError);
    assert.match((e as Error).message, /iteration 3/);
    assert.match((e as Error).message, /last good state \(after iteration 1\) was saved to \/somewhere\/last-good\.safetensors/);
  }
  const got = saved as { state: Record<string, Tensor>; iteration: number } | null;
  assert.ok(got !== null);
  assert.is(got!.iteration, 1);
  assert.ok('threshold.0.weight' in got!.state && '0.weight' in got!.state);
  for (const [k, t] of Object.entries(got!.state)) assert.ok(Array.from(t.toArray()).every(Number.isFinite), `${k} finite`);
});

test('keepDense leaves the named layers untouched', async () => {
  const s = setup(13);
  const first = s.model.stateDict()['0.weight'].toArray();
  const r = await fcpts(s, { ...base, iters: 5, keepDense: ['0', '8.weight'] });
  assert.equal(r.layers.map((l) => l.name), ['3.weight']);
  assert.ok(Array.from(s.model.stateDict()['0.weight'].toArray()).every((v) => v !== 0) || first.length === 0);
});

test.run();
