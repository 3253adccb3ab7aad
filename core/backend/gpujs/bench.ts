// A small benchmark of the gpujs backend's matmul and conv2d forward, in the gpu.js mode of this process (set
// PTSLAB_GPUJS_MODE to pick one; WebGL needs `xvfb-run -a` and .ci/gpu-setup.sh). It prints GFLOP/s medians, warm-up
// (which includes kernel compilation) excluded. Run: node dist/core/backend/gpujs/bench.js [--quick]
// --quick uses a 128 -> 128 channel 28x28 conv instead of 256 -> 256 at 56x56 (3.7 GFLOP), for the slow modes.

import { pathToFileURL } from 'node:url';
import { referenceBackend } from '../reference.js';
import type { Backend, Conv2dParams, View } from '../types.js';
import { contiguousStrides, numel } from '../../shape.js';
import { createGpujsBackend } from './index.js';

function randomView(shape: number[]): View {
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  return { data, shape, strides: contiguousStrides(shape), offset: 0 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** GFLOP/s of fn (flop floating-point operations per call): one warm-up, then the median of `runs` calls. */
function gflops(flop: number, runs: number, fn: () => unknown): { gflops: number; warmupMs: number; ms: number } {
  let t = performance.now();
  fn();
  const warmupMs = performance.now() - t;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  const ms = median(times);
  return { gflops: flop / ms / 1e6, warmupMs, ms };
}

export function benchGpujs(quick: boolean, runs = 3): void {
  const b = createGpujsBackend();
  if ('unavailable' in b) {
    console.log(`gpujs unavailable: ${b.unavailable}`);
    return;
  }
  const cases: Array<{ name: string; flop: number; run: (k: Backend) => unknown; ref: boolean }> = [];
  const a = randomView([1, 512, 512]);
  const c = randomView([1, 512, 512]);
  cases.push({ name: 'GEMM 512x512x512', flop: 2 * 512 ** 3, run: (k) => k.matmul(a, c), ref: true });
  const [C, S] = quick ? [128, 28] : [256, 56];
  const x = randomView([1, C, S, S]);
  const w = randomView([C, C, 3, 3]);
  const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
  cases.push({ name: `conv ${C}->${C} 3x3 ${S}x${S} N=1`, flop: 2 * C * C * 9 * S * S, run: (k) => k.conv2d(x, w, null, p), ref: quick });
  console.log(`gpujs bench, gpu.js mode '${b.mode}', ${runs} timed runs (median), warm-up includes kernel compilation`);
  for (const cs of cases) {
    const g = gflops(cs.flop, runs, () => cs.run(b));
    const line = `${cs.name}: ${g.gflops.toFixed(2)} GFLOP/s (${g.ms.toFixed(0)} ms; warm-up ${g.warmupMs.toFixed(0)} ms)`;
    const r = cs.ref ? gflops(cs.flop, 1, () => cs.run(referenceBackend)) : null;
    console.log(r ? `${line}; reference backend ${r.gflops.toFixed(2)} GFLOP/s` : line);
  }
  if (b.fallbacks.length) console.log(`fallbacks: ${b.fallbacks.join('; ')}`);
  b.dispose();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchGpujs(process.argv.includes('--quick'));
}
