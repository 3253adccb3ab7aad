// Re-run finished cells of a results folder from their own cell.json and compare what they produce with what is
// committed: the evaluated figures (top-1, dense top-1), the exact zero count and per-layer sparsity, and every
// logged FCPTS step (history.json, every loss term at full float precision). Timings, commit and version are not
// compared. This is how a committed table is shown to regenerate bit for bit (same backend, same seed): the cells
// run on the backend their result.json names unless another is asked for, into a scratch folder, never over the
// committed files.
//
// A faster kernel changes float rounding (FMA, a cached teacher), and then no trained cell regenerates bit for bit;
// the tolerance mode says whether it regenerates within stated bands instead. Sparsity stays exact (the global zero
// count and achieved sparsity: every method hits its target count exactly); top-1 and dense top-1 lie within
// `top1` percentage points; each layer's sparsity within `layerSparsity` (a learned allocation moves a little);
// histories have the same steps and learning rates, and each logged value's mean over each tenth of the run lies
// within `history` (relative to the larger magnitude, with an absolute floor of 1e-3): trajectories that start
// from different roundings do not match step by step, their course does. Every difference is listed either way,
// marked as within its band or not.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArgumentError } from '../../core/errors.js';
import { selectBackend } from '../../core/backend/select.js';
import type { StepLog } from '../../sparsity/distill.js';
import type { TeacherCache } from '../../sparsity/teacher-cache.js';
import { applicableConfig, changedPlugins, loadPlugins } from '../../sparsity/index.js';
import { runCell, type CellResult, type CellSpec } from '../prune-cell.js';
import { matchesOnly, unmatchedOnly, type OnlyFilter } from './grid.js';
import { finishedCells } from './results.js';

export interface Mismatch {
  /** What differs: a result field (`top1`), a layer (`layers[3].sparsity`) or a history entry (`history[12].loss`). */
  field: string;
  committed: unknown;
  rerun: unknown;
  /** Tolerance mode only: the band this field is allowed (e.g. `+-1 pp`), and whether the difference lies inside it. */
  band?: string;
  within?: boolean;
}

/** The bands of the tolerance mode (see the header). */
export interface Tolerance {
  /** Top-1 and dense top-1, in percentage points (default 1). */
  top1: number;
  /** Each layer's sparsity, as a fraction (default 0.02). */
  layerSparsity: number;
  /** Relative band on each history value's mean over each tenth of the run (default 0.1). */
  history: number;
}

export const DEFAULT_TOLERANCE: Tolerance = { top1: 1, layerSparsity: 0.02, history: 0.1 };

export interface ReproducedCell {
  key: string;
  backend: string;
  /** Seconds of the re-run. */
  seconds: number;
  mismatches: Mismatch[];
}

export interface ReproduceOptions {
  only?: OnlyFilter;
  /** Run on this backend instead of the one each result.json names. */
  backend?: string;
  /** Compare within these bands instead of exactly (fields not given take DEFAULT_TOLERANCE's). */
  tolerance?: Partial<Tolerance>;
  log?: (line: string) => void;
}

/** A cell passes when nothing differs (exact mode) or every difference lies within its band (tolerance mode). */
export const passes = (c: { mismatches: readonly Mismatch[] }): boolean => c.mismatches.every((m) => m.within === true);

/** The result fields that must come out identical. */
const FIELDS = ['method', 'targetSparsity', 'achievedSparsity', 'prunableParams', 'zeroParams', 'top1', 'denseTop1', 'evalImages'] as const;

/** Every leaf where `a` and `b` differ, with its path (numbers compared exactly; NaN equals NaN). */
export function differences(a: unknown, b: unknown, path: string, out: Mismatch[] = []): Mismatch[] {
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push({ field: `${path}.length`, committed: a.length, rerun: b.length });
    for (let i = 0; i < Math.min(a.length, b.length); i++) differences(a[i], b[i], `${path}[${i}]`, out);
  } else if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort()) differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, out);
  } else if (!(a === b || (Number.isNaN(a) && Number.isNaN(b)))) {
    out.push({ field: path, committed: a, rerun: b });
  }
  return out;
}

/** Compare a re-run cell folder with the committed one: exactly, or within `tol`'s bands. */
export function compareCells(committedDir: string, rerunDir: string, tol?: Tolerance): Mismatch[] {
  const read = (d: string, f: string) => JSON.parse(readFileSync(join(d, f), 'utf8')) as unknown;
  const want = read(committedDir, 'result.json') as CellResult, got = read(rerunDir, 'result.json') as CellResult;
  const out: Mismatch[] = [];
  const banded = (from: number, band: number, label: string, abs = true) => {
    for (const m of out.slice(from)) {
      const a = m.committed, b = m.rerun;
      m.band = label;
      m.within = typeof a === 'number' && typeof b === 'number' && (abs ? Math.abs(a - b) <= band : close(a, b, band));
    }
  };
  const exact = (from: number) => out.slice(from).forEach((m) => ((m.band = 'exact'), (m.within = false)));
  for (const f of FIELDS) {
    const from = out.length;
    differences(want[f], got[f], f, out);
    if (!tol) continue;
    if (f === 'top1' || f === 'denseTop1') banded(from, tol.top1, `+-${tol.top1} pp`);
    else exact(from);
  }
  for (let i = 0; i < Math.max(want.layers.length, got.layers.length); i++) {
    const w = want.layers[i], g = got.layers[i], at = `layers[${i}]`;
    if (!w || !g) {
      out.push({ field: at, committed: w?.name, rerun: g?.name, ...(tol && { band: 'exact', within: false }) });
      continue;
    }
    const from = out.length;
    differences({ ...w, sparsity: undefined }, { ...g, sparsity: undefined }, at, out);
    if (tol) exact(from);
    const s = out.length;
    differences(w.sparsity, g.sparsity, `${at}.sparsity`, out);
    if (tol) banded(s, tol.layerSparsity, `+-${tol.layerSparsity}`);
  }
  const hasHistory = [committedDir, rerunDir].map((d) => existsSync(join(d, 'history.json')));
  if (hasHistory[0] !== hasHistory[1]) {
    out.push({ field: 'history.json', committed: hasHistory[0] ? 'present' : 'absent', rerun: hasHistory[1] ? 'present' : 'absent', ...(tol && { band: 'exact', within: false }) });
  } else if (hasHistory[0]) {
    const a = read(committedDir, 'history.json') as StepLog[], b = read(rerunDir, 'history.json') as StepLog[];
    if (!tol) differences(a, b, 'history', out);
    else out.push(...historyDifferences(a, b, tol.history));
  }
  return out;
}

/** |a - b| <= band * max(|a|, |b|), or <= 1e-3 (values near zero). */
const close = (a: number, b: number, band: number) => Math.abs(a - b) <= Math.max(band * Math.max(Math.abs(a), Math.abs(b)), 1e-3);

/**
 * Histories in the tolerance mode: the same steps, learning rates equal to 1e-9 (they depend on the step only), and
 * each logged value (every loss term, the loss, the global sparsity) averaged over each tenth of the run within
 * `band`. Every window that differs at all is listed, marked within its band or not.
 */
export function historyDifferences(a: readonly StepLog[], b: readonly StepLog[], band = DEFAULT_TOLERANCE.history): Mismatch[] {
  const out: Mismatch[] = [];
  if (a.length !== b.length) return [{ field: 'history.length', committed: a.length, rerun: b.length, band: 'exact', within: false }];
  for (let i = 0; i < a.length; i++) {
    if (a[i].step !== b[i].step) out.push({ field: `history[${i}].step`, committed: a[i].step, rerun: b[i].step, band: 'exact', within: false });
    else if (Math.abs(a[i].lr - b[i].lr) > 1e-9 * Math.abs(a[i].lr)) out.push({ field: `history[${i}].lr`, committed: a[i].lr, rerun: b[i].lr, band: 'exact', within: false });
  }
  const series = (h: readonly StepLog[]): Map<string, number[]> => {
    const m = new Map<string, number[]>();
    const put = (k: string, v: number) => (m.get(k) ?? m.set(k, []).get(k)!).push(v);
    for (const s of h) {
      for (const [k, v] of Object.entries(s.terms)) put(`terms.${k}`, v);
      put('loss', s.loss);
      put('sparsity', s.sparsity);
    }
    return m;
  };
  const sa = series(a), sb = series(b);
  const windows = Math.min(10, a.length);
  for (const k of [...new Set([...sa.keys(), ...sb.keys()])].sort()) {
    const x = sa.get(k), y = sb.get(k);
    if (!x || !y || x.length !== y.length) {
      out.push({ field: `history.${k}`, committed: x ? 'logged' : 'absent', rerun: y ? 'logged' : 'absent', band: 'exact', within: false });
      continue;
    }
    for (let w = 0; w < windows; w++) {
      const lo = Math.floor((w * x.length) / windows), hi = Math.floor(((w + 1) * x.length) / windows);
      const mean = (v: number[]) => v.slice(lo, hi).reduce((s, e) => s + e, 0) / (hi - lo);
      const p = mean(x), q = mean(y);
      if (p === q || (Number.isNaN(p) && Number.isNaN(q))) continue;
      out.push({ field: `history.${k}[steps ${lo}-${hi - 1}] mean`, committed: p, rerun: q, band: `+-${band * 100}% (floor 1e-3)`, within: close(p, q, band) });
    }
  }
  return out;
}

/** Re-run the selected finished cells of `dir` (a folder with cells/) and compare each with its committed result. */
export async function reproduce(dir: string, o: ReproduceOptions = {}): Promise<ReproducedCell[]> {
  const cellsDir = join(dir, 'cells');
  if (!existsSync(cellsDir)) throw new Error(`${dir}: not a results folder (no cells/ inside)`);
  const finished = finishedCells(cellsDir);
  // each --only value alone, so one misspelt alternative in `method=lamp|lmap` is named rather than dropped
  const unmatched = unmatchedOnly(finished.map((c) => c.cell), o.only ?? {});
  if (unmatched.length) throw new Error(`${dir}: --only ${unmatched.join(', ')} matches no finished cell (${finished.length} finished)`);
  const selected = finished.filter((c) => matchesOnly(c.cell, o.only ?? {}));
  if (!selected.length) throw new Error(`${dir}: no finished cell matches the selection`);
  // A cell made with a plugin re-runs only with that plugin as it was: same path, same sha256.
  const changed = selected.flatMap((c) => changedPlugins(c.result.plugins ?? []).map((l) => `${c.key}: ${l}`));
  if (changed.length) throw new Error(`${dir}: refusing to reproduce cells whose plugin changed: ${changed.join('; ')}`);
  const tol = o.tolerance ? checkTolerance({ ...DEFAULT_TOLERANCE, ...o.tolerance }) : undefined;
  const scratch = mkdtempSync(join(tmpdir(), 'ptslab-reproduce-'));
  const done: ReproducedCell[] = [];
  // as in `ptslab run`: cells on one model and calibration set share the teacher's logits (bit-identical either way)
  const teacherCaches = new Map<string, TeacherCache>();
  try {
    for (const c of selected) {
      const committed = c.dir, recorded = c.result.backend;
      const b = selectBackend(o.backend ?? recorded);
      o.log?.(`${c.key}: re-running on backend ${b.name}${b.name === recorded ? '' : ` (committed on ${recorded}: expect float differences)`}`);
      const out = join(scratch, c.key);
      const t0 = performance.now();
      // no denseTop1 hint: the dense figure is measured again (or, on a bundled model's full held-out set, taken from
      // its record) and compared as well
      if (!c.cell.spec) throw new Error(`${join(committed, 'cell.json')}: no spec (the cell was not written by \`ptslab run\`)`);
      const plugins = await loadPlugins((c.result.plugins ?? []).map((p) => p.path));
      const spec = { ...c.cell.spec, prune: applicableConfig(c.cell.spec.prune), denseTop1: undefined };
      await runCell(spec, { out, commit: null, version: 'reproduce', plugins, teacherCaches });
      done.push({ key: c.key, backend: b.name, seconds: Math.round((performance.now() - t0) / 100) / 10, mismatches: compareCells(committed, out, tol) });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return done;
}

function checkTolerance(t: Tolerance): Tolerance {
  for (const [k, v] of Object.entries(t)) {
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new ArgumentError(`reproduce: tolerance ${k} must be a number >= 0, got ${v}`);
  }
  return t;
}
