// The per-op profile (core/profile.ts): a conv forward + backward shows its conv kernels with their calls and shape
// keys, the rows (js/other included) add up to the wall time and the backend's share stays within it; a kernel
// that calls another kernel counts once; the registry entry under the backend's name is the original again after;
// the async variant sees ops after an await; reset/snapshot profile a window; the sync variant refuses a promise;
// opts.sync runs once at the end of every outermost call, inside its time.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Generator, backend, formatProfile, neg, profileOps, profileOpsAsync, randn, referenceBackend, withBackend, type Backend,
} from '../core/index.js';
import { findBackend } from '../core/backend/index.js';
import { F } from '../core/index.js';

const test = suite('profile');

/** A small conv forward + backward on the current backend. */
function convStep(): number {
  const g = new Generator(3);
  const x = randn([2, 3, 8, 8], { generator: g, requiresGrad: true });
  const w = randn([4, 3, 3, 3], { generator: g, requiresGrad: true });
  const y = F.conv2d(x, w, null, { padding: 1 }).relu();
  const loss = y.mul(y).sum();
  loss.backward();
  return loss.item();
}

const row = (p: { rows: { name: string; calls: number; ms: number }[] }, name: string) => p.rows.find((r) => r.name === name);

test('a conv forward + backward: conv rows with calls, shape keys, totals within the wall time', () => {
  withBackend('reference', () => {
    const { result, profile } = profileOps(convStep);
    assert.ok(Number.isFinite(result));
    assert.is(row(profile, 'conv2d')?.calls, 1);
    assert.is(row(profile, 'conv2dBackwardInput')?.calls, 1);
    assert.is(row(profile, 'conv2dBackwardWeight')?.calls, 1);
    assert.ok(row(profile, 'unary:relu')!.calls >= 1);
    assert.ok(profile.detail.some((d) => d.name === 'conv2d x2x3x8x8 w4x3x3x3 s1 p1' && d.calls === 1), JSON.stringify(profile.detail));
    const kernels = profile.rows.filter((r) => r.name !== 'js/other');
    const sum = kernels.reduce((a, r) => a + r.ms, 0);
    assert.ok(Math.abs(sum - profile.backendMs) < 1e-6, `rows ${sum} vs backend ${profile.backendMs}`);
    assert.ok(profile.backendMs <= profile.wallMs, `${profile.backendMs} > ${profile.wallMs}`);
    const all = profile.rows.reduce((a, r) => a + r.ms, 0);
    assert.ok(Math.abs(all - profile.wallMs) < 1e-6, `rows with js/other ${all} vs wall ${profile.wallMs}`);
    assert.is(profile.calls, kernels.reduce((a, r) => a + r.calls, 0));
    // sorted by time, largest first
    for (let i = 1; i < profile.rows.length; i++) assert.ok(profile.rows[i - 1].ms >= profile.rows[i].ms);
    const text = formatProfile(profile, { detail: true, per: 2 });
    assert.match(text, /^conv2d\s+1\s/m);
    assert.match(text, /ms per iteration over 2/);
  });
});

test('a kernel calling another kernel through backend() counts once, under the outer name', () => {
  const nested: Backend = {
    ...referenceBackend,
    name: 'nested-test',
    // an outer kernel that goes through the registry for an inner one
    unary: (op, x) => referenceBackend.unary(op, { data: backend().contiguous(x), shape: x.shape, strides: x.strides, offset: 0 }),
  };
  withBackend(nested, () => {
    const x = randn([3, 4], { generator: new Generator(1) });
    const { result, profile } = profileOps(() => neg(x));
    assert.equal(Array.from(result.toArray()), Array.from(x.toArray(), (v) => -v));
    assert.is(row(profile, 'unary:neg')?.calls, 1);
    assert.is(row(profile, 'contiguous'), undefined, JSON.stringify(profile.rows));
    assert.is(profile.calls, 1);
    assert.is(backend(), nested, 'the backend in use is the unwrapped one again');
  });
  assert.is(findBackend('nested-test'), nested, 'the registry holds the backend, not the Proxy');
});

test('the registry entry of the profiled backend is the original after a run, and after a throw', () => {
  withBackend('reference', () => {
    profileOps(convStep);
    assert.is(findBackend('reference'), referenceBackend);
    assert.throws(() => profileOps(() => {
      throw new RangeError('inside');
    }), (e: unknown) => e instanceof RangeError);
    assert.is(findBackend('reference'), referenceBackend);
    assert.is(backend(), referenceBackend);
  });
});

test('async: ops after an await are seen; reset and snapshot profile a window', async () => {
  await withBackend('reference', async () => {
    let window: ReturnType<Parameters<Parameters<typeof profileOpsAsync>[0]>[0]['snapshot']> | null = null;
    const { result, profile } = await profileOpsAsync(async (ctl) => {
      convStep();
      await new Promise((r) => setImmediate(r));
      ctl.reset();
      convStep();
      convStep();
      window = ctl.snapshot();
      await new Promise((r) => setImmediate(r));
      convStep();
      return 7;
    });
    assert.is(result, 7);
    assert.is(row(profile, 'conv2d')?.calls, 3, 'after reset: two in the window, one after it');
    assert.is(row(window!, 'conv2d')?.calls, 2);
    assert.ok(window!.wallMs <= profile.wallMs);
    assert.is(findBackend('reference'), referenceBackend);
  });
});

test('profileOps refuses an async fn, naming profileOpsAsync', () => {
  withBackend('reference', () => {
    assert.throws(() => profileOps(async () => 1), /use profileOpsAsync/);
  });
});

test('opts.sync runs once per outermost call, inside the call\'s time', () => {
  withBackend('reference', () => {
    let syncs = 0;
    // a sync that takes 2 ms: each call's time includes it
    const sync = () => {
      syncs++;
      const t = performance.now();
      while (performance.now() - t < 2);
    };
    const { profile } = profileOps(convStep, { sync });
    assert.is(syncs, profile.calls, 'one sync per outermost backend call');
    assert.ok(profile.backendMs >= 2 * profile.calls, `backend time ${profile.backendMs} ms for ${profile.calls} calls of >= 2 ms`);
    for (const r of profile.rows.filter((r) => r.name !== 'js/other')) assert.ok(r.ms >= 2 * r.calls, `${r.name}: ${r.ms} ms over ${r.calls} calls`);
  });
});

test.run();
