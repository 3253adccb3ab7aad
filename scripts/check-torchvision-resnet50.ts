// Step 2 of the torchvision resnet50 check (scripts/check-torchvision-resnet50.sh runs both steps): load the
// torch.save checkpoint step 1 wrote into models.resnet50() with strict = true, run the same input in eval mode and
// compare with torchvision's logits. Prints the max abs logit difference; exits 1 when it exceeds 1e-4 relative to
// the largest logit or the top-1 class differs.
// Usage: node dist/scripts/check-torchvision-resnet50.js OUT_DIR

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { backend, noGrad, Tensor, loadCheckpoint, models, init } from '../index.js';

const dir = process.argv[2] ?? '/tmp/ptslab-resnet50-check';
const meta = JSON.parse(readFileSync(join(dir, 'check.json'), 'utf8')) as { torch: string; torchvision: string; inputShape: number[]; logitsShape: number[]; checkpoint: string };
const f32 = (name: string) => {
  const b = readFileSync(join(dir, name));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

let t = performance.now();
const record = loadCheckpoint(join(dir, meta.checkpoint));
const model = init.skipInit(() => models.resnet50());
model.loadStateDict(record, { strict: true });
model.eval();
console.log(`loaded ${meta.checkpoint} (${Object.keys(record).length} entries, ${model.numParameters().toLocaleString('en-US')} parameters) with strict = true in ${((performance.now() - t) / 1000).toFixed(1)} s`);

t = performance.now();
const logits = noGrad(() => model.call(new Tensor(f32('input.f32'), meta.inputShape)));
const got = logits.toArray();
const want = f32('logits.f32');
let diff = 0;
let scale = 0;
let argGot = 0;
let argWant = 0;
for (let i = 0; i < want.length; i++) {
  diff = Math.max(diff, Math.abs(got[i] - want[i]));
  scale = Math.max(scale, Math.abs(want[i]));
  if (got[i] > got[argGot]) argGot = i;
  if (want[i] > want[argWant]) argWant = i;
}
console.log(`forward ${meta.inputShape.join('x')} on backend '${backend().name}' in ${((performance.now() - t) / 1000).toFixed(1)} s`);
console.log(`torchvision ${meta.torchvision} (torch ${meta.torch}) vs ptslab: max abs logit difference ${diff.toExponential(3)}, max |logit| ${scale.toFixed(3)}, top-1 ${argGot} vs ${argWant}`);
const ok = diff <= 1e-4 * Math.max(1, scale) && argGot === argWant && got.length === want.length;
console.log(ok ? 'OK' : 'MISMATCH');
process.exitCode = ok ? 0 : 1;
