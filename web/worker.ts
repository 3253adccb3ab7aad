// The page's Web Worker (dist-web/worker.js, started as `new Worker(new URL('./worker.js', import.meta.url),
// { type: 'module' })`): the page's run (web/run.ts) on the wasm cpu backend, off the tab's main thread so the page
// never freezes. Served by a plain static file server the page is not cross-origin isolated, so there is no
// SharedArrayBuffer: the worker fetches the non-shared kernel build next to this script (kernels-fma-noshared.wasm
// where relaxed-SIMD FMA works, else kernels-noshared.wasm; core/backend/cpu/browser.ts) and runs it on one thread.
//
// Protocol. The page posts one { kind: 'start', options } (web/run.ts's PageRunOptions, structured-cloneable, no
// callbacks). The worker posts back
//   { kind: 'event', event }      each PageEvent the run emits, in order (first a 'status' naming the kernel build);
//   { kind: 'done', report }      the PageReport at the end (then the page may terminate the worker);
//   { kind: 'error', message, stack }  if anything failed (loading the kernels or the run); nothing follows.
// One run per worker: the kernels load once per worker, so start a new worker for the next run.

import type { PageEvent, PageReport, PageRunOptions } from './run.js';

/** What the page posts. */
export type WorkerRequest = { kind: 'start'; options: PageRunOptions };
/** What the worker posts. */
export type WorkerMessage =
  | { kind: 'event'; event: PageEvent }
  | { kind: 'done'; report: PageReport }
  | { kind: 'error'; message: string; stack?: string };

// this file is type-checked with the DOM lib (web/tsconfig.json), whose `self` is a Window: the worker's few members
const scope = self as unknown as {
  postMessage(m: WorkerMessage): void;
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
};
const post = (m: WorkerMessage) => scope.postMessage(m);

// Modules read process.env (and build-wasm.ts process.argv) while they load or run; a worker has no `process`, and
// index.html's shim is the tab's. The same shim here, before anything else loads: every module below is imported
// dynamically for that reason (esbuild bundles them into this file all the same).
(globalThis as { process?: unknown }).process ??= { env: {}, argv: [], versions: {}, platform: 'browser', cwd: () => '/' };

let started = false;

async function start(o: PageRunOptions): Promise<void> {
  const [{ setBackend }, { cpuBackend, cpuKernelInfo }, { fetchCpuWasm }, run] = await Promise.all([
    import('../core/backend/index.js'),
    import('../core/backend/cpu/index.js'),
    import('../core/backend/cpu/browser.js'),
    import('./run.js'),
  ]);
  const emit = (event: PageEvent) => post({ kind: 'event', event });
  await fetchCpuWasm(import.meta.url);
  const why = cpuBackend.unavailableReason?.();
  if (why) throw new Error(why);
  setBackend(cpuBackend);
  const k = cpuKernelInfo();
  emit({ kind: 'status', text: `cpu backend in a Web Worker: ${k.file} (${k.fma ? 'relaxed-SIMD FMA' : 'SIMD128'}), 1 thread` });
  const report = await run.runPage(o, emit);
  post({ kind: 'done', report });
}

scope.onmessage = (e) => {
  const m = e.data;
  if (m?.kind !== 'start') return void post({ kind: 'error', message: `worker: unknown message ${JSON.stringify((m as { kind?: unknown })?.kind)}; expected { kind: 'start', options }` });
  if (started) return void post({ kind: 'error', message: 'worker: one run per worker (the kernels load once): start a new Worker for the next run' });
  started = true;
  start(m.options).catch((err: unknown) => {
    const x = err instanceof Error ? err : new Error(String(err));
    post({ kind: 'error', message: x.message, stack: x.stack });
  });
};
