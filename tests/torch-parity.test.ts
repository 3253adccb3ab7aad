// Forward values and gradients of core ops against PyTorch (golden cases in tests/fixtures/torch-core-ops.json,
// made by scripts/make-core-fixtures.py). Gradient checks prove backward matches our forward; this proves the
// forward itself means what PyTorch means (output sizes, divisors, unbiased variance, label smoothing, ties).

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { F, tensor, type Tensor } from '../core/index.js';

interface Golden {
  name: string;
  args: Record<string, any>;
  inputs: { shape: number[]; data: number[] }[];
  output: { shape: number[]; data: number[] };
  grads: number[][];
  runningMean?: number[];
  runningVar?: number[];
  runningMeanAfter?: number[];
  runningVarAfter?: number[];
}

const fixture = JSON.parse(readFileSync(new URL('../../tests/fixtures/torch-core-ops.json', import.meta.url), 'utf8')) as {
  torch: string;
  cases: Golden[];
};

const f64 = (data: number[], shape: number[], requiresGrad = false) => tensor(data, shape, { dtype: 'float64', requiresGrad });

/** How to run each golden case in ptslab, keyed by the case name's first word. */
const runners: Record<string, (c: Golden, xs: Tensor[], state: { rm?: Tensor; rv?: Tensor }) => Tensor> = {
  conv2d: (c, [x, w, b]) => F.conv2d(x, w, b, c.args),
  maxPool2d: (c, [x]) => F.maxPool2d(x, c.args as any),
  avgPool2d: (c, [x]) => F.avgPool2d(x, c.args as any),
  adaptiveAvgPool2d: (c, [x]) => F.adaptiveAvgPool2d(x, c.args.outputSize),
  batchNorm2d: (c, [x, w, b], s) => {
    s.rm = f64(c.runningMean!, [c.runningMean!.length]);
    s.rv = f64(c.runningVar!, [c.runningVar!.length]);
    return F.batchNorm2d(x, s.rm, s.rv, w, b, c.args);
  },
  var: (c, [x]) => x.var(c.args.dims ?? undefined, c.args.keepDim),
  crossEntropy: (c, [z]) => F.crossEntropy(z, c.args.target, { labelSmoothing: c.args.labelSmoothing }),
  nllLoss: (c, [z]) => F.nllLoss(F.logSoftmax(z, 1), c.args.target),
  klDiv: (c, [s, t]) => F.klDiv(s, t, { temperature: c.args.temperature }),
  logSoftmax: (c, [x]) => F.logSoftmax(x, c.args.dim),
  softmax: (c, [x]) => F.softmax(x, c.args.dim),
  mseLoss: (_, [a, b]) => F.mseLoss(a, b),
  matmul: (_, [a, b]) => a.matmul(b),
  pad: (c, [x]) => x.pad(c.args.pads, c.args.value),
  relu6: (_, [x]) => F.relu6(x.mul(4)),
  max: (c, [x]) => x.max(c.args.dim),
  maximum: (_, [a, b]) => a.maximum(b),
  pow: (_, [a, b]) => a.pow(b),
  linear: (_, [x, w, b]) => F.linear(x, w, b),
};

function close(actual: ArrayLike<number>, expected: number[], what: string) {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!(Math.abs(a - e) <= 1e-9 + 1e-7 * Math.abs(e))) assert.unreachable(`${what}[${i}]: ptslab ${a}, torch ${e}`);
  }
}

const test = suite(`torch parity (PyTorch ${fixture.torch})`);
for (const c of fixture.cases) {
  test(c.name, () => {
    const run = runners[c.name.split(' ')[0]];
    assert.ok(run, `no runner for ${c.name}`);
    const xs = c.inputs.map((i) => f64(i.data, i.shape, true));
    const state: { rm?: Tensor; rv?: Tensor } = {};
    const out = run(c, xs, state);
    assert.equal(out.shape, c.output.shape, `${c.name}: output shape`);
    close(out.toArray(), c.output.data, `${c.name} output`);
    const w = f64(c.output.data.map((_, i) => Math.sin(i + 1)), c.output.shape);
    out.mul(w).sum().backward();
    xs.forEach((x, k) => close(x.grad!.toArray(), c.grads[k], `${c.name} grad ${k}`));
    if (c.runningMeanAfter) {
      close(state.rm!.toArray(), c.runningMeanAfter, `${c.name} running mean`);
      close(state.rv!.toArray(), c.runningVarAfter!, `${c.name} running var`);
    }
  });
}
test.run();
