// The built package imported as a user would: child processes run a module from a temp folder whose node_modules/
// ptslab links to this repository (so `import 'ptslab'` goes through package.json "exports"), with PTSLAB_BACKEND
// removed and HOME pointed at a fresh folder (so the auto cache starts empty). Checked: every backend is listed after
// import without loading gpu.js or probing; the first op resolves auto to a fast backend; PTSLAB_BACKEND=cpu picks
// cpu without a probe; PTSLAB_BACKEND=bogus fails on the first op naming the variable; setBackend and withBackend
// (sync and async) work from the package. Cases that need the cpu backend's wasm kernels are reported as skipped,
// with the reason, where those kernels cannot load.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cpuBackend } from '../core/backend/cpu/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOADER = pathToFileURL(join(ROOT, 'dist', 'core', 'backend', 'gpujs', 'loader.js')).href;

// The child: one scenario per run, its findings as one JSON line after 'RESULT '.
const CHILD = `
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
const p = await import('ptslab');
const { gpujsLoadAttempted } = await import(${JSON.stringify(LOADER)});
const req = createRequire(import.meta.url);
const gpu = () => ({ cache: Object.keys(req.cache).some((k) => /[\\\\/]gpu\\.js[\\\\/]/.test(k)), flag: gpujsLoadAttempted() });
const cacheFile = () => existsSync(join(process.env.HOME, '.cache', 'ptslab', 'backend-auto.json'));
const op = () => { const a = p.randn([8, 8]); p.matmul(a, a); return p.backend().name; };
const r = { names: p.listBackends(), gpuAfterImport: gpu(), probedAtImport: cacheFile() };
const scenario = process.argv[2];
if (scenario === 'default') {
  const prev = p.setBackend('reference');
  p.setBackend(prev);
  r.probedAfterRestore = cacheFile();
  r.afterOp = op();
  r.probedAfterOp = cacheFile();
  r.auto = p.autoBackendReport().chosen;
} else if (scenario === 'env') {
  r.afterOp = op();
  r.gpuAfterOp = gpu();
  r.probedAfterOp = cacheFile();
} else if (scenario === 'bogus') {
  try { op(); r.threw = null; } catch (e) { r.threw = { argumentError: e instanceof p.ArgumentError, message: e.message }; }
} else if (scenario === 'set') {
  p.setBackend('cpu');
  r.afterSet = op();
  r.insideSync = p.withBackend('reference', () => op());
  r.afterSync = p.backend().name;
  const pending = p.withBackend('reference', async () => { await new Promise((ok) => setTimeout(ok, 5)); return op(); });
  r.whilePending = p.backend().name;
  r.insideAsync = await pending;
  r.afterAsync = p.backend().name;
  r.rejected = await p.withBackend('reference', async () => { await null; throw new Error('boom'); }).catch((e) => e.message);
  r.afterReject = p.backend().name;
  try { p.withBackend('reference', () => { throw new Error('sync boom'); }); } catch (e) { r.syncThrew = e.message; }
  r.afterSyncThrow = p.backend().name;
  r.gpuAfterOp = gpu();
  r.probedAfterOp = cacheFile();
}
console.log('RESULT ' + JSON.stringify(r));
`;

const work = mkdtempSync(join(tmpdir(), 'ptslab-import-'));
mkdirSync(join(work, 'node_modules'));
symlinkSync(ROOT, join(work, 'node_modules', 'ptslab'), 'dir');
writeFileSync(join(work, 'child.mjs'), CHILD);

type Result = Record<string, unknown> & { names: string[]; gpuAfterImport: { cache: boolean; flag: boolean }; probedAtImport: boolean };

/** Run one scenario in a fresh HOME with PTSLAB_BACKEND set as given (undefined: removed). */
function child(scenario: string, backendEnv?: string): Result {
  const home = mkdtempSync(join(work, 'home-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.PTSLAB_BACKEND;
  if (backendEnv !== undefined) env.PTSLAB_BACKEND = backendEnv;
  const r = spawnSync(process.execPath, ['child.mjs', scenario], { cwd: work, env, encoding: 'utf8', timeout: 180_000 });
  const line = r.stdout?.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `child '${scenario}' printed no result (exit ${r.status}, signal ${r.signal}): ${r.stderr}`);
  return JSON.parse(line!.slice('RESULT '.length)) as Result;
}

const notLoaded = { cache: false, flag: false };
const cpuWhy = cpuBackend.unavailableReason?.() ?? null;
/** A test that needs the cpu backend: run it, or report it skipped with the reason. */
const cpuTest = (name: string, fn: () => void) => {
  if (!cpuWhy) return test(name, fn);
  console.log(`SKIPPED package-import '${name}': ${cpuWhy}`);
  test.skip(`${name} (cpu backend unavailable: ${cpuWhy})`, fn);
};

test('import lists reference, cpu and gpujs without loading gpu.js; PTSLAB_BACKEND=bogus fails on the first op, naming the variable', () => {
  const r = child('bogus', 'bogus');
  for (const n of ['reference', 'cpu', 'gpujs']) assert.ok(r.names.includes(n), `listBackends() ${r.names.join(', ')} lacks ${n}`);
  assert.equal(r.gpuAfterImport, notLoaded, 'gpu.js was loaded by the import');
  assert.is(r.probedAtImport, false, 'the import wrote the auto cache (probed)');
  const threw = r.threw as { argumentError: boolean; message: string } | null;
  assert.ok(threw, 'an op with PTSLAB_BACKEND=bogus did not throw');
  assert.ok(threw.argumentError, `not an ArgumentError: ${threw.message}`);
  assert.match(threw.message, /PTSLAB_BACKEND='bogus'/);
  assert.match(threw.message, /reference, cpu, gpujs, auto/);
});

cpuTest('by default the first op resolves auto (probing once, not at import) to a backend faster than the reference', () => {
  const r = child('default');
  assert.equal(r.gpuAfterImport, notLoaded);
  assert.is(r.probedAtImport, false, 'probed at import');
  assert.is(r.probedAfterRestore, false, 'setBackend(prev) of the unchosen default resolved it');
  assert.is(r.probedAfterOp, true, 'the first op did not run the auto probe');
  assert.is.not(r.afterOp, 'reference');
  assert.is(r.afterOp, r.auto);
});

cpuTest('PTSLAB_BACKEND=cpu selects cpu on the first op, without a probe and without loading gpu.js', () => {
  const r = child('env', 'cpu');
  assert.is(r.afterOp, 'cpu');
  assert.equal(r.gpuAfterOp, notLoaded, 'gpu.js was loaded by a cpu op');
  assert.is(r.probedAfterOp, false, 'PTSLAB_BACKEND=cpu still ran the auto probe');
});

cpuTest('setBackend and withBackend (sync, async, throwing, rejecting) from the package', () => {
  const r = child('set');
  assert.is(r.afterSet, 'cpu');
  assert.is(r.insideSync, 'reference');
  assert.is(r.afterSync, 'cpu');
  assert.is(r.whilePending, 'reference', 'an async scope restored before its promise settled');
  assert.is(r.insideAsync, 'reference', 'the async scope lost its backend across an await');
  assert.is(r.afterAsync, 'cpu');
  assert.is(r.rejected, 'boom');
  assert.is(r.afterReject, 'cpu');
  assert.is(r.syncThrew, 'sync boom');
  assert.is(r.afterSyncThrow, 'cpu');
  assert.equal(r.gpuAfterOp, notLoaded, 'gpu.js was loaded');
  assert.is(r.probedAfterOp, false, 'setBackend before the first op still ran the auto probe');
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
