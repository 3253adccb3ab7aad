// `node dist/scripts/import-speed.js [--batch N] [--steps S]`: what a plain `import 'ptslab'` gives a user, timed on a
// CIFAR ResNet-20 (1 input channel, 10 classes) forward + cross-entropy + backward on random 28x28 inputs (batch 64
// unless --batch; one warm step, then S timed steps, default 3). The backend is whatever the package picks on the
// first op (PTSLAB_BACKEND, else auto); PTSLAB_BACKEND=reference gives what the import did before it picked one.
// Prints the backend, the first step (which includes resolving the backend: the auto probe on a machine's first run,
// a cache read after) and the median timed step.

import { F, backend, manualSeed, models, randn } from '../index.js';

function opt(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`import-speed: ${name} must be a positive integer, got '${process.argv[i + 1]}'`);
  return v;
}

const batch = opt('--batch', 64);
const steps = opt('--steps', 3);
manualSeed(0);
const model = models.resnet20({ numClasses: 10, inChannels: 1 });
const x = randn([batch, 1, 28, 28]);
const labels = Array.from({ length: batch }, (_, i) => i % 10);

/** One forward + backward; returns its milliseconds. */
function step(): number {
  const t0 = performance.now();
  F.crossEntropy(model.call(x), labels).backward();
  const ms = performance.now() - t0;
  model.zeroGrad();
  return ms;
}

const first = step();
const times = Array.from({ length: steps }, step).sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(JSON.stringify({
  backend: backend().name,
  PTSLAB_BACKEND: process.env.PTSLAB_BACKEND ?? null,
  batch,
  firstStepMs: Math.round(first),
  medianStepMs: Math.round(median),
  stepsMs: times.map(Math.round),
}));
