// Which backend runs each kernel, per backend, and the host/device boundary every backend shares:
// - reference and cpu serve every kernel themselves (the sparse ones: cpu only);
// - gpujs serves every kernel but the sparse ones, which it has not (read from the registry's entry, without
//   loading gpu.js);
// - composeBackend records served and delegated kernels, runs each where it says;
// - a device array reaches host kernels read back (one counted readback per array), toArray/item read it back,
//   Tensor.moveTo uploads and reads back, and host-only code (optimizers, gradcheck) refuses a device tensor with
//   an error that names the device.

import * as assert from 'uvu/assert';
import { test } from 'uvu';
import '../core/backend/all.js';
import { KERNEL_NAMES, composeBackend, hostBackend } from '../core/backend/compose.js';
import { cpuBackend } from '../core/backend/cpu/index.js';
import { gpujsEntry } from '../core/backend/gpujs/index.js';
import { gpujsLoadAttempted } from '../core/backend/gpujs/loader.js';
import { referenceBackend, referenceKernels } from '../core/backend/reference.js';
import type { Backend, KernelName } from '../core/backend/types.js';
import { hostData, type DeviceArray, type Storage } from '../core/dtype.js';
import { ArgumentError, PtslabError, gradcheck, tensor, withBackend } from '../core/index.js';
import { Adam } from '../nn/index.js';
import { throwsMatching } from './helpers/throws.js';

const table = (b: Backend) => ({ ...b.kernels });
const byRunner = (b: Backend) => {
  const out: Record<string, string[]> = {};
  for (const n of KERNEL_NAMES) (out[String(b.kernels[n])] ??= []).push(n);
  return out;
};

test('KERNEL_NAMES lists each kernel once', () => {
  assert.is(new Set(KERNEL_NAMES).size, KERNEL_NAMES.length);
  assert.is(KERNEL_NAMES.length, 24);
});

const INFERENCE_ONLY = ['conv2dAct', 'sparseConv2d', 'sparseLinear', 'maxPool2dInference'];

test('reference serves every kernel but the inference-only ones (fused conv, sparse)', () => {
  assert.equal(byRunner(referenceBackend), {
    reference: KERNEL_NAMES.filter((n) => !INFERENCE_ONLY.includes(n)),
    null: INFERENCE_ONLY,
  });
});

test('cpu serves every kernel, the inference-only ones included', () => {
  assert.equal(byRunner(cpuBackend), { cpu: [...KERNEL_NAMES] });
});

test('gpujs serves every kernel but the inference-only ones, read without loading gpu.js', () => {
  const loadedBefore = gpujsLoadAttempted();
  assert.equal(byRunner(gpujsEntry), {
    gpujs: KERNEL_NAMES.filter((n) => !INFERENCE_ONLY.includes(n)),
    null: INFERENCE_ONLY,
  });
  assert.is(gpujsLoadAttempted(), loadedBefore, 'listing the kernels loaded gpu.js');
});

/** A toy device: arrays that count their readbacks, and a backend that uploads into them. */
class ToyArray implements DeviceArray {
  readonly device = 'toy';
  reads = 0;
  constructor(private readonly values: Float32Array, readonly dtype: 'float32' | 'float64' = 'float32') {}
  get length() {
    return this.values.length;
  }
  read(): Storage {
    this.reads++;
    return this.values.slice();
  }
}

function toyBackend(): Backend & { served: number } {
  const state = { served: 0 };
  const delegate = Object.fromEntries(KERNEL_NAMES.filter((n) => n !== 'unary').map((n) => [n, referenceBackend])) as never;
  return composeBackend({
    name: 'toy',
    serve: {
      // negation "on the device": the result stays a ToyArray
      unary: (op, x) => {
        state.served++;
        const host = hostData(referenceBackend.contiguous(x) as Storage);
        return new ToyArray(Float32Array.from(hostData(referenceKernels.unary(op, { data: host, shape: x.shape, strides: x.shape.map((_, i) => x.shape.slice(i + 1).reduce((a, b) => a * b, 1)), offset: 0 }))));
      },
    },
    delegate,
  }, {
    upload: (d: Storage) => new ToyArray(Float32Array.from(d)),
    get served() {
      return state.served;
    },
  });
}

test('composeBackend records served and delegated kernels and runs each where it says', () => {
  const toy = toyBackend();
  const expected: Record<KernelName, string | null> = Object.fromEntries(KERNEL_NAMES.map((n) => [n, referenceBackend.kernels[n]])) as never;
  expected.unary = 'toy';
  assert.equal(table(toy), expected);
  withBackend(toy, () => {
    const x = tensor([1, -2, 3]);
    const y = x.neg();
    assert.is(toy.served, 1);
    assert.instance(y.data, ToyArray, 'a served kernel hands out its own arrays');
    // a delegated kernel (binary add, on the reference) reads the device input back once
    const z = y.add(1);
    assert.is((y.data as ToyArray).reads, 1);
    assert.ok(z.isHost);
    assert.equal(Array.from(z.toArray()), [0, 3, -2]);
  });
});

test('host kernels read a device array back once per call; toArray, item and moveTo cross explicitly', () => {
  const toy = toyBackend();
  const t = tensor([4, 5, 6]).moveTo(toy);
  assert.instance(t.data, ToyArray);
  assert.not.ok(t.isHost);
  const arr = t.data as ToyArray;
  withBackend('reference', () => {
    assert.equal(Array.from(t.mul(2).toArray()), [8, 10, 12]);
  });
  assert.is(arr.reads, 1, 'one readback for the reference kernel');
  assert.is(t.slice(0, 1, 2).reshape([]).item(), 5);
  assert.is(arr.reads, 2, 'item reads back');
  t.moveTo(referenceBackend);
  assert.ok(t.isHost);
  assert.is(arr.reads, 3);
  assert.equal(Array.from(t.data as Float32Array), [4, 5, 6]);
  // hostBackend accepts views over device arrays too (what cpu and reference are made of)
  const host = hostBackend('host-test', referenceKernels);
  const d = new ToyArray(new Float32Array([1, 2]));
  assert.equal(Array.from(hostData(host.unary('neg', { data: d, shape: [2], strides: [1], offset: 0 }))), [-1, -2]);
  assert.is(d.reads, 1);
});

test('host-only code refuses a device tensor and names the device', () => {
  const toy = toyBackend();
  const p = tensor([1, 2], undefined, { requiresGrad: true });
  p.grad = tensor([0.5, 0.5]);
  p.moveTo(toy);
  // Adam has no device update: it refuses, naming the device
  throwsMatching(() => new Adam([p], { lr: 0.1 }).step(), ArgumentError, /Adam step: needs a tensor on the host, got .* on device 'toy'/);
  // a host backend never writes into a readback copy of a device array (the write would be lost)
  throwsMatching(() => referenceBackend.assign(p, tensor([0, 0])), PtslabError, /reference backend: cannot assign into a device array of 'toy'/);
  const x = tensor([1, 2], undefined, { dtype: 'float64', requiresGrad: true });
  x.data = new ToyArray(new Float32Array([1, 2]), 'float64');
  throwsMatching(() => gradcheck((a) => a.mul(2).sum(), [x]), ArgumentError, /gradcheck: needs a tensor on the host/);
});

test.run();
