// The cpu backend's kernel plumbing (core/backend/cpu):
// - kernels/exports.ts is what build-wasm derives from the AssemblyScript sources (regenerated and compared), and
//   every export's wasm function type in both compiled binaries (kernels.wasm, kernels-fma.wasm; parsed from their
//   type, import, function and export sections) matches it, with no export missing or extra;
// - the export parser refuses what it cannot type (an unknown parameter type, a non-function export);
// - the job table: too many parameters, a job defined after the table was sealed, a job not in the table, a missing
//   or non-int32 parameter are clear errors; a job the main thread knows but the workers do not stops the pool;
// - the two kernel builds (PTSLAB_FMA=0: SIMD128; default: relaxed-SIMD FMA where it is fused) in child processes at
//   PTSLAB_THREADS = 1 and 2: conv forward and both backward passes on every path (GEMM, col2im, direct, depthwise,
//   1x1) and a matmul give the same bits at either thread count, stay within float32 tolerance of the float64
//   reference, and (where FMA runs) differ from each other, which shows the FMA build is the one running; and the
//   same bits when V8 compiles the kernels with Liftoff only or TurboFan only;
// - the non-shared builds a browser Web Worker loads (provideCpuWasm, browser.ts) give the shared builds' bits on one
//   thread, and provideCpuWasm refuses the FMA bytes where relaxed_madd is not fused and any call after the load;
// - the backward-input by col2im in several rounds of images matches the reference.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuKernels } from '../core/backend/cpu/index.js';
import { referenceKernels } from '../core/backend/reference.js';
import { exportsPath, kernelSignatures, NOSHARED_FILES, renderExports, wasmBuilds, wasmTypeText } from '../core/backend/cpu/build-wasm.js';
import { defineJob, jobById, MAX_PARAMS } from '../core/backend/cpu/jobs.js';
import { kernelTypes, type Kernels } from '../core/backend/cpu/kernels/exports.js';
import { runJob, withoutRefused, workerExecArgv } from '../core/backend/cpu/threads.js';
import { wasm } from '../core/backend/cpu/wasm.js';

test('kernels/exports.ts is what build-wasm generates from the sources', () => {
  const want = renderExports(kernelSignatures());
  assert.is(fs.readFileSync(exportsPath, 'utf8'), want, 'stale: run `node dist/core/backend/cpu/build-wasm.js` and commit kernels/exports.ts');
  const sigs = kernelSignatures();
  assert.equal(Object.keys(kernelTypes), sigs.map((s) => s.name));
  for (const s of sigs) assert.is(kernelTypes[s.name as keyof Kernels], wasmTypeText(s), s.name);
});

/** The function exports of a wasm binary and their types ('i32 f32 -> void'), from its sections. */
function wasmExportTypes(bytes: Uint8Array): Map<string, string> {
  let at = 8;
  const u32 = () => {
    let v = 0, shift = 0, b: number;
    do { b = bytes[at++]; v += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
    return v;
  };
  const name = () => { const n = u32(); const s = Buffer.from(bytes.subarray(at, at + n)).toString('utf8'); at += n; return s; };
  const val: Record<number, string> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128' };
  const limits = () => { const flag = bytes[at++]; u32(); if (flag & 1) u32(); };
  const types: string[] = [], funcs: number[] = [];
  const exports = new Map<string, number>();
  assert.equal([...bytes.subarray(0, 4)], [0, 0x61, 0x73, 0x6d], 'wasm magic');
  while (at < bytes.length) {
    const id = bytes[at++], size = u32(), end = at + size;
    if (id === 1) {
      for (let n = u32(); n > 0; n--) {
        assert.is(bytes[at++], 0x60, 'function type');
        const params = Array.from({ length: u32() }, () => val[bytes[at++]]);
        const results = Array.from({ length: u32() }, () => val[bytes[at++]]);
        types.push(`${params.join(' ')} -> ${results.length ? results.join(' ') : 'void'}`);
      }
    } else if (id === 2) {
      for (let n = u32(); n > 0; n--) {
        name(); name();
        const kind = bytes[at++];
        if (kind === 0) funcs.push(u32());
        else if (kind === 1) { at++; limits(); }
        else if (kind === 2) limits();
        else at += 2;
      }
    } else if (id === 3) {
      for (let n = u32(); n > 0; n--) funcs.push(u32());
    } else if (id === 7) {
      for (let n = u32(); n > 0; n--) {
        const nm = name(), kind = bytes[at++], idx = u32();
        if (kind === 0) exports.set(nm, idx);
      }
    }
    at = end;
  }
  return new Map([...exports].map(([nm, idx]) => [nm, types[funcs[idx]]]));
}

test('every export of both binaries has the wasm type exports.ts gives it, and none is missing or extra', () => {
  wasm(); // builds the binaries if they are missing or stale
  for (const [build, { file }] of Object.entries(wasmBuilds)) {
    const got = wasmExportTypes(fs.readFileSync(file));
    assert.equal([...got.keys()].sort(), Object.keys(kernelTypes).sort(), `${build}: export names`);
    for (const [nm, type] of Object.entries(kernelTypes)) assert.is(got.get(nm), type, `${build}: ${nm}`);
  }
});

test('a wrong arity does not compile', () => {
  // never called: tsc checks it (an accepted call would make the directive itself an error)
  const check = (k: Kernels) => {
    // @ts-expect-error gemm takes 9 arguments
    k.gemm(0, 0, 0, 0, 0, 0, 0, 0);
  };
  assert.type(check, 'function');
});

test('the export parser refuses an unknown parameter type and a non-function export, naming the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptslab-kernels-'));
  try {
    fs.writeFileSync(path.join(dir, 'index.as'), "export * from './fam';\n");
    fs.writeFileSync(path.join(dir, 'fam.as'), 'export function f(a: usize, b: v128): void {}\n');
    assert.throws(() => kernelSignatures(dir), (e: Error) => /fam\.as: export f: parameter 'b: v128' must be/.test(e.message));
    fs.writeFileSync(path.join(dir, 'fam.as'), 'export const x: i32 = 1;\nexport function f(a: f32, b: i32): f64 { return 0; }\n');
    assert.throws(() => kernelSignatures(dir), (e: Error) => /fam\.as: only `export function/.test(e.message));
    fs.writeFileSync(path.join(dir, 'fam.as'), '// export const mentioned in a comment\nexport function f(a: f32, b: i32): f64 { return 0; }\n');
    assert.equal(kernelSignatures(dir), [{ name: 'f', file: 'fam.as', params: [{ name: 'a', type: 'f32' }, { name: 'b', type: 'i32' }], result: 'f64' }]);
    fs.writeFileSync(path.join(dir, 'index.as'), "export * from './missing';\n");
    assert.throws(() => kernelSignatures(dir), (e: Error) => /re-exports \.\/missing, but .*missing\.as does not exist/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('job table: too many parameters, defining after sealing, an unknown job, a bad parameter are clear errors', () => {
  const many = Array.from({ length: MAX_PARAMS + 1 }, (_, i) => `P${i}`);
  assert.throws(() => defineJob('test.many', many, () => {}), (e: Error) => /has 49 parameters, more than the 48 slots/.test(e.message));
  assert.throws(() => defineJob('test.late', ['A'], () => {}), (e: Error) => /'test\.late' is defined after the job table was sealed: import its module in core\/backend\/cpu\/job-table\.ts/.test(e.message));
  const fake = { name: 'test.fake', params: ['A'] as const, task: () => {}, id: 1, decode: () => ({ A: 0 }) };
  assert.throws(() => runJob(fake, { A: 1 }, 1, false), (e: Error) => /job 'test\.fake' is not in the job table/.test(e.message));
  const real = jobById(1);
  assert.throws(() => runJob(real, {}, 1, false), (e: Error) => new RegExp(`job '${real.name}' parameter ${real.params[0]} = undefined is not an int32`).test(e.message));
  const half = Object.fromEntries(real.params.map((n) => [n, 0.5]));
  assert.throws(() => runJob(real, half, 1, false), (e: Error) => /= 0\.5 is not an int32/.test(e.message));
});

test('backward-input by col2im in several rounds (column buffer over 64 MiB) matches the float64 reference', () => {
  // 256 x 3 x 3 taps x 32 x 32 pixels x 4 bytes = 9.4 MB of columns per image: 7 images a round, then 1
  let seed = 5;
  const rnd = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5);
  const view = (data: Float32Array | Float64Array, shape: number[]) => ({ data, shape, strides: shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1)), offset: 0 });
  const cp = { stride: [2, 2] as [number, number], padding: [1, 1] as [number, number], dilation: [1, 1] as [number, number], groups: 1 };
  const gy = rnd(8 * 4 * 32 * 32), w = rnd(4 * 256 * 9);
  const got = cpuKernels.conv2dBackwardInput(view(gy, [8, 4, 32, 32]), view(w, [4, 256, 3, 3]), [8, 256, 64, 64], cp);
  const want = referenceKernels.conv2dBackwardInput(view(Float64Array.from(gy), [8, 4, 32, 32]), view(Float64Array.from(w), [4, 256, 3, 3]), [8, 256, 64, 64], cp);
  assert.is(got.length, want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst < 1e-5, `worst absolute error ${worst}`);
  // the last image (the second round) is not zero
  assert.ok(Array.from(got.subarray(7 * 256 * 64 * 64)).some((v) => v !== 0));
});

const root = fileURLToPath(new URL('../', import.meta.url));
const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptslab-cpu-kernels-'));
/** Run a module script in a child process (a file, not -e: the pool's workers inherit execArgv). */
function child(name: string, text: string, env: Record<string, string>, nodeFlags: string[] = []) {
  const script = path.join(tmpDir, name);
  fs.writeFileSync(script, text);
  return spawnSync(process.execPath, [...nodeFlags, script], { encoding: 'utf8', env: { ...process.env, ...env } });
}

test('a job the main thread defines outside the job table stops the pool with a clear error', () => {
  const r = child('mismatch.mjs', `
import { defineJob } from '${root}core/backend/cpu/jobs.js';
defineJob('zz.outside', ['A'], () => {});
const { cpuBackend } = await import('${root}core/backend/cpu/index.js');
const v = (n, shape) => ({ data: new Float32Array(n).fill(1), shape, strides: [shape[1] * shape[2], shape[2], 1], offset: 0 });
for (let i = 0; i < 2; i++) {
  try {
    cpuBackend.matmul(v(512 * 512, [1, 512, 512]), v(512 * 512, [1, 512, 512]));
    console.log('no error');
  } catch (e) {
    console.log(e.message);
  }
}
`, { PTSLAB_THREADS: '2' });
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 2, r.stdout);
  assert.is(lines[1], lines[0], 'the second parallel job fails alike (no quiet single-threaded fallback)');
  assert.match(lines[0], /a worker's job table differs from the main thread's \(.*zz\.outside.*\): every module that defines jobs must be imported by core\/backend\/cpu\/job-table\.ts/);
});

test('the pool starts under node flags a worker refuses (V8 and per-process options) and under --input-type -e', () => {
  const body = `
const { cpuBackend } = await import('${root}core/backend/cpu/index.js');
const { poolSize, shutdownThreads } = await import('${root}core/backend/cpu/threads.js');
const v = (n, shape) => ({ data: new Float32Array(n).fill(1), shape, strides: [shape[1] * shape[2], shape[2], 1], offset: 0 });
const y = cpuBackend.matmul(v(512 * 512, [1, 512, 512]), v(512 * 512, [1, 512, 512]));
console.log(\`\${poolSize()} \${y[0]} \${y[y.length - 1]}\`);
shutdownThreads();
`;
  const env = { ...process.env, PTSLAB_THREADS: '2' };
  const runs = [
    child('flags.mjs', body, { PTSLAB_THREADS: '2' }, ['--expose-gc', '--stack-size=1500', '--max-old-space-size=4096']),
    spawnSync(process.execPath, ['--input-type=module', '--max-semi-space-size=32', '-e', body], { encoding: 'utf8', env }),
  ];
  for (const r of runs) {
    assert.is(r.status, 0, r.stderr);
    // one worker beside the main thread, and no single-threaded fallback warning
    assert.is(r.stdout.trim(), '1 512 512');
    assert.not.match(r.stderr, /single-threaded/);
  }
});

test('workerExecArgv drops --input-type and an -e / -p script; withoutRefused drops the flags Node names', () => {
  assert.equal(workerExecArgv(['--input-type=module', '--enable-source-maps', '-e', 'code', '--expose-gc']), ['--enable-source-maps', '--expose-gc']);
  assert.equal(workerExecArgv(['--input-type', 'module', '-p', '1 + 1', '--conditions=x']), ['--conditions=x']);
  assert.equal(workerExecArgv(['--eval=1', '--print=2', '--trace-warnings']), ['--trace-warnings']);
  assert.equal(
    withoutRefused(['--expose-gc', '--enable-source-maps', '--stack-size=900'], 'Initiated Worker with invalid execArgv flags: --expose-gc, --stack-size=900'),
    ['--enable-source-maps'],
  );
  assert.equal(withoutRefused(['--a'], 'no list here'), ['--a']);
});

/** Conv cases of the child: [x shape, w shape, stride, padding, groups] over every cpu conv path. */
const CHILD = `
import { createHash } from 'node:crypto';
import { cpuBackend, cpuKernels, cpuKernelInfo, shutdownThreads, threadCount } from '${root}core/backend/cpu/index.js';
import { referenceBackend, referenceKernels } from '${root}core/backend/reference.js';
let seed = 3;
const rnd = (n) => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5);
const strides = (s) => s.map((_, i) => s.slice(i + 1).reduce((a, b) => a * b, 1));
const view = (data, shape) => ({ data, shape, strides: strides(shape), offset: 0 });
const f64 = (v) => ({ ...v, data: Float64Array.from(v.data) });
const cases = [
  [[3, 24, 18, 18], [80, 24, 3, 3], 1, 1, 1], // GEMM (80 > 64 channels), stride-1 backward-input by forward conv
  [[3, 24, 18, 18], [80, 24, 3, 3], 2, 1, 1], // GEMM, backward-input by col2im
  [[4, 16, 14, 14], [16, 16, 3, 3], 1, 1, 1], // direct forward and weight gradient
  [[2, 32, 15, 15], [32, 1, 3, 3], 2, 1, 32], // depthwise, scatter backward-input
  [[2, 96, 10, 10], [128, 96, 1, 1], 1, 0, 1], // 1x1, plain-matrix B
  [[2, 40, 9, 9], [40, 10, 3, 3], 1, 1, 4], // grouped
];
const h = createHash('sha256');
let worst = 0;
const check = (got, want) => {
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
  h.update(new Uint8Array(got.buffer, got.byteOffset, got.byteLength));
};
for (const [xs, ws, s, p, g] of cases) {
  const cp = { stride: [s, s], padding: [p, p], dilation: [1, 1], groups: g };
  const x = view(rnd(xs.reduce((a, b) => a * b)), xs), w = view(rnd(ws.reduce((a, b) => a * b)), ws);
  const y = cpuKernels.conv2d(x, w, null, cp);
  check(y, referenceKernels.conv2d(f64(x), f64(w), null, cp));
  const OH = Math.floor((xs[2] + 2 * p - ws[2]) / s) + 1, OW = Math.floor((xs[3] + 2 * p - ws[3]) / s) + 1;
  const gy = view(rnd(y.length), [xs[0], ws[0], OH, OW]);
  check(cpuKernels.conv2dBackwardInput(gy, w, xs, cp), referenceKernels.conv2dBackwardInput(f64(gy), f64(w), xs, cp));
  check(cpuKernels.conv2dBackwardWeight(gy, x, ws, cp), referenceKernels.conv2dBackwardWeight(f64(gy), f64(x), ws, cp));
}
const a = view(rnd(2 * 130 * 300), [2, 130, 300]), b = view(rnd(2 * 300 * 70), [2, 300, 70]);
check(cpuKernels.matmul(a, b), referenceKernels.matmul(f64(a), f64(b)));
console.log(JSON.stringify({ ...cpuKernelInfo(), threads: threadCount(), digest: h.digest('hex'), worst }));
shutdownThreads();
`;

test('SIMD128 and FMA builds: same bits at 1 and 2 threads, within float32 tolerance of the float64 reference', () => {
  const runs = ['0', '1'].flatMap((fma) => ['1', '2'].map((threads) => {
    const r = child('builds.mjs', CHILD, { PTSLAB_FMA: fma, PTSLAB_THREADS: threads });
    assert.is(r.status, 0, r.stderr);
    return { fmaEnv: fma, ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as { fma: boolean; file: string; threads: number; digest: string; worst: number }) };
  }));
  for (const r of runs) {
    assert.is(r.threads, r === runs[0] || r === runs[2] ? 1 : 2);
    // float32 products of up to 1,800 terms, relative to the largest output: a wrong tap or lane is far above this
    assert.ok(r.worst < 2e-5, `PTSLAB_FMA=${r.fmaEnv} threads ${r.threads}: worst error ${r.worst} relative to the output's scale`);
  }
  const [simd1, simd2, fma1, fma2] = runs;
  assert.is(simd1.fma, false, 'PTSLAB_FMA=0 runs SIMD128');
  assert.match(simd1.file, /kernels\.wasm$/);
  assert.is(simd1.digest, simd2.digest, 'SIMD128: PTSLAB_THREADS=1 and 2 differ');
  assert.is(fma1.digest, fma2.digest, 'FMA: PTSLAB_THREADS=1 and 2 differ');
  if (fma1.fma) {
    assert.match(fma1.file, /kernels-fma\.wasm$/);
    assert.is.not(fma1.digest, simd1.digest, 'the FMA build gives the same bits as SIMD128: is relaxed_madd in use?');
    console.log(`  FMA build in use; worst relative error SIMD128 ${simd1.worst.toExponential(2)}, FMA ${fma1.worst.toExponential(2)}`);
  } else {
    console.log(`  SKIPPED the FMA-vs-SIMD128 difference check: relaxed-SIMD FMA is not available or not fused here (${fma1.file})`);
  }
});

test('the non-shared builds a browser worker loads (provideCpuWasm) give the shared builds\' bits, on one thread', () => {
  // browser.ts's path in Node: the bytes handed over before the first kernel call, a non-shared memory (instantiating
  // a binary that imports a shared one would fail), threadCount() 1 whatever PTSLAB_THREADS says
  const script = (file: string, fma: boolean) => `import fs from 'node:fs';
import { provideCpuWasm } from '${root}core/backend/cpu/browser.js';
provideCpuWasm(new Uint8Array(fs.readFileSync(${JSON.stringify(file)})), { fma: ${fma} });
${CHILD}`;
  const run = (name: string, text: string, env: Record<string, string>, flags: string[] = []) => {
    const r = child(name, text, env, flags);
    assert.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { fma: boolean; file: string; threads: number; digest: string; worst: number };
  };
  const shared = run('shared-simd.mjs', CHILD, { PTSLAB_FMA: '0', PTSLAB_THREADS: '1' });
  const simd = run('noshared-simd.mjs', script(wasmBuilds.simdNoShared.file, false), { PTSLAB_THREADS: '2' });
  assert.equal([simd.file, simd.fma, simd.threads], [NOSHARED_FILES.simd, false, 1]);
  assert.is(simd.digest, shared.digest, 'kernels-noshared.wasm and kernels.wasm differ');
  // Node 20 validates relaxed SIMD only behind this flag (the Node path sets it itself; a browser has it on)
  const relaxed = ['--experimental-wasm-relaxed-simd'];
  const sharedFma = run('shared-fma.mjs', CHILD, { PTSLAB_FMA: '1', PTSLAB_THREADS: '1' });
  if (!sharedFma.fma) return void console.log(`  SKIPPED the FMA non-shared build: relaxed-SIMD FMA is not fused here (${sharedFma.file})`);
  const fma = run('noshared-fma.mjs', script(wasmBuilds.fmaNoShared.file, true), { PTSLAB_THREADS: '2' }, relaxed);
  assert.equal([fma.file, fma.fma, fma.threads], [NOSHARED_FILES.fma, true, 1]);
  assert.is(fma.digest, sharedFma.digest, 'kernels-fma-noshared.wasm and kernels-fma.wasm differ');
  assert.is.not(fma.digest, simd.digest, 'the FMA non-shared build gives the SIMD128 bits: is relaxed_madd in use?');
});

test('provideCpuWasm refuses the FMA build where relaxed_madd is not fused, and a call after the kernels loaded', () => {
  const r = child('noshared-refuse.mjs', `import fs from 'node:fs';
import { provideCpuWasm } from '${root}core/backend/cpu/browser.js';
import { cpuBackend, cpuKernelInfo } from '${root}core/backend/cpu/index.js';
provideCpuWasm(new Uint8Array(fs.readFileSync(${JSON.stringify(wasmBuilds.fmaNoShared.file)})), { fma: true });
console.log(cpuBackend.unavailableReason?.() ?? 'available');
`, {});
  assert.is(r.status, 0, r.stderr);
  // without the engine flag Node 20 has no relaxed SIMD: the FMA bytes are refused, naming the file to use instead
  assert.match(r.stdout, /kernels-fma-noshared\.wasm is the relaxed-SIMD build, but this engine has no WebAssembly relaxed SIMD: provide kernels-noshared\.wasm instead/);
  const again = child('noshared-late.mjs', `import fs from 'node:fs';
import { provideCpuWasm } from '${root}core/backend/cpu/browser.js';
import { cpuKernelInfo } from '${root}core/backend/cpu/index.js';
cpuKernelInfo();
try { provideCpuWasm(new Uint8Array(fs.readFileSync(${JSON.stringify(wasmBuilds.simdNoShared.file)}))); console.log('accepted'); } catch (e) { console.log(e.message); }
`, {});
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stdout, /provideCpuWasm\(kernels-noshared\.wasm\) after the kernels were loaded \(.*kernels(-fma)?\.wasm\): call it before the backend's first use/);
});

test('the FMA build gives the same bits from V8\'s baseline compiler (Liftoff) and its optimising one (TurboFan)', () => {
  // a kernel runs in Liftoff first and tiers up while it runs: both tiers must fuse relaxed_madd alike
  const digests = [['--liftoff-only'], ['--no-liftoff']].map((flags) => {
    const r = child('tiers.mjs', CHILD, { PTSLAB_THREADS: '2' }, flags);
    assert.is(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { digest: string }).digest;
  });
  assert.is(digests[0], digests[1], 'Liftoff and TurboFan give different bits');
});

test.after(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

test.run();
