// The cpu backend's persistent worker pool: os.availableParallelism() - 1 workers (PTSLAB_THREADS overrides the
// total), started once on the first job big enough to share, all importing the same shared wasm memory. The Backend
// interface is synchronous, so a job runs like this: the main thread writes the job into a shared control block,
// bumps a generation counter and wakes the workers with Atomics.notify, claims tasks itself, then blocks in
// Atomics.wait until every worker has checked out. Workers are unref'd (they never keep the process alive) and are
// stopped in one place, shutdownThreads().

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { PtslabError } from '../../errors.js';
import { JobKind, PARAM_SLOTS, runTask } from './jobs.js';
import { wasm } from './wasm.js';

/** Control block slots. */
const GEN = 0, PENDING = 1, NEXT = 2, KIND = 3, NTASKS = 4, ERR = 5, READY = 6, PARAMS = 16;
export const CTRL_SLOTS = PARAMS + PARAM_SLOTS;
export const CTRL = { GEN, PENDING, NEXT, KIND, NTASKS, ERR, READY, PARAMS } as const;

interface Pool {
  ctrl: Int32Array;
  params: Int32Array;
  workers: Worker[];
}

let pool: Pool | null = null;
let poolFailed = false;

/** Threads a job may use (main included). */
export function threadCount(): number {
  const env = Number(process.env.PTSLAB_THREADS);
  return Math.max(1, Number.isInteger(env) && env > 0 ? env : os.availableParallelism());
}

function startPool(): Pool | null {
  if (pool || poolFailed) return pool;
  const n = threadCount() - 1;
  const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_SLOTS * 4));
  const { module, memory } = wasm();
  const workers: Worker[] = [];
  try {
    for (let i = 1; i <= n; i++) {
      const w = new Worker(new URL('./thread-worker.js', import.meta.url), {
        workerData: { module, memory, ctrl: ctrl.buffer, tid: i },
        // `node --input-type=module -e ...` would pass --input-type to the worker, which then fails to start
        execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')),
      });
      w.unref();
      workers.push(w);
    }
    // Block until every worker has instantiated the kernels (a few ms each); give up after 10 s.
    const deadline = Date.now() + 10_000;
    let ready: number;
    while ((ready = Atomics.load(ctrl, READY)) < n && Date.now() < deadline) Atomics.wait(ctrl, READY, ready, 50);
    if (Atomics.load(ctrl, READY) < n) throw new Error('workers did not start within 10 s');
  } catch (e) {
    for (const w of workers) void w.terminate();
    poolFailed = true;
    process.emitWarning(`ptslab cpu backend: running single-threaded, the worker pool failed: ${(e as Error).message}`);
    return null;
  }
  pool = { ctrl, params: ctrl.subarray(PARAMS), workers };
  return pool;
}

const localParams = new Int32Array(PARAM_SLOTS);

/** Parameters of the next job: fill them, then call runJob. */
export function jobParams(): Int32Array {
  localParams.fill(0);
  return localParams;
}

/**
 * Run nTasks tasks of a job whose parameters were written into jobParams(). parallel = false (small jobs) keeps it
 * on the main thread with no synchronisation at all.
 */
export function runJob(kind: JobKind, nTasks: number, parallel: boolean): void {
  const k = wasm().k;
  const pl = parallel && nTasks > 1 && threadCount() > 1 ? startPool() : null;
  if (!pl) {
    for (let t = 0; t < nTasks; t++) runTask(k, kind, localParams, t, 0);
    return;
  }
  const { ctrl, params, workers } = pl;
  params.set(localParams);
  Atomics.store(ctrl, KIND, kind);
  Atomics.store(ctrl, NTASKS, nTasks);
  Atomics.store(ctrl, NEXT, 0);
  Atomics.store(ctrl, ERR, 0);
  Atomics.store(ctrl, PENDING, workers.length);
  Atomics.add(ctrl, GEN, 1);
  Atomics.notify(ctrl, GEN);
  let error: unknown = null;
  try {
    for (let t = Atomics.add(ctrl, NEXT, 1); t < nTasks; t = Atomics.add(ctrl, NEXT, 1)) runTask(k, kind, params, t, 0);
  } catch (e) {
    error = e;
    Atomics.store(ctrl, NEXT, nTasks);
  }
  let v: number;
  while ((v = Atomics.load(ctrl, PENDING)) !== 0) Atomics.wait(ctrl, PENDING, v);
  if (error) throw error;
  if (Atomics.load(ctrl, ERR) !== 0) throw new PtslabError(`cpu backend: a pool worker failed in a job of kind ${kind} (${nTasks} tasks)`);
}

/** Stop the workers (the next big job starts a new pool). The one place workers are shut down. */
export function shutdownThreads(): void {
  if (!pool) return;
  const { ctrl, workers } = pool;
  pool = null;
  Atomics.store(ctrl, KIND, JobKind.Exit);
  Atomics.add(ctrl, GEN, 1);
  Atomics.notify(ctrl, GEN);
  for (const w of workers) void w.terminate();
}

/** Number of live pool workers (0 before the first parallel job). */
export function poolSize(): number {
  return pool ? pool.workers.length : 0;
}
