// Job definitions of the cpu backend's parallel kernels. A job is a name, the names of its integer parameters (byte
// addresses in the shared wasm memory, sizes) and a task body; each is defined with defineJob next to the code that
// launches it (gemm.ts, conv.ts, conv-direct.ts, norm.ts) and run with runJob (threads.ts), which publishes the
// parameters in a shared control block. Its work is cut into numbered tasks that threads claim with an atomic
// counter, so a thread slowed by other processes simply claims fewer. Each task writes a disjoint part of the output:
// no locks, no reductions across threads.
//
// The main thread and the pool workers must give every job the same id: job-table.ts imports every module that
// defines jobs and then seals the table, numbering the jobs by name; thread-worker.ts imports the same table, and a
// worker whose table differs from the main thread's refuses to start (see threads.ts).

import { PtslabError } from '../../errors.js';
import type { Kernels } from './kernels/exports.js';

/** A task's parameters: every name of its job, read-only. */
export type JobParams<N extends string> = Readonly<Record<N, number>>;

/** Task t of a job, on a thread whose scratch (runJob's scratch + tid * scratchPer; 0 without) starts at `scratch`. */
export type TaskBody<N extends string> = (k: Kernels, p: JobParams<N>, t: number, scratch: number) => void;

export interface Job<N extends string = string> {
  readonly name: string;
  readonly params: readonly N[];
  readonly task: TaskBody<N>;
  /** 1, 2, ... once job-table.ts has sealed the table; 0 before. */
  readonly id: number;
  /** The record encodeParams wrote, as one object literal (a generic loop building it is ~30x slower). */
  readonly decode: (from: Int32Array) => JobParams<N>;
}

/** Parameter slots of the shared control block: no job may have more parameters. */
export const MAX_PARAMS = 48;

const defined: Array<Job & { id: number }> = [];
let table: readonly Job[] | null = null;

/** Define a job (at module level, in a module that job-table.ts imports). */
export function defineJob<const N extends string>(name: string, params: readonly N[], task: TaskBody<N>): Job<N> {
  if (params.length > MAX_PARAMS) throw new PtslabError(`cpu backend: job '${name}' has ${params.length} parameters, more than the ${MAX_PARAMS} slots of the control block (jobs.ts MAX_PARAMS)`);
  if (table) throw new PtslabError(`cpu backend: job '${name}' is defined after the job table was sealed: import its module in core/backend/cpu/job-table.ts`);
  if (new Set(params).size !== params.length) throw new PtslabError(`cpu backend: job '${name}' names a parameter twice`);
  const bad = params.find((n) => !/^[A-Za-z_]\w*$/.test(n));
  if (bad !== undefined) throw new PtslabError(`cpu backend: job '${name}' parameter '${bad}' is not an identifier`);
  if (defined.some((j) => j.name === name)) throw new PtslabError(`cpu backend: job '${name}' is defined twice`);
  const decode = new Function('a', `return { ${params.map((n, i) => `${n}: a[${i}]`).join(', ')} };`) as Job<N>['decode'];
  const job = { name, params, task: task as TaskBody<string>, id: 0, decode };
  defined.push(job);
  return job as unknown as Job<N>;
}

/** Number the defined jobs by name (so import order does not matter) and close the table. Called by job-table.ts. */
export function sealJobTable(): readonly Job[] {
  if (table) return table;
  defined.sort((a, b) => (a.name < b.name ? -1 : 1));
  defined.forEach((j, i) => { j.id = i + 1; });
  table = [...defined];
  return table;
}

/** The job with this id (workers look jobs up by the id the main thread publishes). */
export function jobById(id: number): Job {
  const job = table?.[id - 1];
  if (!job) throw new PtslabError(`cpu backend: no job with id ${id} in the job table (${table ? table.length : 'not sealed'})`);
  return job;
}

/** The sealed table's job names in id order (the main thread hands them to workers to compare with theirs). */
export const jobNames = (): string[] => (table ?? []).map((j) => j.name);

/** Throw unless job is in the sealed table. */
export function checkJob(job: Job): void {
  if (!table || table[job.id - 1] !== job) {
    throw new PtslabError(`cpu backend: job '${job.name}' is not in the job table: import the module that defines it in core/backend/cpu/job-table.ts (and import job-table.js before running jobs)`);
  }
}

/** Write p's values in the job's parameter order; every value must be an int32 (addresses and sizes are). */
export function encodeParams(job: Job, p: Readonly<Record<string, number>>, into: Int32Array): void {
  const names = job.params;
  for (let i = 0; i < names.length; i++) {
    const v = p[names[i]];
    if ((v | 0) !== v) throw new PtslabError(`cpu backend: job '${job.name}' parameter ${names[i]} = ${v} is not an int32`);
    into[i] = v;
  }
}

/** The record encodeParams wrote (a worker decodes once per job run, well under a microsecond). */
export const decodeParams = (job: Job, from: Int32Array): JobParams<string> => job.decode(from);
