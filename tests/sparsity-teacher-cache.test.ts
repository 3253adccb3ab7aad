// The teacher-logit cache (sparsity/teacher-cache.ts) and its use in the distillation loop:
// - an eval-mode teacher's logits for a sample are the same bits in a sub-batch as in the full batch (a small conv
//   net on the reference backend; the benchmark's ResNet-20 on the cpu backend where it runs), which is what makes a
//   cached run equal an uncached one;
// - lookups: the first batch runs the teacher once on all of it, a batch with some views seen runs it only on the
//   others (gathered, in batch order), a batch of seen views not at all; the logits equal the teacher's every time;
// - the memory bound stops insertion (results stay right), non-finite logits are not stored, and a bad bound or a
//   key count off are errors;
// - in fcpts: a run with keyed batches and the cache has the same history and weights as one without, with hits;
//   a train-mode teacher, a feature-tapping objective, Tensor batches or teacherCache: false never touch it;
// - the calibration's keyedLoader serves loader()'s images with one key per sample.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import '../core/backend/all.js';
import { ArgumentError, Generator, fromStorage, manualSeed, noGrad, randn, withBackend, type Tensor } from '../core/index.js';
import { cpuBackend } from '../core/backend/cpu/index.js';
import type { Module } from '../nn/index.js';
import { ArrayDataset, smallImageTrain } from '../nn/data/index.js';
import { buildModel } from '../nn/train/index.js';
import { calibration } from '../sparsity/calibration.js';
import type { DistillInput } from '../sparsity/distill.js';
import { fcpts, type FcptsConfig } from '../sparsity/fcpts.js';
import { TeacherCache, cacheApplies } from '../sparsity/teacher-cache.js';
import { throwsMatching } from './helpers/throws.js';
import { tinyNet } from './helpers/tiny-net.js';

/** A frozen eval-mode teacher whose BatchNorms hold non-trivial running statistics. */
function frozen(m: Module, x: Tensor): Module {
  m.train();
  noGrad(() => m.call(x));
  for (const p of m.parameters()) p.requiresGrad = false;
  return m.eval();
}

/** Rows `rows` of x as one batch. */
function rowsOf(x: Tensor, rows: readonly number[]): Tensor {
  const per = x.size / x.shape[0];
  const d = x.toArray();
  const out = new Float32Array(rows.length * per);
  rows.forEach((r, j) => out.set(d.subarray(r * per, (r + 1) * per), j * per));
  return fromStorage(out, [rows.length, ...x.shape.slice(1)]);
}

/** Count of positions where a and b differ, and the largest difference. */
function diff(a: ArrayLike<number>, b: ArrayLike<number>): { n: number; max: number } {
  let n = 0, max = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) (n++, (max = Math.max(max, Math.abs(a[i] - b[i]))));
  return { n, max };
}

function subBatchCheck(teacher: Module, x: Tensor, rows: readonly number[]): void {
  const full = noGrad(() => teacher.call(x)).toArray();
  const sub = noGrad(() => teacher.call(rowsOf(x, rows))).toArray();
  const K = full.length / x.shape[0];
  const want = rows.flatMap((r) => Array.from(full.subarray(r * K, (r + 1) * K)));
  const d = diff(sub, want);
  assert.is(d.n, 0, `${d.n} logits differ, by up to ${d.max}`);
}

const test = suite('teacher cache');

test('reference backend: a sample\'s eval-mode logits are the same bits in a sub-batch and in the full batch', () => {
  withBackend('reference', () => {
    const x = randn([12, 1, 8, 8], { generator: new Generator(2) });
    const t = frozen(tinyNet(1), randn([16, 1, 8, 8], { generator: new Generator(3) }));
    subBatchCheck(t, x, [0, 3, 4, 11]);
    subBatchCheck(t, x, [7]);
  });
});

const cpuWhy = cpuBackend.unavailableReason?.() ?? null;
test(`cpu backend: the same for the benchmark's ResNet-20 at batch 64${cpuWhy ? ` (skipped: ${cpuWhy})` : ''}`, () => {
  if (cpuWhy) return;
  withBackend('cpu', () => {
    manualSeed(0);
    const m = buildModel('resnet20', { numClasses: 10, inChannels: 1, inputSize: 28 });
    const t = frozen(m, randn([32, 1, 28, 28], { generator: new Generator(5) }));
    const x = randn([64, 1, 28, 28], { generator: new Generator(1) });
    subBatchCheck(t, x, [0, 3, 5, 17, 40, 62, 63]);
    subBatchCheck(t, x, Array.from({ length: 29 }, (_, i) => 2 * i + 1));
    subBatchCheck(t, x, [9]);
  });
});

/** A teacher with a hook counting the samples of each forward. */
function counted(seed: number): { teacher: Module; seen: number[] } {
  const teacher = frozen(tinyNet(seed), randn([16, 1, 8, 8], { generator: new Generator(seed + 50) }));
  const seen: number[] = [];
  teacher.registerForwardHook((_m, x) => {
    seen.push((x as Tensor).shape[0]);
  });
  return { teacher, seen };
}

test('lookups: all missing runs the full batch, some missing only those, none missing no teacher call', () => {
  withBackend('reference', () => {
    const { teacher, seen } = counted(4);
    const data = randn([10, 1, 8, 8], { generator: new Generator(6) });
    const keys = Array.from({ length: 10 }, (_, i) => `${i}:`);
    const direct = (rows: number[]) => noGrad(() => teacher.call(rowsOf(data, rows))).toArray();
    const cache = new TeacherCache();
    const first = [0, 1, 2, 3, 4, 5];
    assert.equal(Array.from(cache.teacherLogits(teacher, rowsOf(data, first), first.map((i) => keys[i])).toArray()), Array.from(direct(first)));
    const second = [4, 8, 1, 9, 0, 7];
    seen.length = 0;
    const y = cache.teacherLogits(teacher, rowsOf(data, second), second.map((i) => keys[i]));
    assert.equal(seen, [3], 'the teacher ran once, on the 3 unseen views');
    assert.equal(y.shape, [6, 5]);
    seen.length = 0;
    assert.equal(Array.from(y.toArray()), Array.from(direct(second)));
    const third = [9, 0, 2];
    seen.length = 0;
    const z = cache.teacherLogits(teacher, rowsOf(data, third), third.map((i) => keys[i]));
    assert.equal(seen, [], 'no teacher call when every view is cached');
    assert.equal(Array.from(z.toArray()), Array.from(direct(third)));
    assert.equal(cache.stats(), { hits: 3 + 3, misses: 6 + 3, teacherCalls: 2, entries: 9, bytes: cache.stats().bytes, maxBytes: 256 * 2 ** 20, full: false });
    assert.ok(cache.stats().bytes >= 9 * 5 * 4, 'at least the logits are counted');
  });
});

test('the memory bound stops insertion and the logits stay right; bad bounds and key counts are errors', () => {
  withBackend('reference', () => {
    const { teacher } = counted(5);
    const data = randn([6, 1, 8, 8], { generator: new Generator(7) });
    const keys = Array.from({ length: 6 }, (_, i) => `${i}:`);
    const maxBytes = 2 * (5 * 4 + 2 * 2 + 64); // room for about two entries
    const cache = new TeacherCache({ maxBytes });
    const y = cache.teacherLogits(teacher, data, keys);
    const st = cache.stats();
    assert.ok(st.entries >= 1 && st.entries <= 2, `${st.entries} entries`);
    assert.ok(st.full);
    assert.ok(st.bytes <= maxBytes, `${st.bytes} > ${maxBytes}`);
    const again = cache.teacherLogits(teacher, data, keys);
    assert.equal(Array.from(again.toArray()), Array.from(y.toArray()));
    assert.equal([cache.stats().hits, cache.stats().misses, cache.stats().entries], [st.entries, 12 - st.entries, st.entries]);
    const nan = new TeacherCache();
    nan.teacherLogits(teacher, data.mul(NaN), keys);
    assert.is(nan.stats().entries, 0, 'non-finite logits are not stored');
    assert.equal(Array.from(new TeacherCache({ maxBytes: 0 }).teacherLogits(teacher, data, keys).toArray()), Array.from(y.toArray()), 'a cache of no room still serves the logits');
    throwsMatching(() => new TeacherCache({ maxBytes: -1 }), ArgumentError, /maxBytes must be a number >= 0, got -1/);
    throwsMatching(() => cache.teacherLogits(teacher, data, keys.slice(1)), ArgumentError, /5 keys for a batch of shape \[6,1,8,8\]/);
  });
});

test('cacheApplies: eval-mode teacher and no tapped modules only', () => {
  assert.ok(cacheApplies(undefined, []));
  assert.ok(cacheApplies('eval', []));
  assert.not.ok(cacheApplies('train', []));
  assert.not.ok(cacheApplies('eval', ['layer1.0']));
});

// fcpts on the tiny net with keyed batches: 24 images, windows of 8 that overlap from step to step.
function setup(seed: number) {
  const model = tinyNet(seed);
  const teacher = tinyNet(seed + 100);
  teacher.loadStateDict(model.stateDict());
  const data = randn([24, 1, 8, 8], { generator: new Generator(seed + 1) });
  const rows = (step: number) => Array.from({ length: 8 }, (_, k) => ((step * 5) + k) % 24);
  return { model, teacher, data, rows };
}
const base: FcptsConfig = { sparsity: 0.6, iters: 12, batchSize: 8, lr: 0.05, weightDecay: 0 };

async function run(seed: number, o: { keyed: boolean; cache?: TeacherCache | false; cfg?: Partial<FcptsConfig> }) {
  return withBackend('reference', async () => {
    const s = setup(seed);
    const input: DistillInput = {
      model: s.model,
      teacher: s.teacher,
      calibSize: 24,
      batch: (step) => {
        const r = s.rows(step);
        const images = rowsOf(s.data, r);
        return o.keyed ? { images, keys: r.map((i) => `${i}:`) } : images;
      },
      ...(o.cache !== undefined ? { teacherCache: o.cache } : {}),
    };
    const r = await fcpts(input, { ...base, ...o.cfg });
    return { history: r.history, weights: Object.values(s.model.stateDict()).map((t) => Array.from(t.toArray())) };
  });
}

test('fcpts: a cached run has the same history and weights as an uncached one, with hits', async () => {
  const cache = new TeacherCache();
  const cached = await run(8, { keyed: true, cache });
  const plain = await run(8, { keyed: false });
  const off = await run(8, { keyed: true, cache: false });
  assert.equal(cached.history, plain.history);
  assert.equal(cached.weights, plain.weights);
  assert.equal(off.history, plain.history);
  const st = cache.stats();
  assert.is(st.hits + st.misses, 12 * 8);
  assert.is(st.entries, 24);
  assert.is(st.misses, 24, 'each of the 24 views computed once');
  assert.ok(st.teacherCalls < 12, `${st.teacherCalls} teacher calls`);
});

test('fcpts: a train-mode teacher, a feature objective or Tensor batches never use the cache', async () => {
  for (const [what, o] of [
    ['train-mode teacher', { keyed: true, cfg: { teacherMode: 'train' as const } }],
    ['feature objective', { keyed: true, cfg: { objective: { reconstruction: 'mse-features' as const } } }],
    ['Tensor batches', { keyed: false, cfg: {} }],
  ] as const) {
    const cache = new TeacherCache();
    const r = await run(9, { ...o, cache });
    assert.is(r.history.length, 12, what);
    assert.equal([cache.stats().hits, cache.stats().misses], [0, 0], what);
  }
});

test('fcpts: view keys that do not match the batch are an error naming the step', async () => {
  await withBackend('reference', async () => {
    const s = setup(10);
    const input: DistillInput = { model: s.model, teacher: s.teacher, calibSize: 24, batch: () => ({ images: rowsOf(s.data, [0, 1, 2]), keys: ['0:', '1:'] }) };
    try {
      await fcpts(input, base);
      assert.unreachable('expected an ArgumentError');
    } catch (e) {
      assert.instance(e, ArgumentError);
      assert.match((e as Error).message, /batch 0 has 2 view keys for 3 images/);
    }
  });
});

test("calibration: keyedLoader serves loader()'s images with one key per sample, naming index and draws", async () => {
  const n = 40;
  const px = new Uint8Array(n * 36);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 251;
  const plain = new ArrayDataset('toy', px, new Uint8Array(n), { height: 6, width: 6, channels: 1 }, ['a']);
  const augmented = plain.withTransform(smallImageTrain(6, { padding: 2, flip: true }));
  const c = calibration({ augmented, plain }, { images: 32, batchSize: 8, seed: 3 });
  const keyed = c.keyedLoader();
  const tensors = c.loader();
  for (let step = 0; step < 6; step++) {
    const b = await keyed(step);
    const t = await tensors(step);
    assert.equal(Array.from(b.images.toArray()), Array.from(t.toArray()));
    assert.is(b.keys?.length, 8);
    for (const k of b.keys!) assert.match(k, /^\d+:[0-4],[0-4],[01]$/);
    assert.is(new Set(b.keys!.map((k) => k.split(':')[0])).size, 8, 'distinct samples within a batch');
  }
});

test.run();
