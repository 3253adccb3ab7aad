// The cpu backend in a browser (web/worker.ts, the page's Web Worker). A page served by a plain static file server
// is not cross-origin isolated (no COOP/COEP headers, `crossOriginIsolated` is false), so it has no
// SharedArrayBuffer and cannot create a shared WebAssembly.Memory: the Node path's kernels (kernels.wasm and
// kernels-fma.wasm import a shared memory) cannot be instantiated there, and a worker pool over shared memory with
// Atomics.wait could not exist either. So the browser gets the same kernels built from the same sources against a
// non-shared imported memory (build-wasm.ts: kernels-noshared.wasm, SIMD128; kernels-fma-noshared.wasm, relaxed-SIMD
// FMA; the kernels use no atomics, so neither needs the threads feature), runs on one thread (threadCount() is 1:
// every job's tasks run on the calling thread, the pool never starts), and touches no Node API (no node:fs reads or
// rebuilds, no node:v8 flag, no node:os, no Buffer: copies out are ArrayBuffer.slice). The FMA build is used where
// the engine validates relaxed SIMD and the probe shows relaxed_madd fused (what the Node path checks), else
// SIMD128. Call fetchCpuWasm (or fetch a NOSHARED_FILES file yourself and call provideCpuWasm) before the backend's
// first use, then setBackend(cpuBackend). web/build.ts copies both files into dist-web/ next to worker.js. On one
// thread the SIMD128 non-shared build gives the same bits as the shared kernels.wasm (tests/cpu-noshared.test.ts).

import { PtslabError } from '../../errors.js';
import { NOSHARED_FILES } from './build-wasm.js';
import { fmaBuildWorks, provideCpuWasm } from './wasm.js';

export { NOSHARED_FILES } from './build-wasm.js';
export { fmaBuildWorks, provideCpuWasm } from './wasm.js';

/**
 * Fetch the non-shared kernel build from `base` (a folder URL, or a file URL next to which the .wasm files lie, e.g.
 * the worker script's import.meta.url) and hand it to the cpu backend. opts.fma: false forces SIMD128; by default the
 * FMA build where fmaBuildWorks(). Returns which file it loaded.
 */
export async function fetchCpuWasm(base: string | URL, opts: { fma?: boolean } = {}): Promise<{ file: string; fma: boolean }> {
  const fma = opts.fma ?? fmaBuildWorks();
  const file = fma ? NOSHARED_FILES.fma : NOSHARED_FILES.simd;
  const url = new URL(file, base);
  const r = await fetch(url);
  if (!r.ok) throw new PtslabError(`cpu backend: cannot fetch the wasm kernels ${url}: HTTP ${r.status}`);
  provideCpuWasm(new Uint8Array(await r.arrayBuffer()), { fma, file });
  return { file, fma };
}
