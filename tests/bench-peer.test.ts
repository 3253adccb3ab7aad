// PyTorch as the bench's peer (scripts/bench-peer.ts, bench_torch.py): the JSON-lines protocol (a tiny FCPTS step,
// a case kept warm between requests, an error that leaves the process serving), the Python ResNet-18 and
// MobileNetV2 (and the ResNet-20 of the FCPTS case) against ptslab's models key by key and shape by shape, the
// targets table on synthetic rows, fcpts iterations handed out one at a time (scripts/bench-fcpts.ts), and the
// no-torch path: every way torch can be missing gives its reason, and `bench.js` prints it in place of the torch
// rows. Tests that need PyTorch are reported skipped, with the reason, where /usr/bin/python3 has no torch.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backend, withBackend } from '../core/backend/index.js';
import { models, type Module } from '../nn/index.js';
import { buildBundledArch, bundledModelSpec } from '../experiments/models/index.js';
import { TARGETS, TorchPeer, TorchPeerError, evaluateTargets, formatTarget, startTorchPeer, torchPython, type Target } from '../scripts/bench-peer.js';
import { fcptsStepper } from '../scripts/bench-fcpts.js';

const PYTHON = torchPython();
const BENCH = fileURLToPath(new URL('../scripts/bench.js', import.meta.url));
const probe = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
const torchWhy = probe.error ? `${PYTHON} cannot run (${probe.error.message})` : probe.status !== 0 ? `${PYTHON} has no torch (${(probe.stderr ?? '').trim().split('\n').pop()})` : null;
/** A test that needs PyTorch: run it, or report it skipped with the reason. */
const torchTest = (name: string, fn: () => Promise<void>) => {
  if (!torchWhy) return test(name, fn);
  console.log(`SKIPPED bench-peer '${name}': ${torchWhy}`);
  test.skip(`${name} (PyTorch unavailable: ${torchWhy})`, fn);
};

let started: Promise<TorchPeer> | null = null;
/** One bench_torch.py for the torch tests. */
const peer = () =>
  (started ??= startTorchPeer({ ...process.env, PTSLAB_BENCH_TORCH: '1' }).then((p) => {
    if (typeof p === 'string') throw new Error(`torch imports but the peer did not start: ${p}`);
    return p;
  }));

torchTest('protocol: a resnet20 FCPTS step at batch 2 gives a finite positive median; the case stays warm', async () => {
  const p = await peer();
  assert.is(p.threads, 2);
  const first = await p.request({ case: 'resnet20-fcpts-step', batch: 2, reps: 1 });
  assert.is(first.case, 'resnet20-fcpts-step');
  assert.ok(typeof first.ms === 'number' && Number.isFinite(first.ms) && first.ms > 0, `ms ${first.ms}`);
  assert.is(first.prepared, true);
  const again = await p.request({ case: 'resnet20-fcpts-step', batch: 2, reps: 2 });
  assert.is(again.prepared, false);
  assert.is(again.times!.length, 2);
  assert.ok(again.times!.every((t) => t > 0));
  assert.is(await p.time('resnet20-fcpts-step', 2, 0), null);
});

torchTest('protocol: an unknown case is an error naming the cases, and the process keeps serving', async () => {
  const p = await peer();
  try {
    await p.request({ case: 'no-such-case', batch: 1, reps: 1 });
    assert.unreachable('should reject');
  } catch (e) {
    assert.instance(e, TorchPeerError);
    assert.match((e as Error).message, /unknown case 'no-such-case'.*resnet20-fcpts-step/);
  }
  assert.ok(p.alive);
  const r = await p.request({ case: 'params', arch: 'resnet20' });
  assert.ok((r.numParameters as number) > 0);
});

const entries = (m: Module) => Object.entries(m.stateDict()).map(([k, v]) => [k, [...v.shape]]);
const count = (m: Module) => m.parameters().reduce((a, p) => a + p.size, 0);
for (const [arch, make, expected] of [
  ['resnet18', () => models.resnet18(), 11_689_512],
  ['mobilenetv2', () => models.mobilenetV2(), 3_504_872],
  ['resnet20', () => buildBundledArch(bundledModelSpec('fmnist-resnet20')), null],
] as const) {
  torchTest(`bench_torch.py's ${arch} has ptslab's parameter count and state_dict keys and shapes`, async () => {
    const r = await (await peer()).request({ case: 'params', arch });
    const ours = make();
    if (expected !== null) assert.is(count(ours), expected);
    assert.is(r.numParameters, count(ours));
    assert.equal(r.stateDict, entries(ours));
  });
}

test.after(async () => {
  if (started) await (await started).close();
});

const row = (c: string, engine: string, ms: number) => ({ case: c, engine, ms });

test('targets: met and not met from the time ratios, bounds inclusive, "faster" strict', () => {
  const rows = [
    row('resnet18-train-step-b8', 'ptslab-cpu', 250), row('resnet18-train-step-b8', 'torch', 100), // 2.5: <= met
    row('mobilenetv2-train-step-b8', 'ptslab-cpu', 201), row('mobilenetv2-train-step-b8', 'torch', 100), // 2.01
    row('resnet20-fcpts-step-b64', 'ptslab-cpu', 150), row('resnet20-fcpts-step-b64', 'torch', 100),
    row('resnet18-s90-infer-b1', 'ptslab-cpu', 100), row('resnet18-s90-infer-b1', 'ptslab-cpu-sparse', 40), row('resnet18-s90-infer-b1', 'torch', 40),
    row('resnet18-s90-infer-b64', 'ptslab-cpu', 100), row('resnet18-s90-infer-b64', 'ptslab-cpu-sparse', 50),
  ];
  const r = evaluateTargets(rows);
  assert.equal(r.map((x) => x.status), ['met', 'not met', 'met', 'met', 'not met', 'not met']);
  assert.is(r[0].ratio, 2.5);
  assert.is(r[4].ratio, 2);
  assert.is(formatTarget(r[1]), 'MobileNetV2 train step b8: ptslab-cpu / torch = 201.0 / 100.0 ms = 2.01 (target <= 2): not met');
  assert.is(r.length, TARGETS.length);
});

test('targets: a missing row is "not measured", naming the engine without one', () => {
  const r = evaluateTargets([row('resnet18-s90-infer-b1', 'ptslab-cpu-sparse', 10)]);
  const fast = r.find((x) => x.target.num === 'ptslab-cpu-sparse')!;
  assert.is(fast.status, 'not measured');
  assert.equal(fast.missing, ['torch']);
  assert.match(formatTarget(fast), /not measured \(no torch row for resnet18-s90-infer-b1 in this run\)/);
  const custom: Target[] = [{ name: 'x', case: 'c', num: 'a', den: 'b', op: '>=', bound: 3 }];
  assert.equal(evaluateTargets([row('c', 'a', 30), row('c', 'b', 10)], custom).map((x) => x.status), ['met']);
});

test('no torch: PTSLAB_BENCH_TORCH=0, a missing interpreter, and a failing import each give the reason', async () => {
  assert.is(await startTorchPeer({ ...process.env, PTSLAB_BENCH_TORCH: '0' }), 'PTSLAB_BENCH_TORCH=0 turns them off');
  const missing = await startTorchPeer({ ...process.env, PTSLAB_BENCH_TORCH: '1', PTSLAB_TORCH_PYTHON: '/nonexistent/python3' });
  assert.is(missing, '/nonexistent/python3: cannot run (spawn /nonexistent/python3 ENOENT)');
  if (!existsSync('/usr/bin/python3')) {
    console.log("SKIPPED bench-peer 'a failing import': /usr/bin/python3 does not exist");
    return;
  }
  // a torch module that fails to import, ahead of any real one on the path
  const dir = mkdtempSync(join(tmpdir(), 'ptslab-fake-torch-'));
  try {
    writeFileSync(join(dir, 'torch.py'), "raise ImportError('simulated broken torch')\n");
    const broken = await startTorchPeer({ ...process.env, PTSLAB_BENCH_TORCH: '1', PTSLAB_TORCH_PYTHON: '/usr/bin/python3', PYTHONPATH: dir });
    assert.is(broken, '/usr/bin/python3: import torch failed: ImportError: simulated broken torch');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('no torch: bench.js prints the reason line in place of each torch row, and --json emits no torch row', () => {
  const env = { ...process.env, PTSLAB_BENCH_TORCH: '0' };
  const args = [BENCH, '--quick', '--cases', 'resnet18-infer-b1', '--engines', 'torch'];
  const plain = spawnSync(process.execPath, args, { encoding: 'utf8', env });
  assert.is(plain.status, 0, plain.stderr);
  assert.match(plain.stdout, /^torch rows skipped: PTSLAB_BENCH_TORCH=0 turns them off$/m);
  assert.match(plain.stdout, /^ {2}torch +skipped: PTSLAB_BENCH_TORCH=0 turns them off$/m);
  assert.match(plain.stdout, /ResNet-18 train step b8: ptslab-cpu \/ torch \(target <= 2\.5\): not measured/);
  const json = spawnSync(process.execPath, [...args, '--json'], { encoding: 'utf8', env });
  assert.is(json.status, 0, json.stderr);
  assert.is(json.stdout, '');
  assert.match(json.stderr, /torch rows skipped: PTSLAB_BENCH_TORCH=0/);
});

test('fcptsStepper hands out the iterations one at a time, then the run ends', async () => {
  // the cpu backend where it runs (the reference one takes seconds per iteration)
  const cpu = withBackend('cpu', () => backend());
  await withBackend(cpu.unavailableReason?.() ? 'reference' : 'cpu', async () => {
    const s = fcptsStepper(2, 3);
    assert.ok(s.flops > 0);
    for (let i = 0; i < 3; i++) {
      const ms = await s.next();
      assert.ok(Number.isFinite(ms) && ms > 0, `iteration ${i}: ${ms}`);
    }
    await s.done;
    try {
      await s.next();
      assert.unreachable('a fourth next() should reject');
    } catch (e) {
      assert.match((e as Error).message, /after the last iteration/);
    }
  });
});

test.run();
