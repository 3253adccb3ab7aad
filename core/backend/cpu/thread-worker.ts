// Entry point of one cpu-backend pool worker: instantiate the kernels on the shared wasm memory, report ready, then
// loop forever: sleep on the generation counter, claim tasks of the published job until none are left, check out.
// See threads.ts for the protocol.

import { workerData } from 'node:worker_threads';
import { JobKind, runTask } from './jobs.js';
import { CTRL } from './threads.js';
import { instantiate, type WasmMemory, type WasmModule } from './wasm.js';

const { module, memory, ctrl: sab, tid } = workerData as {
  module: WasmModule;
  memory: WasmMemory;
  ctrl: SharedArrayBuffer;
  tid: number;
};
const k = instantiate(module, memory);
const ctrl = new Int32Array(sab);
const params = ctrl.subarray(CTRL.PARAMS);

let seen = Atomics.load(ctrl, CTRL.GEN);
Atomics.add(ctrl, CTRL.READY, 1);
Atomics.notify(ctrl, CTRL.READY);

for (;;) {
  Atomics.wait(ctrl, CTRL.GEN, seen);
  const gen = Atomics.load(ctrl, CTRL.GEN);
  if (gen === seen) continue;
  seen = gen;
  const kind = Atomics.load(ctrl, CTRL.KIND) as JobKind;
  if (kind === JobKind.Exit) break;
  const n = Atomics.load(ctrl, CTRL.NTASKS);
  try {
    for (let t = Atomics.add(ctrl, CTRL.NEXT, 1); t < n; t = Atomics.add(ctrl, CTRL.NEXT, 1)) runTask(k, kind, params, t, tid);
  } catch {
    Atomics.store(ctrl, CTRL.ERR, 1);
    Atomics.store(ctrl, CTRL.NEXT, n);
  }
  if (Atomics.sub(ctrl, CTRL.PENDING, 1) === 1) Atomics.notify(ctrl, CTRL.PENDING);
}
