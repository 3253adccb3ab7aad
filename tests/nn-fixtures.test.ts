// Golden tests against PyTorch/torchvision (fixtures from scripts/make-torch-fixtures.py): logits of the CIFAR
// resnet20 and mobilenet_v2 (width 0.25) loaded from safetensors files of torch-initialised weights, in eval and train
// mode (with the running statistics BN updates), a forward hook's capture, and torchvision's full resnet18 and
// mobilenet_v2 with formula weights (a hash of key and index, mirrored from the fixture script).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { Tensor, tensor, noGrad, models, loadSafetensors, loadCheckpoint, type Module } from '../index.js';
import { formulaValue } from './helpers/formula-weights.js';

const FIX = fileURLToPath(new URL('../../tests/fixtures/torch/', import.meta.url));
interface LogitsEntry {
  input?: number[];
  inputShape: number[];
  evalLogits: number[];
  trainLogits?: number[];
  bn1RunningMeanAfter?: number[];
  bn1RunningVarAfter?: number[];
  'layer2.1Output'?: { shape: number[]; sum: number; sumAbs: number };
}
const golden = JSON.parse(readFileSync(FIX + 'logits.json', 'utf8')) as Record<string, LogitsEntry>;

/** Largest |a - b| and the largest |b|, for error messages and relative checks. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  assert.is(a.length, b.length, 'lengths differ');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff, scale };
}

function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, rel = 2e-5): void {
  const { diff, scale } = maxDiff(got, want);
  console.log(`  ${name}: max abs diff ${diff.toExponential(2)} (max |value| ${scale.toFixed(3)})`);
  assert.ok(diff <= rel * Math.max(1, scale), `${name}: max abs diff ${diff} exceeds ${rel} x ${Math.max(1, scale)}`);
}


function setFormulaWeights(model: Module): void {
  const record: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(model.stateDict())) record[k] = new Tensor(formulaValue(k, t.shape), t.shape);
  model.loadStateDict(record, { strict: true });
}

const inputOf = (e: LogitsEntry) => tensor(e.input!, e.inputShape);

test('resnet20 from safetensors: eval logits, hook capture, train logits and running stats match PyTorch', () => {
  const e = golden.resnet20;
  const model = models.resnet20({ numClasses: 10 });
  model.loadStateDict(loadSafetensors(FIX + 'resnet20.safetensors'), { strict: true });
  model.eval();
  const x = inputOf(e);
  let captured: Tensor | null = null;
  const block = model.getSubmodule('layer2.1');
  const handle = block.registerForwardHook((_m, _input, output) => {
    captured = output;
  });
  const logits = noGrad(() => model.call(x));
  handle.remove();
  expectClose('resnet20 eval logits', logits.toArray(), e.evalLogits);
  const cap = captured as Tensor | null;
  assert.ok(cap, 'forward hook did not fire');
  assert.equal([...cap!.shape], e['layer2.1Output']!.shape);
  let sum = 0;
  for (const v of cap!.toArray()) sum += v;
  assert.ok(Math.abs(sum - e['layer2.1Output']!.sum) < 1e-4 * Math.abs(e['layer2.1Output']!.sum), `hooked block output sum ${sum}`);
  // The handle removed the hook: a second forward must not call it.
  captured = null;
  noGrad(() => model.call(x));
  assert.is(captured, null, 'hook still fires after remove()');

  model.train();
  const trainLogits = noGrad(() => model.call(x));
  expectClose('resnet20 train logits', trainLogits.toArray(), e.trainLogits!, 1e-4);
  const sd = model.stateDict();
  expectClose('resnet20 bn1 running_mean after a train step', sd['bn1.running_mean'].toArray(), e.bn1RunningMeanAfter!);
  expectClose('resnet20 bn1 running_var after a train step', sd['bn1.running_var'].toArray(), e.bn1RunningVarAfter!);
  assert.is(sd['bn1.num_batches_tracked'].item(), 8, 'num_batches_tracked is 7 in the file, 8 after one train forward');
});

test('mobilenet_v2 width 0.25 from safetensors (via loadCheckpoint) matches torchvision eval logits', () => {
  const e = golden['mobilenet_v2_w0.25'];
  const model = models.mobilenetV2({ numClasses: 10, widthMult: 0.25 });
  model.loadStateDict(loadCheckpoint(FIX + 'mobilenet-v2-w0.25.safetensors'), { strict: true });
  model.eval();
  const logits = noGrad(() => model.call(inputOf(e)));
  expectClose('mobilenet_v2 w0.25 eval logits', logits.toArray(), e.evalLogits);
});

for (const [name, build] of [
  ['resnet18', () => models.resnet18()],
  ['mobilenet_v2', () => models.mobilenetV2()],
] as const) {
  test(`torchvision ${name} (full size, formula weights) matches torchvision eval logits`, () => {
    const e = golden[name];
    const model = build();
    setFormulaWeights(model);
    model.eval();
    const x = new Tensor(formulaValue('input', e.inputShape), e.inputShape);
    const logits = noGrad(() => model.call(x));
    assert.equal([...logits.shape], [e.inputShape[0], 1000]);
    expectClose(`${name} eval logits`, logits.toArray(), e.evalLogits);
  });
}

test.run();
