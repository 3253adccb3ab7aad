// Device-resident tensors on the gpujs backend (WebGL mode: headless-gl on llvmpipe under xvfb-run in CI, the path a
// browser's GPU takes). A residual block's forward and backward (conv, batch norm in training with its running
// statistics, relu, add, and their gradients) on tensors moved to the device run without a single readback until
// toArray(); the values equal the reference backend's within float32 tolerance; uploads are the moved tensors plus
// broadcast scalars; a kernel gpu.js cannot take (pow) reads its input back, counted; reductions stay on the device; dispose() leaves arrays that say so.
// In webasm and cpu modes gpu.js has no device memory: one SKIPPED line says so.

import * as assert from 'uvu/assert';
import { test } from 'uvu';
import '../core/backend/all.js';
import { GpuArray, createGpujsBackend } from '../core/backend/gpujs/index.js';
import { F, Generator, PtslabError, randn, ones, tensor, zeros, withBackend, type Tensor } from '../core/index.js';
import { SGD, zeroMasked } from '../nn/index.js';
import { layerSparsity } from '../sparsity/bridge.js';
import { histogramDensity } from '../sparsity/density.js';
import { gpujsFcptsSteps } from '../scripts/gpujs-fcpts-step.js';
import { throwsMatching } from './helpers/throws.js';

const created = createGpujsBackend({ minElementwise: 0, minWork: 0 });
const mode = 'unavailable' in created ? null : created.mode;

interface Block {
  x: Tensor; w1: Tensor; w2: Tensor; gamma: Tensor; beta: Tensor; rm: Tensor; rv: Tensor;
}

function block(seed: number): Block {
  const g = new Generator(seed);
  return {
    x: randn([2, 4, 8, 8], { generator: g }),
    w1: randn([4, 4, 3, 3], { generator: g, std: 0.3 }).requiresGrad_(),
    w2: randn([4, 4, 3, 3], { generator: g, std: 0.3 }).requiresGrad_(),
    gamma: ones([4]).requiresGrad_(),
    beta: zeros([4]).requiresGrad_(),
    rm: zeros([4]),
    rv: ones([4]),
  };
}

/** relu(x + conv(relu(bn(conv(x))))), training-mode batch norm; returns the output (not reduced). */
function forward(b: Block): Tensor {
  const h = F.conv2d(b.x, b.w1, null, { padding: 1 });
  const n = F.batchNorm2d(h, b.rm, b.rv, b.gamma, b.beta, { training: true });
  return F.conv2d(n.relu(), b.w2, null, { padding: 1 }).add(b.x).relu();
}

function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 2e-4): void {
  assert.is(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])))) assert.unreachable(`${what}: element ${i} is ${got[i]}, reference ${want[i]}`);
  }
}

if (mode !== 'headlessgl') {
  const why = 'unavailable' in created ? created.unavailable : `gpu.js runs in '${mode}' mode here, which has no device memory (run under xvfb-run with PTSLAB_GPUJS_MODE=headlessgl: npm run test:webgl)`;
  console.log(`SKIPPED gpujs device residency: ${why}`);
  test.skip(`gpujs device residency (${why})`, () => undefined);
} else {
  const gb = created as Exclude<typeof created, { unavailable: string }>;

  test('a residual block forward and backward stays on the device until toArray, and matches the reference', () => {
    const ref = block(5);
    const want = withBackend('reference', () => {
      const y = forward(ref);
      y.backward(ones(y.shape));
      return { y: y.toArray(), gw1: ref.w1.grad!.toArray(), gw2: ref.w2.grad!.toArray(), gg: ref.gamma.grad!.toArray(), rm: ref.rm.toArray() };
    });

    const dev = block(5);
    gb.resetTransfers();
    const moved = Object.values(dev) as Tensor[];
    for (const t of moved) t.moveTo(gb);
    const movedFloats = moved.reduce((s, t) => s + t.size, 0);
    assert.ok(moved.every((t) => t.data instanceof GpuArray), 'moveTo put every tensor on the device');
    assert.is(gb.transfers().uploads, moved.length);
    withBackend(gb, () => {
      const y = forward(dev);
      y.backward(ones(y.shape).moveTo(gb));
      const t = gb.transfers();
      assert.is(t.readbacks, 0, `readbacks before toArray: ${JSON.stringify(t)}`);
      // the moved tensors, the backward seed, and broadcast scalars (momentum, eps, 1 in 1/sqrt)
      assert.ok(t.uploadBytes <= 4 * (movedFloats + y.size) + 4 * 64, JSON.stringify(t));
      assert.instance(y.data, GpuArray);
      assert.instance(dev.w1.grad!.data, GpuArray, 'gradients stay on the device');
      assert.instance(dev.rm.data, GpuArray, 'running statistics are updated on the device');
      close('y', y.toArray(), want.y);
      close('grad w1', dev.w1.grad!.toArray(), want.gw1);
      close('grad w2', dev.w2.grad!.toArray(), want.gw2);
      close('grad gamma', dev.gamma.grad!.toArray(), want.gg);
      close('running mean', dev.rm.toArray(), want.rm);
      assert.is(gb.transfers().readbacks, 5, 'one readback per toArray');
    });
  });

  test('a kernel gpu.js cannot take (pow) reads its device input back, counted, and gives a host array', () => {
    const x = randn([3, 5], { generator: new Generator(2) }).moveTo(gb);
    gb.resetTransfers();
    withBackend(gb, () => {
      const s = x.pow(2);
      assert.ok(s.isHost);
      assert.is(gb.transfers().readbacks, 1);
      assert.is(gb.transfers().readbackBytes, 4 * 15);
    });
  });

  test('reductions (sum, max, min over axes, NaN included) run on the device and match the reference', () => {
    const g = new Generator(8);
    const x = randn([3, 4, 5], { generator: g });
    x.toArray();
    const cases: [string, (t: Tensor) => Tensor][] = [
      ['sum all', (t) => t.sum()], ['sum 1', (t) => t.sum(1)], ['sum 0,2', (t) => t.sum([0, 2])],
      ['max 2', (t) => t.max(2)], ['min 0', (t) => t.min(0)], ['mean 1,2', (t) => t.mean([1, 2], true)],
    ];
    const want = withBackend('reference', () => cases.map(([, f]) => f(x).toArray()));
    const xd = x.detach().clone().moveTo(gb);
    gb.resetTransfers();
    withBackend(gb, () => {
      const got = cases.map(([, f]) => f(xd));
      assert.is(gb.transfers().readbacks, 0);
      got.forEach((t, i) => close(cases[i][0], t.toArray(), want[i], 1e-5));
    });
  });

  test('views of a device array (transpose, slice, broadcast) are gathered on the device', () => {
    const g = new Generator(4);
    const a = randn([6, 7], { generator: g });
    const want = withBackend('reference', () => a.T.slice(0, 1, 5).add(a.slice(1, 0, 1).T).toArray());
    a.moveTo(gb);
    gb.resetTransfers();
    withBackend(gb, () => {
      const y = a.T.slice(0, 1, 5).add(a.slice(1, 0, 1).T);
      assert.instance(y.data, GpuArray);
      assert.is(gb.transfers().readbacks, 0);
      close('gathered views', y.toArray(), want, 1e-6);
    });
  });

  test('SGD (momentum, weight decay, Nesterov) and zeroMasked update device parameters in place, no readback', () => {
    const g = new Generator(11);
    const make = () => {
      const gg = new Generator(11);
      return { p: randn([6, 5], { generator: gg }).requiresGrad_(), grad: randn([6, 5], { generator: gg }), mask: randn([6, 5], { generator: gg }).gt(0) };
    };
    void g;
    const run = (t: ReturnType<typeof make>) => {
      const opt = new SGD([t.p], { lr: 0.1, momentum: 0.9, weightDecay: 1e-3, nesterov: true });
      opt.addPostStepHook(zeroMasked(new Map([[t.p, t.mask]])));
      for (let i = 0; i < 3; i++) {
        t.p.grad = t.grad.mul(i + 1);
        opt.step();
      }
      return t.p;
    };
    const want = withBackend('reference', () => run(make()).toArray());
    const dev = make();
    dev.p.moveTo(gb);
    dev.grad.moveTo(gb);
    dev.mask.moveTo(gb);
    gb.resetTransfers();
    withBackend(gb, () => {
      const p = run(dev);
      assert.instance(p.data, GpuArray);
      assert.is(gb.transfers().readbacks, 0);
      close('sgd', p.toArray(), want, 1e-5);
      assert.ok(Array.from(p.toArray()).some((v) => v === 0), 'masked weights are exactly zero');
    });
  });

  test('the bridge on device weights: the same layer sparsity and threshold gradient as on the host', () => {
    const w = randn([8, 4, 3, 3], { generator: new Generator(21) });
    const run = (weights: Tensor) => {
      const t = tensor(0.3, [], { requiresGrad: true });
      const s = layerSparsity(weights, t, histogramDensity(100));
      s.backward();
      return { s: s.item(), g: t.grad!.item() };
    };
    const want = withBackend('reference', () => run(w));
    const wd = w.detach().clone().moveTo(gb);
    gb.resetTransfers();
    const got = withBackend(gb, () => run(wd));
    assert.is(got.s, want.s, 'the count is exact');
    assert.ok(Math.abs(got.g - want.g) <= 1e-5 * Math.abs(want.g), `gradient ${got.g} vs ${want.g}`);
    const tr = gb.transfers();
    assert.is(tr.readbackBytes, 4 * tr.readbacks, `only scalars come back: ${JSON.stringify(tr)}`);
  });

  test('an FCPTS step on ResNet-20 (model on the device) uploads the batch and reads back scalars only', async () => {
    const batch = 2;
    const { steps } = await gpujsFcptsSteps(batch, 2);
    for (const s of steps) {
      const batchBytes = 4 * batch * 28 * 28;
      // the batch, and one host vector of the batch's size that the objective's backward multiplies by
      assert.ok(s.uploads <= 2 && s.uploadBytes <= batchBytes + 4 * batch, `iteration ${s.step}: ${JSON.stringify(s)}`);
      assert.is(s.readbackBytes, 4 * s.readbacks, `iteration ${s.step} read back more than scalars: ${JSON.stringify(s)}`);
      // per prunable layer (22): its threshold, min and max, two histogram bins; the loss terms and the sparsity
      assert.ok(s.readbacks <= 8 * 22, `iteration ${s.step}: ${s.readbacks} readbacks`);
    }
  });

  test('after dispose(), a device array says it was freed instead of returning garbage', () => {
    const x = randn([4, 4], { generator: new Generator(1) }).moveTo(gb);
    gb.dispose();
    throwsMatching(() => x.toArray(), PtslabError, /freed by the backend's dispose\(\)/);
  });
}

test.run();
