// Backend selection: PTSLAB_BACKEND = reference | cpu | gpujs | auto, or an explicit name. `auto` (the default)
// times every available registered backend once on a tiny conv and matmul workload, checks its results against the
// reference, and picks the fastest correct one; the choice is cached in ~/.cache/ptslab (or the OS temp dir) under a
// key made of the machine, Node version, PTSLAB_THREADS, PTSLAB_FMA (which with the machine and Node version decides
// the cpu kernel build) and backend list, so later runs pay only for a file read. Loading this module installs
// resolveBackend() as the registry's default resolver: nothing is probed at import, the first backend() call
// (the first op) resolves PTSLAB_BACKEND, else auto, unless the program chose with setBackend first. Programs that
// want the choice made up front (the CLI, experiments, bench) call selectBackend().

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostData } from '../dtype.js';
import { ArgumentError } from '../errors.js';
import './all.js';
import { findBackend, listBackends, setBackend, setDefaultResolver } from './index.js';
import { referenceBackend } from './reference.js';
import type { Backend, Conv2dParams, View } from './types.js';

export interface BackendCandidate {
  name: string;
  available: boolean;
  reason?: string;
  /** Median milliseconds of the probe workload, when timed. */
  ms?: number;
  /** False when the probe's results differed from the reference. */
  correct?: boolean;
}

export interface AutoReport {
  chosen: string;
  candidates: BackendCandidate[];
  /** True when the choice came from the cache file. */
  cached: boolean;
  cacheFile: string;
  key: string;
}

function cacheFile(): string {
  const dirs = [path.join(os.homedir(), '.cache', 'ptslab'), path.join(os.tmpdir(), 'ptslab')];
  for (const d of dirs) {
    try {
      fs.mkdirSync(d, { recursive: true });
      fs.accessSync(d, fs.constants.W_OK);
      return path.join(d, 'backend-auto.json');
    } catch {
      // try the next one
    }
  }
  return path.join(os.tmpdir(), 'ptslab-backend-auto.json');
}

function machineKey(names: string[]): string {
  const cpus = os.cpus();
  const id = [os.hostname(), os.platform(), os.arch(), cpus[0]?.model ?? '?', os.availableParallelism(), os.totalmem(),
    process.version, process.env.PTSLAB_THREADS ?? '', process.env.PTSLAB_FMA ?? '', ...names].join('|');
  return crypto.createHash('sha256').update(id).digest('hex').slice(0, 16);
}

const view = (data: Float32Array, shape: number[]): View => {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return { data, shape, strides, offset: 0 };
};

/** The probe: a 3x3 conv forward + both backward passes and a matmul, small enough to take milliseconds. */
function probe(b: Backend): { ms: number; correct: boolean } {
  let s = 12345;
  const rand = (n: number) => Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1);
  const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
  const x = view(rand(2 * 32 * 24 * 24), [2, 32, 24, 24]);
  const w = view(rand(32 * 32 * 9), [32, 32, 3, 3]);
  const a = view(rand(96 * 160), [1, 96, 160]), m = view(rand(160 * 128), [1, 160, 128]);
  const work = () => {
    const y = b.conv2d(x, w, null, p);
    const gy = view(y as Float32Array, [2, 32, 24, 24]);
    b.conv2dBackwardInput(gy, w, x.shape, p);
    b.conv2dBackwardWeight(gy, x, w.shape, p);
    return { y, mm: b.matmul(a, m) };
  };
  const t0 = performance.now();
  const out = work();
  const first = performance.now() - t0;
  const ry = referenceBackend.conv2d(x, w, null, p), rmm = referenceBackend.matmul(a, m);
  const ok = (u: ArrayLike<number>, v: ArrayLike<number>) => u.length === v.length && Array.from(v).every((e, i) => Math.abs(u[i] - e) <= 1e-3 * (1 + Math.abs(e)));
  const correct = ok(hostData(out.y), hostData(ry)) && ok(hostData(out.mm), hostData(rmm));
  // A backend this slow cannot win: its first (cold) time will do.
  if (first > 250) return { ms: first, correct };
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    work();
    times.push(performance.now() - t);
  }
  times.sort((u, v) => u - v);
  return { ms: times[1], correct };
}

/** Why the named registered backend cannot run here (a throwing check counts as the reason), or null. */
function whyUnavailable(b: Backend): string | null {
  try {
    return b.unavailableReason?.() ?? null;
  } catch (e) {
    return (e as Error).message;
  }
}

function candidates(): BackendCandidate[] {
  return listBackends().map((name) => {
    const reason = whyUnavailable(findBackend(name)!);
    return reason ? { name, available: false, reason } : { name, available: true };
  });
}

let report: AutoReport | null = null;

/**
 * Which backend `auto` picks here (timing once per machine, then from the cache file). A cache hit checks only the
 * cached choice's availability, so it loads no other backend (gpu.js stays unloaded when cpu is the choice).
 */
export function autoBackendReport(): AutoReport {
  if (report) return report;
  const key = machineKey([...listBackends()].sort());
  const file = cacheFile();
  let cache: Record<string, { chosen: string; candidates: BackendCandidate[]; at: string }> = {};
  try {
    cache = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    cache = {};
  }
  const hit = cache[key];
  const hitBackend = hit ? findBackend(hit.chosen) : undefined;
  if (hit && hitBackend && whyUnavailable(hitBackend) === null) {
    report = { chosen: hit.chosen, candidates: hit.candidates, cached: true, cacheFile: file, key };
    return report;
  }
  const cands = candidates();
  for (const c of cands) {
    if (!c.available) continue;
    try {
      Object.assign(c, probe(findBackend(c.name)!));
    } catch (e) {
      Object.assign(c, { correct: false, reason: `probe failed: ${(e as Error).message}` });
    }
  }
  const usable = cands.filter((c) => c.available && c.correct && c.ms !== undefined).sort((u, v) => u.ms! - v.ms!);
  const chosen = usable[0]?.name ?? 'reference';
  cache[key] = { chosen, candidates: cands, at: new Date().toISOString() };
  try {
    fs.writeFileSync(file, JSON.stringify(cache, null, 1));
  } catch {
    // a read-only home is fine: we just time again next run
  }
  report = { chosen, candidates: cands, cached: false, cacheFile: file, key };
  return report;
}

const expected = () => `${listBackends().join(', ')}, auto`;

/**
 * The backend a name stands for (name, else PTSLAB_BACKEND, else auto), without making it current. Throws
 * ArgumentError for an unknown or unavailable backend, naming where the name came from and what was expected.
 */
export function resolveBackend(name?: string): Backend {
  const fromEnv = name === undefined && process.env.PTSLAB_BACKEND !== undefined;
  const raw = name ?? process.env.PTSLAB_BACKEND ?? 'auto';
  const want = raw.trim() || 'auto';
  const source = fromEnv ? `PTSLAB_BACKEND='${raw}'` : `backend '${want}'`;
  const chosen = want === 'auto' ? autoBackendReport().chosen : want;
  const b = findBackend(chosen);
  if (!b) {
    throw new ArgumentError(`${source} names no registered backend: expected one of ${expected()}`);
  }
  const why = whyUnavailable(b);
  if (why) throw new ArgumentError(`${source}: backend '${chosen}' is not available here (${why}); expected one of ${expected()} that runs here`);
  return b;
}

/**
 * Make the named backend current (name, else PTSLAB_BACKEND, else auto) and return it. Throws ArgumentError for an
 * unknown or unavailable backend, naming why.
 */
export function selectBackend(name?: string): Backend {
  const b = resolveBackend(name);
  setBackend(b);
  return b;
}

// The default for programs that never call setBackend: resolved on the first op, not at import.
setDefaultResolver(() => resolveBackend());
