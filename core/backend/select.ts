// Backend selection for programs (the CLI, experiments, bench): PTSLAB_BACKEND = reference | cpu | gpujs | auto, or
// an explicit name. `auto` (the default here) times every available registered backend once on a tiny conv and
// matmul workload, checks its results against the reference, and picks the fastest correct one; the choice is
// cached in ~/.cache/ptslab (or the OS temp dir) under a key made of the machine, Node version and backend list, so
// later runs pay nothing. Importing the library never changes the backend: only selectBackend() does.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArgumentError } from '../errors.js';
import './all.js';
import { backend, listBackends, setBackend, withBackend } from './index.js';
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
    process.version, process.env.PTSLAB_THREADS ?? '', ...names].join('|');
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
  const correct = ok(out.y, ry) && ok(out.mm, rmm);
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

function candidates(): BackendCandidate[] {
  return listBackends().map((name) => {
    const b = withBackend(name, () => backend());
    let reason: string | null = null;
    try {
      reason = b.unavailableReason?.() ?? null;
    } catch (e) {
      reason = (e as Error).message;
    }
    return reason ? { name, available: false, reason } : { name, available: true };
  });
}

let report: AutoReport | null = null;

/** Which backend `auto` picks here (timing once per machine, then from the cache file). */
export function autoBackendReport(): AutoReport {
  if (report) return report;
  const cands = candidates();
  const names = cands.map((c) => c.name).sort();
  const key = machineKey(names);
  const file = cacheFile();
  let cache: Record<string, { chosen: string; candidates: BackendCandidate[]; at: string }> = {};
  try {
    cache = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    cache = {};
  }
  const hit = cache[key];
  if (hit && cands.some((c) => c.name === hit.chosen && c.available)) {
    report = { chosen: hit.chosen, candidates: hit.candidates, cached: true, cacheFile: file, key };
    return report;
  }
  for (const c of cands) {
    if (!c.available) continue;
    try {
      Object.assign(c, probe(withBackend(c.name, () => backend())));
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

/**
 * Make the named backend current (name, else PTSLAB_BACKEND, else auto) and return it. Throws ArgumentError for an
 * unknown or unavailable backend, naming why.
 */
export function selectBackend(name?: string): Backend {
  const want = (name ?? process.env.PTSLAB_BACKEND ?? 'auto').trim() || 'auto';
  const chosen = want === 'auto' ? autoBackendReport().chosen : want;
  if (!listBackends().includes(chosen)) {
    throw new ArgumentError(`selectBackend: unknown backend '${chosen}' (PTSLAB_BACKEND), available: ${listBackends().join(', ')}, auto`);
  }
  const b = withBackend(chosen, () => backend());
  const why = b.unavailableReason?.() ?? null;
  if (why) throw new ArgumentError(`selectBackend: backend '${chosen}' is not available here: ${why}`);
  setBackend(b);
  return b;
}
