// The cpu backend's persistent worker pool: os.availableParallelism() - 1 workers (PTSLAB_THREADS overrides the
// total), started once on the first job big enough to share, all importing the same shared wasm memory. The Backend
// interface is synchronous, so a job runs like this: the main thread writes the job into a shared control block,
// bumps a generation counter and wakes the workers with Atomics.notify, claims tasks itself, then polls (SPIN_US) and
// blocks in Atomics.wait until every worker has checked out. Workers are unref'd (they never keep the process alive)
// and are stopped in one place, shutdownThreads().
//
// After provideCpuWasm (a browser Web Worker: a non-shared memory, no SharedArrayBuffer, no node:worker_threads)
// threadCount() is 1 without reading node:os or the environment, so runJob runs every job's tasks on the calling
// thread and the pool never starts.

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { PtslabError } from '../../errors.js';
import { checkJob, encodeParams, jobNames, MAX_PARAMS, type Job, type JobParams } from './jobs.js';
import { wasm, wasmProvided } from './wasm.js';

/**
 * Control block slots: JOB is the job's id (EXIT stops the workers), SCRATCH and SCRATCH_PER its per-thread scratch,
 * then the job's parameters in the order of its definition.
 */
const GEN = 0, PENDING = 1, NEXT = 2, JOB = 3, NTASKS = 4, ERR = 5, READY = 6, SCRATCH = 7, SCRATCH_PER = 8, PARAMS = 16;
export const CTRL_SLOTS = PARAMS + MAX_PARAMS;
export const CTRL = { GEN, PENDING, NEXT, JOB, NTASKS, ERR, READY, SCRATCH, SCRATCH_PER, PARAMS } as const;
/** The JOB value that stops the workers (job ids start at 1). */
export const EXIT = -1;
/** READY is set to this by a worker that cannot run the main thread's jobs. */
export const TABLE_MISMATCH = -1 << 20;

interface Pool {
  ctrl: Int32Array;
  params: Int32Array;
  workers: Worker[];
}

let pool: Pool | null = null;
let poolFailed = false;
/** Set when the workers' job table differs from ours: every later parallel job throws it again. */
let tableError: PtslabError | null = null;

/** The machine's parallelism, read once: os.availableParallelism() is a system call, and jobs ask on every call. */
let machineThreads = 0;

/** Threads a job may use (main included); 1 after provideCpuWasm (non-shared memory: no pool). */
export function threadCount(): number {
  if (wasmProvided()) return 1;
  const env = Number(process.env.PTSLAB_THREADS);
  return Math.max(1, Number.isInteger(env) && env > 0 ? env : (machineThreads ||= os.availableParallelism()));
}

function startPool(): Pool | null {
  if (tableError) throw tableError;
  if (pool || poolFailed) return pool;
  const n = threadCount() - 1;
  const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_SLOTS * 4));
  const { module, memory } = wasm();
  const workers: Worker[] = [];
  let execArgv = workerExecArgv(process.execArgv);
  try {
    for (let i = 1; i <= n; i++) {
      const spawn = () => new Worker(new URL('./thread-worker.js', import.meta.url), {
        workerData: { module, memory, ctrl: ctrl.buffer, tid: i, jobs: jobNames() },
        execArgv,
      });
      let w: Worker;
      try {
        w = spawn();
      } catch (e) {
        // per-process and V8 flags (`node --max-old-space-size=8192 ...`, --expose-gc): Node refuses them for a worker
        // and names them; V8's apply to every thread of the process anyway, so start without them
        if ((e as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
        execArgv = withoutRefused(execArgv, (e as Error).message);
        w = spawn();
      }
      w.unref();
      workers.push(w);
    }
    // Block until every worker has instantiated the kernels (a few ms each); give up after 10 s.
    const deadline = Date.now() + 10_000;
    let ready: number;
    while ((ready = Atomics.load(ctrl, READY)) < n && ready >= 0 && Date.now() < deadline) Atomics.wait(ctrl, READY, ready, 50);
    if (Atomics.load(ctrl, READY) < 0) throw new Error(`a worker's job table differs from the main thread's (${jobNames().join(', ')}): every module that defines jobs must be imported by core/backend/cpu/job-table.ts`);
    if (Atomics.load(ctrl, READY) < n) throw new Error('workers did not start within 10 s');
  } catch (e) {
    for (const w of workers) void w.terminate();
    poolFailed = true;
    // a programming error, not a machine that cannot start workers: no quiet single-threaded fallback
    if (Atomics.load(ctrl, READY) < 0) throw (tableError = new PtslabError(`cpu backend: ${(e as Error).message}`));
    process.emitWarning(`ptslab cpu backend: running single-threaded, the worker pool failed: ${(e as Error).message}`);
    return null;
  }
  pool = { ctrl, params: ctrl.subarray(PARAMS), workers };
  return pool;
}

/**
 * The parent's execArgv as the workers take it: without --input-type (the workers run a file, and Node refuses it
 * there) and without an -e / -p script with its source (`node --input-type=module -e ...`).
 */
export function workerExecArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--input-type')) {
      if (a === '--input-type') i++;
      continue;
    }
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print' || a === '-pe') {
      i++;
      continue;
    }
    if (a.startsWith('--eval=') || a.startsWith('--print=')) continue;
    out.push(a);
  }
  return out;
}

/** argv without the flags an ERR_WORKER_INVALID_EXEC_ARGV message names ("...invalid execArgv flags: --a, --b=1"). */
export function withoutRefused(argv: readonly string[], message: string): string[] {
  const at = message.lastIndexOf(': ');
  const refused = new Set(at < 0 ? [] : message.slice(at + 2).split(', ').map((f) => f.trim()));
  return argv.filter((a) => !refused.has(a));
}

/**
 * How long a thread polls a control slot before it sleeps in Atomics.wait: a wake-up from Atomics.wait takes 30 to
 * 100 us, which a step of a small network pays some 150 times over (every parallel job wakes the workers, and the
 * main thread waits for their last task); polling catches the next job, or the last task's end, as it comes.
 */
export const SPIN_US = 50;

/** Poll ctrl[slot] until it differs from `from` (true) or SPIN_US have passed (false: sleep in Atomics.wait then). */
export function spinWhile(ctrl: Int32Array, slot: number, from: number): boolean {
  const end = performance.now() + SPIN_US / 1000;
  for (;;) {
    for (let i = 0; i < 256; i++) if (Atomics.load(ctrl, slot) !== from) return true;
    if (performance.now() > end) return false;
  }
}

/** Per-thread scratch of a job: thread tid's starts at scratch + tid * scratchPer. */
export interface Scratch {
  scratch: number;
  scratchPer: number;
}

const checked = new Int32Array(MAX_PARAMS);

/**
 * Run nTasks tasks of job with parameters p (every one of the job's names, int32 values). parallel = false (small
 * jobs) keeps it on the main thread with no synchronisation at all; the main thread's tasks read p itself, the
 * workers' a copy decoded from the control block, equal value for value.
 */
export function runJob<N extends string>(job: Job<N>, p: JobParams<N>, nTasks: number, parallel: boolean, scratch?: Scratch): void {
  checkJob(job);
  const k = wasm().k;
  const base = scratch?.scratch ?? 0, per = scratch?.scratchPer ?? 0;
  const pl = parallel && nTasks > 1 && threadCount() > 1 ? startPool() : null;
  if (!pl) {
    encodeParams(job, p, checked); // only to check the values, as the parallel path does
    for (let t = 0; t < nTasks; t++) job.task(k, p, t, base);
    return;
  }
  const { ctrl, params, workers } = pl;
  encodeParams(job, p, params);
  Atomics.store(ctrl, SCRATCH, base);
  Atomics.store(ctrl, SCRATCH_PER, per);
  Atomics.store(ctrl, JOB, job.id);
  Atomics.store(ctrl, NTASKS, nTasks);
  Atomics.store(ctrl, NEXT, 0);
  Atomics.store(ctrl, ERR, 0);
  Atomics.store(ctrl, PENDING, workers.length);
  Atomics.add(ctrl, GEN, 1);
  Atomics.notify(ctrl, GEN);
  let error: unknown = null;
  try {
    for (let t = Atomics.add(ctrl, NEXT, 1); t < nTasks; t = Atomics.add(ctrl, NEXT, 1)) job.task(k, p, t, base);
  } catch (e) {
    error = e;
    Atomics.store(ctrl, NEXT, nTasks);
  }
  let v: number;
  while ((v = Atomics.load(ctrl, PENDING)) !== 0) if (!spinWhile(ctrl, PENDING, v)) Atomics.wait(ctrl, PENDING, v);
  if (error) throw error;
  if (Atomics.load(ctrl, ERR) !== 0) throw new PtslabError(`cpu backend: a pool worker failed in a task of job '${job.name}' (${nTasks} tasks)`);
}

/** Stop the workers (the next big job starts a new pool). The one place workers are shut down. */
export function shutdownThreads(): void {
  if (!pool) return;
  const { ctrl, workers } = pool;
  pool = null;
  Atomics.store(ctrl, JOB, EXIT);
  Atomics.add(ctrl, GEN, 1);
  Atomics.notify(ctrl, GEN);
  for (const w of workers) void w.terminate();
}

/** Number of live pool workers (0 before the first parallel job). */
export function poolSize(): number {
  return pool ? pool.workers.length : 0;
}
