// Where an FCPTS iteration's time goes, by backend kernel (core/profile.ts): a random-init ResNet-20 of the
// fmnist-resnet20 benchmark's architecture (CIFAR option-B ResNet-20, 1 channel, 10 classes, 28x28) with a frozen
// teacher copy, the benchmark's calibration data (1,024 Fashion-MNIST training images, its training augmentation,
// batch 64, seed 0; --synthetic: random images, no augmentation, no keys), target sparsity 0.8. It runs
// --warmup + --iters iterations of sparsity/fcpts.ts fcpts() and profiles the last --iters; --method erk-kd profiles
// erkKd the same way, --method pot one short POT run (sparsity/pot.ts), --method all the three. docs/profile.md says
// how to read the table. Run on the cpu backend as the benchmark does:
//
//   npx tsc -p . && PTSLAB_BACKEND=cpu node dist/scripts/profile-fcpts.js [--iters 20] [--warmup 3] [--method fcpts]
//     [--no-teacher-cache] [--prefill | --start S] [--detail] [--synthetic] [--top 20]
//   node dist/scripts/profile-fcpts.js --hit-rate 1600     (the teacher cache's hit rate over a schedule; no model)
//   PTSLAB_BACKEND=cpu node dist/scripts/profile-fcpts.js --compare --start 800 --iters 30   (cached run == uncached?)
//
// The teacher cache starts empty (as in a run's first iterations, where it rarely hits); --start S gives it what a
// run holds at iteration S and profiles the schedule's batches from S on; --prefill gives it every view the
// profiled steps draw (its best case); --no-teacher-cache turns it off.

import { parseArgs } from 'node:util';
import { Generator, backend, formatProfile, profileOps, profileOpsAsync, randn, type Profile, type Tensor } from '../core/index.js';
import '../core/backend/select.js';
import { shutdownThreads } from '../core/backend/cpu/index.js';
import type { Module } from '../nn/index.js';
import { loadDataset } from '../nn/train/index.js';
import { calibration, type Calibration } from '../sparsity/calibration.js';
import type { CalibrationBatch } from '../sparsity/calibration.js';
import type { DistillInput } from '../sparsity/distill.js';
import { erkKd, fcpts } from '../sparsity/fcpts.js';
import { pot } from '../sparsity/pot.js';
import { TeacherCache } from '../sparsity/teacher-cache.js';
import { benchmarkPair } from './bench-fcpts.js';

const { values: args } = parseArgs({
  options: {
    iters: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    method: { type: 'string', default: 'fcpts' },
    'no-teacher-cache': { type: 'boolean', default: false },
    prefill: { type: 'boolean', default: false },
    start: { type: 'string', default: '0' },
    'hit-rate': { type: 'string' },
    compare: { type: 'boolean', default: false },
    detail: { type: 'boolean', default: false },
    synthetic: { type: 'boolean', default: false },
    top: { type: 'string', default: '20' },
  },
});

const int = (name: string, v: string, min: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`profile-fcpts: --${name} must be an integer >= ${min}, got '${v}'`);
  return n;
};
const iters = int('iters', args.iters!, 1);
const warmup = int('warmup', args.warmup!, 0);
const top = int('top', args.top!, 1);
const start = int('start', args.start!, 0);
const methods = args.method === 'all' ? ['fcpts', 'erk-kd', 'pot'] : [args.method!];
for (const m of methods) if (!['fcpts', 'erk-kd', 'pot'].includes(m)) throw new Error(`profile-fcpts: --method must be fcpts, erk-kd, pot or all, got '${m}'`);

/** A random-init student and its frozen teacher copy, the bench's pair. */
const models = benchmarkPair;

function calib(): Calibration | null {
  if (args.synthetic) return null;
  return calibration({ augmented: loadDataset('fashion-mnist', 'train', { augment: true }), plain: loadDataset('fashion-mnist', 'train', { augment: false }) }, { images: 1024, seed: 0, batchSize: 64 });
}

function batches(c: Calibration | null): (step: number) => Tensor | CalibrationBatch | Promise<CalibrationBatch> {
  if (c) return c.keyedLoader();
  const data = randn([1024, 1, 28, 28], { generator: new Generator(1) });
  return (step) => data.slice(0, (step % 16) * 64, (step % 16) * 64 + 64);
}

/** A teacher cache holding the logits of every view that schedule steps [from, to) draw. */
async function filled(c: Calibration, teacher: Module, from: number, to: number): Promise<TeacherCache> {
  const cache = new TeacherCache();
  const load = c.keyedLoader();
  for (let s = from; s < to; s++) {
    const b = await load(s);
    if (b.keys) cache.teacherLogits(teacher, b.images, b.keys);
  }
  return cache;
}

/**
 * The cache's hit rate over a schedule of `steps` iterations, by drawing the calibration loader's keys (no model
 * runs): the fraction of samples whose view an earlier step drew, overall and per tenth of the schedule.
 */
async function hitRate(c: Calibration, steps: number): Promise<void> {
  const seen = new Set<string>();
  const load = c.keyedLoader();
  let hits = 0;
  let total = 0;
  const tenths: string[] = [];
  let tHits = 0;
  let tTotal = 0;
  for (let s = 0; s < steps; s++) {
    const b = await load(s);
    if (!b.keys) throw new Error('profile-fcpts: the calibration batches carry no view keys (the augmentation has no finite views)');
    for (const k of b.keys) {
      const hit = seen.has(k);
      hits += +hit;
      tHits += +hit;
      seen.add(k);
    }
    total += b.keys.length;
    tTotal += b.keys.length;
    if ((s + 1) % Math.ceil(steps / 10) === 0 || s === steps - 1) {
      tenths.push(`${(100 * tHits / tTotal).toFixed(1)}%`);
      tHits = tTotal = 0;
    }
  }
  console.log(`teacher-cache hit rate over ${steps} iterations of batch ${c.batchSize} on ${c.size} images: ${(100 * hits / total).toFixed(2)}% (${hits} of ${total} samples), ${seen.size} distinct views; per tenth of the schedule: ${tenths.join(' ')}`);
}

async function profileDistill(method: 'fcpts' | 'erk-kd', c: Calibration | null): Promise<Profile> {
  const { model, teacher } = models();
  const total = warmup + iters;
  // --prefill: every view the profiled steps draw; --start S: what a run holds at iteration S.
  const teacherCache = args['no-teacher-cache'] ? false : c && args.prefill ? await filled(c, teacher, start, start + total) : c && start > 0 ? await filled(c, teacher, 0, start) : new TeacherCache();
  const before = teacherCache ? teacherCache.stats() : null;
  const load = batches(c);
  const input: DistillInput = { model, teacher, batch: (step) => load(step + start), calibSize: 1024, teacherCache };
  let snap: Profile | null = null;
  const { profile } = await profileOpsAsync(async (ctl) => {
    input.onStep = (log) => {
      if (log.step === warmup - 1) ctl.reset();
      if (log.step === total - 1) snap = ctl.snapshot();
    };
    const cfg = { sparsity: 0.8, iters: total, batchSize: 64 };
    if (method === 'fcpts') await fcpts(input, cfg);
    else await erkKd(input, cfg);
  });
  const p = snap ?? profile;
  console.log(`\n== ${method}: ${iters} iterations after ${warmup} warm-up, batch 64, target 0.8, ${args.synthetic ? 'synthetic data' : 'Fashion-MNIST calibration'}, backend ${backend().name}, teacher cache ${teacherCache === false ? 'off' : args.prefill && c ? 'pre-filled' : 'on'}${start ? `, batches of schedule steps ${start} on` : ''}`);
  console.log(formatProfile(p, { top, per: iters, detail: args.detail }));
  if (teacherCache && before) {
    const now = teacherCache.stats();
    const hits = now.hits - before.hits, misses = now.misses - before.misses;
    console.log(`teacher cache over the run: ${hits} hits, ${misses} misses (${(100 * hits / Math.max(1, hits + misses)).toFixed(1)}% hits), ${now.entries} entries, ${(now.bytes / 2 ** 20).toFixed(2)} MiB`);
  }
  return p;
}

function profilePot(c: Calibration | null): Promise<void> {
  const { model, teacher } = models();
  return (async () => {
    const xs: Tensor[] = c ? (await c.batches(256)) : [0, 1, 2, 3].map((i) => randn([64, 1, 28, 28], { generator: new Generator(10 + i) }));
    const { profile } = profileOps(() => pot(model, teacher, xs, { sparsity: 0.8, reconIters: 50 }));
    console.log(`\n== pot: 256 calibration images, 50 reconstruction iterations per layer, backend ${backend().name}`);
    console.log(formatProfile(profile, { top, detail: args.detail }));
  })();
}

/**
 * --compare: the same fcpts run (the schedule's batches from --start on, --warmup + --iters steps) with the teacher
 * cache (holding what a run holds at --start) and without; prints whether the histories are equal and the largest
 * difference of the final weights.
 */
async function compare(c: Calibration): Promise<void> {
  const once = async (cached: boolean) => {
    const { model, teacher } = models();
    const total = warmup + iters;
    const cache = cached ? await filled(c, teacher, 0, start) : false;
    const load = c.keyedLoader();
    const input: DistillInput = { model, teacher, batch: (step) => load(step + start), calibSize: 1024, teacherCache: cache };
    const r = await fcpts(input, { sparsity: 0.8, iters: total, batchSize: 64 });
    const stats = cache ? cache.stats() : null;
    return { history: r.history, weights: Object.values(model.stateDict()).map((t) => t.toArray()), stats };
  };
  const a = await once(true);
  const b = await once(false);
  const same = JSON.stringify(a.history) === JSON.stringify(b.history);
  let max = 0;
  a.weights.forEach((w, i) => w.forEach((v, j) => (max = Math.max(max, Math.abs(v - b.weights[i][j])))));
  console.log(`compare (${warmup + iters} fcpts steps from schedule step ${start}, backend ${backend().name}): histories ${same ? 'equal' : 'DIFFER'}, largest final-weight difference ${max}; cache ${JSON.stringify(a.stats)}`);
  if (!same) process.exitCode = 1;
}

const c = calib();
if (args.compare) {
  if (!c) throw new Error('profile-fcpts: --compare needs the Fashion-MNIST calibration (not --synthetic)');
  await compare(c);
  shutdownThreads();
  process.exit();
}
if (args['hit-rate'] !== undefined) {
  if (!c) throw new Error('profile-fcpts: --hit-rate needs the Fashion-MNIST calibration (not --synthetic)');
  await hitRate(c, int('hit-rate', args['hit-rate'], 1));
  process.exit(0);
}
for (const m of methods) {
  if (m === 'pot') await profilePot(c);
  else await profileDistill(m as 'fcpts' | 'erk-kd', c);
}
shutdownThreads();
