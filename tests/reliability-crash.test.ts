// Crash safety of `ptslab train` and `ptslab run` (built CLI, child processes): each is killed with SIGKILL at
// random moments (a seeded generator; PTSLAB_CRASH_SEED picks another) several times, resumed, and must end with the
// files of an uninterrupted run: train's model.safetensors byte for byte and record.json's epochs apart from timing
// fields; run's results.json apart from "seconds", with no finished cell ever lost or torn between kills. Also the
// narrowest window of train: killed after its final checkpoint but before model.safetensors, it must finish on resume.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../nn/index.js';
import { CLI, cli, tmp, writeRandomResnet20, writeTinyMnist } from './reliability-common.js';

const TRIALS = 3;
const KILLS_PER_TRIAL = 2;
const SEED = Number(process.env.PTSLAB_CRASH_SEED) || 8;

/** mulberry32: the kill moments. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);

/** Start the CLI and SIGKILL it after `ms`; true when the kill landed before it exited by itself. */
function runAndKill(args: string[], ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore', env: { ...process.env, PTSLAB_BACKEND: 'cpu', PTSLAB_THREADS: '1' } });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      resolve(signal === 'SIGKILL');
    });
  });
}

/** JSON with the timing fields removed (they differ between any two runs). */
function untimed(text: string): unknown {
  const TIMING = new Set(['seconds', 'started', 'updated', 'finishedAt', 'time', 'command']);
  return JSON.parse(text, (k, v) => (TIMING.has(k) ? undefined : v));
}

const dir = tmp('crash');
const data = writeTinyMnist(join(dir, 'mnist'), 32, 8);
const weights = writeRandomResnet20(join(dir, 'w.safetensors'), 3);
const counts = { trials: 0, kills: 0, checks: 0 };

const trainArgs = (out: string) => ['train', '--arch', 'resnet20', '--dataset', 'mnist', '--data-dir', data, '--epochs', '2', '--batch', '8', '--checkpoint-every', '1', '--warmup-epochs', '0.25', '--seed', '5', '--out', out, '--resume'];

test(`ptslab train: ${TRIALS} trials of ${KILLS_PER_TRIAL} random SIGKILLs + resume give the uninterrupted weights byte for byte`, async () => {
  const base = join(dir, 'train-base');
  const t0 = performance.now();
  const r = await cli(trainArgs(base));
  const duration = performance.now() - t0;
  assert.is(r.status, 0, r.stderr);
  const want = readFileSync(join(base, 'model.safetensors'));
  const wantRecord = untimed(readFileSync(join(base, 'record.json'), 'utf8'));
  for (let t = 0; t < TRIALS; t++) {
    const out = join(dir, `train-${t}`);
    for (let k = 0; k < KILLS_PER_TRIAL; k++) {
      if (await runAndKill(trainArgs(out), (0.1 + 0.85 * random()) * duration)) counts.kills++;
      // Whatever the moment, the checkpoint on disk is whole (or absent).
      const ckpt = join(out, 'checkpoint.safetensors');
      if (existsSync(ckpt)) readSafetensors(ckpt);
    }
    const fin = await cli(trainArgs(out));
    assert.is(fin.status, 0, fin.stderr);
    assert.ok(Buffer.compare(readFileSync(join(out, 'model.safetensors')), want) === 0, `trial ${t}: weights differ from the uninterrupted run`);
    assert.equal(untimed(readFileSync(join(out, 'record.json'), 'utf8')), wantRecord, `trial ${t}: record.json`);
    counts.trials++;
    counts.checks += 2;
  }
  // The narrowest window: the final checkpoint is on disk, model.safetensors and the finished record are not.
  const late = join(dir, 'train-late');
  cpSync(base, late, { recursive: true });
  rmSync(join(late, 'model.safetensors'));
  const rec = JSON.parse(readFileSync(join(late, 'record.json'), 'utf8'));
  writeFileSync(join(late, 'record.json'), JSON.stringify({ ...rec, status: 'running', final: undefined }));
  const again = await cli(trainArgs(late));
  assert.is(again.status, 0, again.stderr);
  assert.ok(Buffer.compare(readFileSync(join(late, 'model.safetensors')), want) === 0, 'killed before model.safetensors: the resumed run wrote other weights');
  assert.is(JSON.parse(readFileSync(join(late, 'record.json'), 'utf8')).status, 'finished');
  counts.checks += 2;
});

const CONFIG = (w: string, d: string) => `name: crash
model: { arch: resnet20, weights: ${w}, dataset: mnist, dataDir: ${d} }
methods: [uniform, fcpts, lamp]
sparsities: [0.5, 0.8]
options: { iters: 3, calib: 16, batchSize: 8 }
eval: { images: 8 }
`;

/** The finished cells of a run folder: key -> result.json text (each must parse: never torn). */
function finished(out: string): Map<string, unknown> {
  const cells = join(out, 'cells');
  const m = new Map<string, unknown>();
  if (!existsSync(cells)) return m;
  for (const key of readdirSync(cells)) {
    const f = join(cells, key, 'result.json');
    if (existsSync(f)) m.set(key, untimed(readFileSync(f, 'utf8')));
  }
  return m;
}

test(`ptslab run: ${TRIALS} trials of ${KILLS_PER_TRIAL} random SIGKILLs + resume lose no finished cell and give the same results.json`, async () => {
  const config = join(dir, 'crash.yaml');
  writeFileSync(config, CONFIG(weights, data));
  const base = join(dir, 'run-base');
  const t0 = performance.now();
  const r = await cli(['run', config, '--out', base]);
  const duration = performance.now() - t0;
  assert.is(r.status, 0, r.stderr);
  const want = untimed(readFileSync(join(base, 'results.json'), 'utf8'));
  const wantCells = finished(base);
  assert.is(wantCells.size, 6);
  for (let t = 0; t < TRIALS; t++) {
    const out = join(dir, `run-${t}`);
    let before = new Map<string, unknown>();
    for (let k = 0; k < KILLS_PER_TRIAL; k++) {
      if (await runAndKill(['run', config, '--out', out], (0.1 + 0.85 * random()) * duration)) counts.kills++;
      const now = finished(out);
      for (const key of before.keys()) assert.ok(now.has(key), `trial ${t}: finished cell ${key} lost after a kill`);
      for (const [key, v] of now) assert.equal(v, wantCells.get(key), `trial ${t}: cell ${key} differs from the uninterrupted run`);
      before = now;
    }
    const fin = await cli(['run', config, '--out', out]);
    assert.is(fin.status, 0, fin.stderr);
    assert.equal(untimed(readFileSync(join(out, 'results.json'), 'utf8')), want, `trial ${t}: results.json`);
    assert.is(finished(out).size, 6);
    counts.trials++;
    counts.checks += 3;
  }
});

test.after(() => {
  console.log(`crash: ${counts.trials} kill/resume trials (train and run), ${counts.kills} SIGKILLs landed mid-run, ${counts.checks} final-state comparisons, seed ${SEED}, 0 failures`);
  rmSync(dir, { recursive: true, force: true });
});

test.run();
