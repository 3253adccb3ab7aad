// Re-run finished cells of a results folder from their own cell.json and compare what they produce with what is
// committed: the evaluated figures (top-1, dense top-1), the exact zero count and per-layer sparsity, and every
// logged FCPTS step (history.json, every loss term at full float precision). Timings, commit and version are not
// compared. This is how a committed table is shown to regenerate bit for bit (same backend, same seed): the cells
// run on the backend their result.json names unless another is asked for, into a scratch folder, never over the
// committed files.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../../core/backend/select.js';
import { applicableConfig, changedPlugins, loadPlugins } from '../../sparsity/index.js';
import { runCell, type CellResult, type CellSpec } from '../prune-cell.js';
import { matchesOnly, unmatchedOnly, type OnlyFilter } from './grid.js';
import { finishedCells } from './results.js';

export interface Mismatch {
  /** What differs: a result field (`top1`), a layer (`layers[3].sparsity`) or a history entry (`history[12].loss`). */
  field: string;
  committed: unknown;
  rerun: unknown;
}

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
  log?: (line: string) => void;
}

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

/** Compare a re-run cell folder with the committed one. */
export function compareCells(committedDir: string, rerunDir: string): Mismatch[] {
  const read = (d: string, f: string) => JSON.parse(readFileSync(join(d, f), 'utf8')) as unknown;
  const want = read(committedDir, 'result.json') as CellResult, got = read(rerunDir, 'result.json') as CellResult;
  const out: Mismatch[] = [];
  for (const f of FIELDS) differences(want[f], got[f], f, out);
  differences(want.layers, got.layers, 'layers', out);
  const hasHistory = [committedDir, rerunDir].map((d) => existsSync(join(d, 'history.json')));
  if (hasHistory[0] !== hasHistory[1]) out.push({ field: 'history.json', committed: hasHistory[0] ? 'present' : 'absent', rerun: hasHistory[1] ? 'present' : 'absent' });
  else if (hasHistory[0]) differences(read(committedDir, 'history.json'), read(rerunDir, 'history.json'), 'history', out);
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
  const scratch = mkdtempSync(join(tmpdir(), 'ptslab-reproduce-'));
  const done: ReproducedCell[] = [];
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
      await runCell(spec, { out, commit: null, version: 'reproduce', plugins });
      done.push({ key: c.key, backend: b.name, seconds: Math.round((performance.now() - t0) / 100) / 10, mismatches: compareCells(committed, out) });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return done;
}
