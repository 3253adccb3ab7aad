// Entry point of one cpu-backend pool worker: instantiate the kernels on the shared wasm memory, check that its job
// table is the main thread's, report ready, then loop forever: poll, then sleep, on the generation counter, decode the
// published job's parameters, claim its tasks until none are left, check out. See threads.ts for the protocol.

import { workerData } from 'node:worker_threads';
import { decodeParams, jobById, jobNames } from './jobs.js';
import './job-table.js';
import { CTRL, EXIT, TABLE_MISMATCH, spinWhile } from './threads.js';
import { instantiate, type WasmMemory, type WasmModule } from './wasm.js';

const { module, memory, ctrl: sab, tid, jobs } = workerData as {
  module: WasmModule;
  memory: WasmMemory;
  ctrl: SharedArrayBuffer;
  tid: number;
  jobs: string[];
};
const k = instantiate(module, memory);
const ctrl = new Int32Array(sab);
const params = ctrl.subarray(CTRL.PARAMS);

let seen = Atomics.load(ctrl, CTRL.GEN);
const same = jobNames().join() === jobs.join();
Atomics.add(ctrl, CTRL.READY, same ? 1 : TABLE_MISMATCH);
Atomics.notify(ctrl, CTRL.READY);

while (same) {
  // poll a while first (see SPIN_US): the next job often follows within microseconds (packing, then the product)
  if (!spinWhile(ctrl, CTRL.GEN, seen)) Atomics.wait(ctrl, CTRL.GEN, seen);
  const gen = Atomics.load(ctrl, CTRL.GEN);
  if (gen === seen) continue;
  seen = gen;
  const id = Atomics.load(ctrl, CTRL.JOB);
  if (id === EXIT) break;
  const n = Atomics.load(ctrl, CTRL.NTASKS);
  try {
    const job = jobById(id);
    const p = decodeParams(job, params);
    const scratch = Atomics.load(ctrl, CTRL.SCRATCH) + tid * Atomics.load(ctrl, CTRL.SCRATCH_PER);
    for (let t = Atomics.add(ctrl, CTRL.NEXT, 1); t < n; t = Atomics.add(ctrl, CTRL.NEXT, 1)) job.task(k, p, t, scratch);
  } catch {
    Atomics.store(ctrl, CTRL.ERR, 1);
    Atomics.store(ctrl, CTRL.NEXT, n);
  }
  if (Atomics.sub(ctrl, CTRL.PENDING, 1) === 1) Atomics.notify(ctrl, CTRL.PENDING);
}
