// FCPTS iterations on the gpujs backend with the model on the device: per iteration, its ms and the host <-> device
// traffic the backend counted (uploads and readbacks, with bytes). The benchmark pair of scripts/bench-fcpts.ts
// (fmnist-resnet20, seeded random init, synthetic randn batches [B, 1, 28, 28], target 0.8), moved to the device with
// Module.moveTo; `--host` leaves the model on the host instead (every kernel then uploads its operands and reads its
// result back: what the backend did before device arrays). Run in WebGL mode:
//   PTSLAB_GPUJS_MODE=headlessgl xvfb-run -a -s "-screen 0 640x480x24" node dist/scripts/gpujs-fcpts-step.js [batch] [iters] [--host] [--json] [--profile | --sync]
// (--sync: the profile with the GL pipeline finished after every op, so that each op is charged its own work)

import { formatProfile, profileOpsAsync, withBackend } from '../core/index.js';
import { createGpujsBackend } from '../core/backend/gpujs/index.js';
import { fcptsStepRecords, type StepRecord } from '../web/bench-cases.js';
import { benchmarkPair } from './bench-fcpts.js';
import { median } from './bench-models.js';

export type { StepRecord };

/**
 * `iters` FCPTS iterations at `batch` on a fresh gpujs backend; the model on the device unless onHost; with profile,
 * also the per-op profile of the iterations after the first (core/profile.ts) as a table. The timed loop is
 * web/bench-cases.ts's fcptsStepRecords (the GPU check's FCPTS case runs the same one, on the bundled weights).
 */
export async function gpujsFcptsSteps(batch: number, iters: number, onHost = false, profile: false | 'async' | 'sync' = false): Promise<{ mode: string; steps: (StepRecord & { kernels: number })[]; profile?: string }> {
  const gb = createGpujsBackend();
  if ('unavailable' in gb) throw new Error(`gpujs is not available here: ${gb.unavailable}`);
  const pair = benchmarkPair();
  let steps: StepRecord[] = [];
  // kernels compiled by the end of each iteration (a compile on llvmpipe costs about 100 ms)
  const kernels: number[] = [];
  const onStep = () => void kernels.push(gb.kernelCount);
  let table: string | undefined;
  try {
    await withBackend(gb, async () => {
      if (!profile) return void (steps = await fcptsStepRecords(pair, batch, iters, { onHost, onStep }));
      // sync: GL finish() after every op, so that each op is charged its own draws (WebGL runs them lazily)
      const gl = profile === 'sync' ? gb.glContext() : null;
      const r = await profileOpsAsync((ctl) => fcptsStepRecords(pair, batch, iters, { onHost, onStep, before: (step) => void (step === 1 && ctl.reset()) }), gl ? { sync: () => gl.finish() } : {});
      steps = r.result;
      table = formatProfile(r.profile, { top: 14, per: iters - 1 });
    });
  } finally {
    gb.dispose();
  }
  return { mode: gb.mode, steps: steps.map((s, i) => ({ ...s, kernels: kernels[i] })), ...(table ? { profile: table } : {}) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const batch = Number(args[0] ?? 16), iters = Number(args[1] ?? 4);
  const onHost = process.argv.includes('--host');
  const { mode, steps, profile } = await gpujsFcptsSteps(batch, iters, onHost, process.argv.includes('--sync') ? 'sync' : process.argv.includes('--profile') && 'async');
  if (process.argv.includes('--json')) console.log(JSON.stringify({ batch, iters, onHost, mode, steps }));
  else {
    console.log(`gpujs (${mode}) FCPTS on fmnist-resnet20, batch ${batch}, model on the ${onHost ? 'host' : 'device'}`);
    for (const s of steps) {
      console.log(`  iteration ${s.step}: ${s.ms.toFixed(0)} ms, ${s.uploads} uploads (${s.uploadBytes} B), ${s.readbacks} readbacks (${s.readbackBytes} B), ${s.kernels} kernels compiled by then`);
    }
    console.log(`  median after the first: ${median(steps.slice(1).map((s) => s.ms)).toFixed(0)} ms`);
    if (profile) console.log(profile);
  }
}
