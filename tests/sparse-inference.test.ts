// The inference-only sparse kernels (core/backend/cpu/sparse.ts, kernels/sparse.as) and their use by nn
// (nn/sparse-inference.ts):
// - sparseConv2d equals the float64 reference conv on random pruned weights (fast-check: 1x1 to 7x7 kernels, strides
//   1 to 3, paddings, dilation, batch 1 and more, sparsity 0 to 0.99 and fully empty output channels, with a bias or
//   not) within float32 tolerance; a layer big enough to run on the worker pool too;
// - sparseLinear likewise;
// - enableSparseInference: 'on' runs every pruned layer sparse with the dense model's outputs, 'auto' times both and
//   records its choice, 'off' and remove() leave the dense forward, and a forward that would record gradients fails;
// - `ptslab eval --sparse-kernels on|auto|off` on a 90%-pruned ResNet-20 checkpoint: the same top-1 and top-5 on every
//   mode and with --no-fuse, the sparse layers and the fused chains listed;
// - modelMacs: ResNet-18 at 224 is torchvision's 1,814,073,344 dense MACs; pruned MACs count the nonzero weights.
// The cpu backend being unavailable (no wasm build) is a reported skip.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { cpuBackend, cpuKernels } from '../core/backend/cpu/index.js';
import { referenceBackend, referenceKernels } from '../core/backend/reference.js';
import { sparseWeightOf } from '../core/backend/sparse-weight.js';
import type { Conv2dParams, HostView } from '../core/backend/types.js';
import { Generator, fromStorage, noGrad, withBackend } from '../core/index.js';
import { Conv2d, Flatten, Linear, ReLU, Sequential, AdaptiveAvgPool2d } from '../nn/layers.js';
import { enableSparseInference } from '../nn/sparse-inference.js';
import { models, saveSafetensors } from '../nn/index.js';
import { manualSeed } from '../core/index.js';
import { oneShot } from '../sparsity/index.js';
import { modelMacs } from '../index.js';
import type { CellResult } from '../experiments/prune-cell.js';
import { resultsCsv, resultsMarkdown, type CellRecord } from '../experiments/runner/results.js';

const unavailable = cpuBackend.unavailableReason?.() ?? null;
if (unavailable) console.log(`SKIPPED sparse-inference tests: the cpu backend is unavailable (${unavailable})`);
const maybe = unavailable ? test.skip : test;

const view = (data: Float32Array | Float64Array, shape: number[]): HostView => {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return { data, shape, strides, offset: 0 };
};

/** Random values in [-1, 1), a fraction `sparsity` of them zero; channels in `emptyRows` entirely zero. */
function pruned(g: Generator, n: number, sparsity: number, rowLen = n, emptyRows: number[] = []): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = g.uniform() < sparsity ? 0 : 2 * g.uniform() - 1;
  for (const r of emptyRows) a.fill(0, r * rowLen, (r + 1) * rowLen);
  return a;
}

/** max |a - b| <= tol * (1 + max |b|): float32 accumulation against the float64 reference. */
function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  assert.is(a.length, b.length, `${what}: length`);
  let err = 0, scale = 1;
  for (let i = 0; i < b.length; i++) { err = Math.max(err, Math.abs(a[i] - b[i])); scale = Math.max(scale, Math.abs(b[i])); }
  assert.ok(err <= tol * scale, `${what}: max error ${err} > ${tol} * ${scale}`);
}

function checkConv(N: number, C: number, O: number, H: number, W: number, K: number, cp: Conv2dParams, sparsity: number, withBias: boolean, seed: number) {
  const g = new Generator(seed);
  const x = pruned(g, N * C * H * W, 0);
  const emptyRows = O > 1 ? [0, O - 1] : [];
  const w = pruned(g, O * C * K * K, sparsity, C * K * K, sparsity > 0.5 ? emptyRows : []);
  const b = withBias ? pruned(g, O, 0) : null;
  const sw = sparseWeightOf(w, [O, C, K, K], 'w');
  const got = cpuKernels.sparseConv2d!(view(x, [N, C, H, W]), sw, b && view(b, [O]), cp);
  const want = referenceKernels.conv2d(view(Float64Array.from(x), [N, C, H, W]), view(Float64Array.from(w), [O, C, K, K]), b && view(Float64Array.from(b), [O]), cp);
  close(got, want, 1e-5 * Math.sqrt(C * K * K), `conv N=${N} C=${C} O=${O} ${H}x${W} k=${K} ${JSON.stringify(cp)} sparsity ${sparsity}`);
}

maybe('sparseConv2d equals the reference conv on random pruned weights', () => {
  const geometry = fc.record({
    N: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 1, max: 12 }), O: fc.integer({ min: 1, max: 20 }),
    H: fc.integer({ min: 1, max: 19 }), W: fc.integer({ min: 1, max: 40 }), K: fc.constantFrom(1, 3, 5, 7),
    s: fc.integer({ min: 1, max: 3 }), pad: fc.integer({ min: 0, max: 3 }), d: fc.constantFrom(1, 1, 2),
    sparsity: fc.constantFrom(0, 0.3, 0.5, 0.9, 0.99, 1), bias: fc.boolean(), seed: fc.integer(),
  }).filter((r) => r.H + 2 * r.pad >= r.d * (r.K - 1) + 1 && r.W + 2 * r.pad >= r.d * (r.K - 1) + 1);
  fc.assert(fc.property(geometry, (r) => {
    checkConv(r.N, r.C, r.O, r.H, r.W, r.K, { stride: [r.s, r.s], padding: [r.pad, r.pad], dilation: [r.d, r.d], groups: 1 }, r.sparsity, r.bias, r.seed);
  }), { numRuns: 150, seed: 20261202 });
});

maybe('sparseConv2d: non-square stride and padding, and layers big enough for the worker pool', () => {
  checkConv(2, 5, 7, 11, 13, 3, { stride: [2, 1], padding: [0, 2], dilation: [1, 1], groups: 1 }, 0.7, true, 1);
  // ResNet-18 layer1 and stem shapes at batch 1: split over output channels among the threads
  checkConv(1, 64, 64, 56, 56, 3, { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 }, 0.9, false, 2);
  checkConv(1, 3, 64, 64, 64, 7, { stride: [2, 2], padding: [3, 3], dilation: [1, 1], groups: 1 }, 0.5, false, 3);
  checkConv(9, 32, 48, 14, 14, 1, { stride: [2, 2], padding: [0, 0], dilation: [1, 1], groups: 1 }, 0.9, true, 4);
});

maybe('sparseConv2d refuses groups > 1 and float64 input with clear errors', () => {
  const sw = sparseWeightOf(new Float32Array([1, 0, 0, 2]), [2, 2, 1, 1], 'w');
  const cp = { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 2 } as const;
  assert.throws(() => cpuKernels.sparseConv2d!(view(new Float32Array(8), [1, 2, 2, 2]), sw, null, cp), /groups = 1/);
  assert.throws(() => cpuKernels.sparseConv2d!(view(new Float64Array(8), [1, 2, 2, 2]), sw, null, { ...cp, groups: 1 }), /float32/);
  assert.throws(() => sparseWeightOf(new Float32Array(3), [2, 2], 'fc.weight'), /fc\.weight: 3 values/);
});

maybe('sparseLinear equals the reference product', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 40 }),
    fc.constantFrom(0, 0.5, 0.9, 0.99), fc.boolean(), fc.integer(), (N, C, O, sparsity, withBias, seed) => {
      const g = new Generator(seed);
      const x = pruned(g, N * C, 0), w = pruned(g, O * C, sparsity, C, O > 2 ? [1] : []), b = withBias ? pruned(g, O, 0) : null;
      const got = cpuKernels.sparseLinear!(view(x, [N, C]), sparseWeightOf(w, [O, C], 'w'), b && view(b, [O]));
      const want = new Float64Array(N * O);
      for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
        let s = b ? b[o] : 0;
        for (let c = 0; c < C; c++) s += w[o * C + c] * x[n * C + c];
        want[n * O + o] = s;
      }
      close(got, want, 1e-5 * Math.sqrt(C), `linear N=${N} C=${C} O=${O}`);
    }), { numRuns: 60, seed: 7 });
});

/** A small conv net, weights pruned to ~80% zeros by magnitude rank (the first conv left dense). */
function prunedNet(): Sequential {
  const g = new Generator(11);
  const net = new Sequential(
    new Conv2d(3, 8, 3, { padding: 1, generator: g }), new ReLU(),
    new Conv2d(8, 16, 3, { stride: 2, padding: 1, generator: g }), new ReLU(),
    new Conv2d(16, 16, 1, { bias: false, generator: g }), new ReLU(),
    new AdaptiveAvgPool2d([1, 1]), new Flatten(), new Linear(16, 10, { generator: g }),
  );
  noGrad(() => {
    for (const m of net.modules()) {
      if (!(m instanceof Conv2d || m instanceof Linear) || (m instanceof Conv2d && m.inChannels === 3)) continue;
      const d = m.weight.data as Float32Array;
      const cut = [...d].map(Math.abs).sort((a, b) => a - b)[Math.floor(0.8 * d.length)];
      for (let i = 0; i < d.length; i++) if (Math.abs(d[i]) < cut) d[i] = 0;
    }
  });
  net.eval();
  return net;
}

maybe('enableSparseInference: on / auto / off give the dense outputs; remove restores; gradients are refused', () => {
  withBackend(cpuBackend, () => {
    const net = prunedNet();
    const g = new Generator(5);
    const x = fromStorage(pruned(g, 2 * 3 * 12 * 12, 0), [2, 3, 12, 12]);
    const dense = noGrad(() => net.call(x)).data as Float32Array;
    const on = enableSparseInference(net, 'on');
    assert.equal(on.layers.map((l) => l.name), ['2', '4', '8'], 'the pruned conv and linear layers, not the dense first conv');
    close(noGrad(() => net.call(x)).data as Float32Array, dense, 1e-5, 'on');
    assert.equal(on.sparseLayers(), ['2', '4', '8']);
    assert.ok(Math.abs(on.layers[0].density - 0.2) < 0.01, `density ${on.layers[0].density}`);
    // a forward that records gradients (weights require grad, grad mode on) must not silently drop them
    assert.throws(() => net.call(x), /inference-only sparse kernels/);
    on.remove();
    assert.ok(net.call(x).requiresGrad, 'dense forward restored, recording gradients again');
    const auto = enableSparseInference(net, 'auto');
    close(noGrad(() => net.call(x)).data as Float32Array, dense, 1e-5, 'auto, first call');
    close(noGrad(() => net.call(x)).data as Float32Array, dense, 1e-5, 'auto, second call');
    for (const l of auto.layers) {
      assert.is(l.choices.size, 1, `${l.name}: one input shape seen`);
      const c = [...l.choices.values()][0];
      assert.ok(c && typeof c.denseMs === 'number' && typeof c.sparseMs === 'number', `${l.name}: timed both`);
      assert.is(c.engine, c.sparseMs! < c.denseMs! ? 'sparse' : 'dense');
    }
    auto.remove();
    assert.equal(enableSparseInference(net, 'off').layers, []);
    assert.throws(() => enableSparseInference(net, 'sometimes' as never), /mode must be one of auto, on, off/);
  });
  // a backend without sparse kernels: 'on' says so, 'auto' keeps every layer dense
  withBackend(referenceBackend, () => {
    const net = prunedNet();
    assert.throws(() => enableSparseInference(net, 'on'), /backend 'reference' has none \(2\)/);
    assert.equal(enableSparseInference(net, 'auto').layers, []);
  });
});

// the count does not depend on the backend: the fast one where it runs (four ResNet-18 forwards at 224)
test('modelMacs: torchvision ResNet-18 at 224, and pruned MACs from the nonzero weights', () => withBackend(unavailable ? referenceBackend : cpuBackend, () => {
  manualSeed(0);
  const m = models.resnet18();
  const dense = modelMacs(m, [3, 224, 224]);
  assert.is(dense.dense, 1_814_073_344);
  assert.is(dense.pruned, dense.dense);
  assert.is(dense.layers.length, 21);
  assert.equal(dense.layers[0], { name: 'conv1', dense: 64 * 3 * 49 * 112 * 112, pruned: 64 * 3 * 49 * 112 * 112 });
  assert.equal(dense.layers.at(-1), { name: 'fc', dense: 512_000, pruned: 512_000 });
  noGrad(() => { (m.fc.weight.data as Float32Array).fill(0, 0, 1000); });
  const fc = modelMacs(m, [3, 224, 224]).layers.at(-1)!;
  assert.equal(fc, { name: 'fc', dense: 512_000, pruned: 511_000 });
  oneShot(m, { method: 'global', sparsity: 0.9 });
  const p = modelMacs(m, [3, 224, 224]);
  let want = 0;
  for (const l of p.layers) {
    const mod = m.namedModules().find(([n]) => n === l.name)![1] as Conv2d | Linear;
    const nz = (mod.weight.data as Float32Array).reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);
    assert.is(l.pruned, (nz * l.dense) / mod.weight.size, l.name);
    want += l.pruned;
  }
  assert.is(p.pruned, want);
  assert.ok(p.pruned < 0.3 * p.dense && p.pruned > 0.1 * p.dense, `pruned ${p.pruned}`);
  assert.throws(() => modelMacs(m, [224, 224]), /inputShape must be \[C, H, W\]/);
}));

test('results.md: a pruned-MACs table; result.json files without macs give a blank cell', () => {
  const base = { method: 'global', ablation: null, seed: 0, config: 'c', status: 'done' as const, dir: '' };
  const result = (macs?: CellResult['macs']) => ({ top1: 50, achievedSparsity: 0.5, seconds: 1, denseTop1: 60, evalImages: 10, model: 'm', arch: 'a', dataset: 'd', backend: 'cpu', version: 'v', commit: null, ...(macs ? { macs } : {}) }) as unknown as CellResult;
  const cells: CellRecord[] = [
    { ...base, key: 'a', index: 0, sparsity: 0.5, result: result({ dense: 4e6, pruned: 1.5e6, layers: [] }) },
    { ...base, key: 'b', index: 1, sparsity: 0.9, result: result() },
  ];
  const md = resultsMarkdown({ name: 'r', smoke: false }, cells);
  const at = md.split('\n').indexOf('## Pruned MMACs per image (conv and linear layers, zeros skipped)');
  assert.ok(at > 0, md);
  assert.is(md.split('\n')[at + 4], '| global | 1.5 |  |');
  const csv = resultsCsv(cells).split('\n');
  const col = csv[0].split(',').indexOf('prunedMacs');
  assert.is(csv[1].split(',')[col], '1500000');
  assert.is(csv[2].split(',')[col], '');
});

const root = fileURLToPath(new URL('../..', import.meta.url));
maybe('ptslab eval --sparse-kernels: the same top-1 on the sparse path as on the dense one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-sparse-eval-'));
  try {
    manualSeed(3);
    const model = models.resnet20({ numClasses: 10, inChannels: 1, shortcut: 'A' });
    oneShot(model, { method: 'global', sparsity: 0.9 });
    const file = join(dir, 'resnet20-s90.safetensors');
    saveSafetensors(file, model.stateDict());
    const run = (mode: string, ...more: string[]) => {
      const r = spawnSync(process.execPath, [join(root, 'dist', 'scripts', 'cli.js'), 'eval', '--arch', 'resnet20', '--shortcut', 'A', '--weights', file,
        '--dataset', 'fashion-mnist', '--eval-images', '64', '--batch', '32', '--json', '--sparse-kernels', mode, ...more], { cwd: root, encoding: 'utf8', env: { ...process.env, PTSLAB_BACKEND: 'cpu' }, timeout: 300_000 });
      assert.is(r.status, 0, r.stderr);
      return { acc: JSON.parse(r.stdout) as { top1: number; top5: number; count: number }, log: r.stderr };
    };
    const off = run('off'), on = run('on'), auto = run('auto'), unfused = run('off', '--no-fuse');
    assert.is(off.acc.count, 64);
    assert.equal(on.acc, off.acc);
    assert.equal(auto.acc, off.acc);
    assert.equal(unfused.acc, off.acc);
    assert.match(unfused.log, /sparse kernels off: 0 of 0 pruned conv\/linear layers ran sparse; evaluated in [\d.]+ s/);
    // fused by default: every conv of the option-A ResNet-20 feeds a BatchNorm; only the stem's ReLU is a module
    assert.match(off.log, /sparse kernels off: 0 of 0 pruned conv\/linear layers ran sparse; fused 19 conv \+ BatchNorm chains \(1 with their activation\); evaluated in [\d.]+ s/);
    // every conv and the fc of ResNet-20 are pruned: 19 convs (option A: no downsample convs) and fc
    assert.match(on.log, /sparse kernels on: 20 of 20 pruned conv\/linear layers ran sparse \(conv1, layer1\.0\.conv1, /);
    assert.match(auto.log, /sparse kernels auto: \d+ of 20 pruned/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
