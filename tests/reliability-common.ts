// Shared pieces of the reliability suites (tests/reliability-*.test.ts): the number of fuzz cases per reader
// (PTSLAB_FUZZ_RUNS, default 1,000; `npm run fuzz` sets 20,000), the byte mutations every reader is fuzzed with
// (bit flips, byte overwrites, truncations, appended garbage, deleted ranges), and `outcome`, the oracle every fuzz
// case goes through: the reader either returns a value that passes the case's own check, or throws an instance of the
// expected PtslabError subclass whose message contains the file's path. Anything else (a TypeError or RangeError
// from deep inside, an error without the path, a case slower than CASE_LIMIT_MS) fails the test. Also the fixtures
// of the CLI, crash and determinism suites: a tiny MNIST-layout IDX folder, random ResNet-20 weights, and `cli`,
// which runs the built dist/scripts/cli.js in a child process.

import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PtslabError } from '../core/errors.js';
import { manualSeed } from '../core/index.js';
import { saveSafetensors } from '../nn/index.js';
import { buildModel } from '../nn/train/index.js';

/** Cases per reader: at least 1,000. */
export const FUZZ_RUNS = Math.max(1000, Math.floor(Number(process.env.PTSLAB_FUZZ_RUNS) || 1000));
/** fast-check seed: fixed, so a failure reproduces; PTSLAB_FUZZ_SEED explores others. */
export const FUZZ_SEED = Number(process.env.PTSLAB_FUZZ_SEED) || 20260811;
/** A case slower than this counts as a hang (the machine is shared and loaded: generous). */
export const CASE_LIMIT_MS = 15_000;

export const tmp = (tag: string): string => mkdtempSync(join(tmpdir(), `ptslab-rel-${tag}-`));

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'cut'; at: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'delete'; at: number; len: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
);

/** 0 to 4 mutations (a quarter of the cases keep the file intact, and must load). */
export const mutationsArb = fc.oneof({ weight: 1, arbitrary: fc.constant([] as Mutation[]) }, { weight: 3, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 4 }) });

/** `bytes` with the mutations applied in order (positions taken modulo the current length). */
export function mutate(bytes: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let b = bytes.slice();
  for (const m of ms) {
    const n = b.length;
    if (m.kind === 'flip' && n) b[m.at % n] ^= 1 << m.bit;
    else if (m.kind === 'set' && n) b[m.at % n] = m.value;
    else if (m.kind === 'cut') b = b.slice(0, m.at % (n + 1));
    else if (m.kind === 'append') b = Uint8Array.from([...b, ...m.bytes]);
    else if (m.kind === 'delete' && n) {
      const at = m.at % n;
      b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + m.len)]);
    }
  }
  return b;
}

/** Counts of one fuzzed reader, printed at the end of its suite. */
export class Tally {
  loaded = 0;
  rejected = 0;
  maxMs = 0;
  constructor(readonly reader: string) {}
  get cases(): number {
    return this.loaded + this.rejected;
  }
  /** Print the counts; fail unless FUZZ_RUNS cases ran and both outcomes occurred often enough to mean something. */
  done(minLoaded: number, minRejected: number): void {
    const line = this.report();
    if (this.cases < FUZZ_RUNS || this.loaded < minLoaded || this.rejected < minRejected) throw new Error(`too few cases of each kind: ${line}`);
  }
  report(): string {
    const line = `fuzz ${this.reader}: ${this.cases} cases (${this.loaded} loaded, ${this.rejected} rejected with a named error), slowest ${this.maxMs.toFixed(0)} ms, 0 failures`;
    console.log(line);
    return line;
  }
}

type ErrorClass = abstract new (...a: any[]) => Error;

/**
 * Run one fuzz case. `load` reads the input; `check` validates a successful load (throw or return false when wrong).
 * A thrown error must be an instance of `cls` (default PtslabError) and mention `path`.
 */
export function outcome<T>(tally: Tally, path: string, load: () => T, check: (v: T) => boolean | void, cls: ErrorClass = PtslabError): boolean {
  const t0 = performance.now();
  let value: T;
  try {
    value = load();
  } catch (e) {
    const ms = performance.now() - t0;
    tally.maxMs = Math.max(tally.maxMs, ms);
    if (!(e instanceof cls)) throw new Error(`${tally.reader}: ${path}: escaped as ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
    if (!(e as Error).message.includes(path)) throw new Error(`${tally.reader}: error does not name ${path}: ${(e as Error).message}`);
    if (ms > CASE_LIMIT_MS) throw new Error(`${tally.reader}: ${path}: took ${ms.toFixed(0)} ms to reject`);
    tally.rejected++;
    return true;
  }
  const ms = performance.now() - t0;
  tally.maxMs = Math.max(tally.maxMs, ms);
  if (ms > CASE_LIMIT_MS) throw new Error(`${tally.reader}: ${path}: took ${ms.toFixed(0)} ms to load`);
  if (check(value) === false) throw new Error(`${tally.reader}: ${path}: loaded, but the result is wrong`);
  tally.loaded++;
  return true;
}

/** Run `prop` FUZZ_RUNS times (async-free) with the fixed seed. */
export function fuzz<Ts extends [unknown, ...unknown[]]>(arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> }, body: (...args: Ts) => boolean, runs = FUZZ_RUNS): void {
  fc.assert(fc.property(...arbs, body), { numRuns: runs, seed: FUZZ_SEED, endOnFailure: true });
}

/** A tiny MNIST-layout IDX folder (28x28 grey, labels 0..9): `train` and `test` images, a pattern per class plus noise. */
export function writeTinyMnist(dir: string, train = 64, test = 16): string {
  mkdirSync(dir, { recursive: true });
  const write = (stem: string, n: number, salt: number) => {
    const img = new Uint8Array(16 + n * 784);
    const lab = new Uint8Array(8 + n);
    const dv = new DataView(img.buffer);
    dv.setUint32(0, 0x0803);
    dv.setUint32(4, n);
    dv.setUint32(8, 28);
    dv.setUint32(12, 28);
    new DataView(lab.buffer).setUint32(0, 0x0801);
    new DataView(lab.buffer).setUint32(4, n);
    for (let i = 0; i < n; i++) {
      const c = (lab[8 + i] = (i * 7 + salt) % 10);
      for (let p = 0; p < 784; p++) {
        const [y, x] = [Math.floor(p / 28), p % 28];
        const on = Math.floor(y / 3) % 10 === c || Math.floor(x / 3) % 10 === c;
        img[16 + i * 784 + p] = (on ? 200 : 20) + ((i * 131 + p * 17 + salt) % 40);
      }
    }
    writeFileSync(join(dir, `${stem}-images-idx3-ubyte`), img);
    writeFileSync(join(dir, `${stem}-labels-idx1-ubyte`), lab);
  };
  write('train', train, 1);
  write('t10k', test, 2);
  return dir;
}

/** Random-initialised ResNet-20 weights for 1-channel 28x28 10-class inputs (seeded), saved as safetensors. */
export function writeRandomResnet20(file: string, seed = 0): string {
  manualSeed(seed);
  const model = buildModel('resnet20', { numClasses: 10, inChannels: 1, inputSize: 28 });
  saveSafetensors(file, model.stateDict());
  return file;
}

/** The built CLI, run in a child process: status, stdout, stderr. Async, so several can run at once. */
export function cli(args: string[], o: { env?: Record<string, string>; cwd?: string } = {}): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: o.cwd, env: { ...process.env, PTSLAB_BACKEND: 'cpu', PTSLAB_THREADS: '1', ...o.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

export const CLI = fileURLToPath(new URL('../scripts/cli.js', import.meta.url));

/** Run async jobs with at most `n` at a time (the machine is shared: keep n small). */
export async function limited<T>(n: number, jobs: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  }));
  return out;
}
