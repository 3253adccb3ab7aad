// Gathering and tabulating results: every DIR/cells/<key>/ folder (cell.json = what the runner asked for,
// result.json = runCell's CellResult, error.json = why it failed) of one or more run folders becomes one list of
// cell records, written as DIR/results.json (everything), DIR/results.csv (one row per cell) and DIR/results.md (the
// tables a person reads: rows = method, columns = target sparsity; top-1, achieved sparsity, seconds, pruned MACs;
// mean +- std over seeds). Nothing here depends on when or where a cell ran, so merged shards give the same files as one run.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CellResult, CellSpec } from '../prune-cell.js';
import type { StepLog } from '../../sparsity/index.js';
import { writeAtomic } from '../../nn/io/atomic.js';
import { readJsonIfExists } from '../json-file.js';

/** DIR/cells/<key>/cell.json: written by the runner before a cell starts. */
export interface CellMeta {
  key: string;
  index: number;
  method: string;
  sparsity: number;
  seed: number;
  ablation: string | null;
  config: string;
}

export interface CellRecord extends CellMeta {
  status: 'done' | 'failed' | 'pending';
  dir: string;
  result?: CellResult;
  error?: string;
}

export interface RunMeta {
  name: string;
  description?: string;
  smoke: boolean;
  plotSparsity?: number;
}

const readJson = <T>(p: string): T | undefined => readJsonIfExists<T>(p, 'run folder');

/** A finished cell folder: the runner's cell.json (with the spec it ran) and runCell's result.json. */
export interface FinishedCell {
  key: string;
  dir: string;
  cell: CellMeta & { spec?: CellSpec };
  result: CellResult;
}

/** The finished cells of one DIR/cells folder, sorted by key (a folder without both files is left out). */
export function finishedCells(cellsDir: string): FinishedCell[] {
  const out: FinishedCell[] = [];
  for (const key of readdirSync(cellsDir).sort()) {
    const dir = join(cellsDir, key);
    const cell = readJson<CellMeta & { spec?: CellSpec }>(join(dir, 'cell.json'));
    const result = cell && readJson<CellResult>(join(dir, 'result.json'));
    if (cell && result) out.push({ key, dir, cell, result });
  }
  return out;
}

/** Every cell folder under each DIR/cells, sorted by grid index then key; a key seen twice keeps the finished one. */
export function gatherCells(dirs: readonly string[]): CellRecord[] {
  const byKey = new Map<string, CellRecord>();
  for (const dir of dirs) {
    const cellsDir = join(dir, 'cells');
    if (!existsSync(cellsDir)) continue;
    for (const key of readdirSync(cellsDir).sort()) {
      const d = join(cellsDir, key);
      const meta = readJson<CellMeta>(join(d, 'cell.json'));
      const result = readJson<CellResult>(join(d, 'result.json'));
      const err = readJson<{ error: string }>(join(d, 'error.json'));
      if (!meta && !result) continue;
      const m: CellMeta = meta ?? {
        key,
        index: Number.MAX_SAFE_INTEGER,
        method: `${result!.method}${result!.config.bnRecal ? '+bnrecal' : ''}`,
        sparsity: result!.targetSparsity,
        seed: result!.seed,
        ablation: null,
        config: '',
      };
      const rec: CellRecord = { ...m, status: result ? 'done' : err ? 'failed' : 'pending', dir: d, ...(result ? { result } : {}), ...(err && !result ? { error: err.error } : {}) };
      const prev = byKey.get(key);
      if (!prev || (prev.status !== 'done' && rec.status === 'done')) byKey.set(key, rec);
    }
  }
  return [...byKey.values()].sort((a, b) => a.index - b.index || a.key.localeCompare(b.key));
}

/** The FCPTS history of a finished cell (empty for one-shot methods). */
export function readHistory(c: CellRecord): StepLog[] {
  return readJson<StepLog[]>(join(c.dir, 'history.json')) ?? [];
}

export const rowLabel = (c: { method: string; ablation: string | null }): string => (c.ablation ? `${c.method} [${c.ablation}]` : c.method);

/** Mean, and sample standard deviation (n - 1; 0 for one value): the tables' and the plots' mean +- std over seeds. */
export const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
export const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pct = (s: number) => `${+(100 * s).toFixed(2)}%`;

/** A rows x sparsities markdown table of one statistic; cells with several seeds show mean +- std (n). */
export function statTable(cells: readonly Omit<CellRecord, 'dir'>[], get: (r: CellResult) => number | undefined, digits: number): string {
  const rows = [...new Set(cells.map(rowLabel))];
  const cols = [...new Set(cells.map((c) => c.sparsity))].sort((a, b) => a - b);
  const lines = [`| method | ${cols.map(pct).join(' | ')} |`, `| --- | ${cols.map(() => '---:').join(' | ')} |`];
  for (const row of rows) {
    const vals = cols.map((s) => {
      const here = cells.filter((c) => rowLabel(c) === row && c.sparsity === s);
      const finished = here.filter((c) => c.result);
      // a statistic that finished results lack (macs in result.json files older than it) is a blank cell
      const done = finished.map((c) => get(c.result!)).filter((v): v is number => v !== undefined);
      if (finished.length && !done.length) return '';
      if (!done.length) return here.some((c) => c.status === 'failed') ? 'failed' : here.length ? 'pending' : '–';
      const m = mean(done).toFixed(digits);
      return done.length > 1 ? `${m} ± ${std(done).toFixed(digits)} (n=${done.length})` : m;
    });
    lines.push(`| ${row} | ${vals.join(' | ')} |`);
  }
  return lines.join('\n');
}

const table = (cells: CellRecord[], title: string, get: (r: CellResult) => number | undefined, digits: number): string =>
  `## ${title}\n\n${statTable(cells, get, digits)}`;

/** One field of the finished cells' results: its distinct values, in order of first appearance, comma-separated. */
export function distinctOf(cells: readonly { result?: CellResult }[], field: (r: CellResult) => string | number): string {
  return [...new Set(cells.flatMap((c) => (c.result ? [field(c.result)] : [])))].join(', ');
}

/** A result's git commit, short (7 characters) as git log prints it. */
export const shortCommit = (r: CellResult): string => (r.commit ?? 'unknown').slice(0, 7);

/** results.md: header, top-1 / achieved sparsity / seconds tables, failures, plots. */
export function resultsMarkdown(meta: RunMeta, cells: CellRecord[], plots: string[] = []): string {
  const done = cells.filter((c) => c.result);
  const failed = cells.filter((c) => c.status === 'failed');
  const out: string[] = [`# ${meta.name}${meta.smoke ? ' (smoke run: reduced iterations and data, not a result)' : ''}`, ''];
  if (meta.description) out.push(meta.description.trim(), '');
  if (done.length) {
    out.push(`Model: ${distinctOf(done, (r) => `${r.model} (${r.arch} on ${r.dataset})`)}.`);
    out.push(`Dense top-1: ${distinctOf(done, (r) => `${r.denseTop1.toFixed(2)}% on ${r.evalImages} images`)}.`);
    // every cell's own commit: a grid resumed over many commits lists them all, in grid order
    out.push(`Backend ${distinctOf(done, (r) => r.backend)}; version ${distinctOf(done, (r) => r.version)}; commit ${distinctOf(done, shortCommit)}.`);
  }
  out.push(`${cells.length} cells: ${done.length} done, ${failed.length} failed, ${cells.length - done.length - failed.length} pending.`, '');
  out.push(table(cells, 'Top-1 (%)', (r) => r.top1, 2), '');
  out.push(table(cells, 'Achieved sparsity (%)', (r) => 100 * r.achievedSparsity, 2), '');
  out.push(table(cells, 'Seconds (sparsification, without evaluation)', (r) => r.seconds, 1), '');
  out.push(table(cells, 'Pruned MMACs per image (conv and linear layers, zeros skipped)', (r) => (r.macs ? r.macs.pruned / 1e6 : undefined), 1), '');
  if (failed.length) out.push('## Failed cells', '', ...failed.map((c) => `- \`${c.key}\`: ${c.error ?? 'unknown error'}`), '');
  if (plots.length) out.push('## Plots', '', ...plots.map((p) => `- [${p}](${p})`), '');
  return out.join('\n');
}

const CSV_COLUMNS = ['key', 'method', 'ablation', 'sparsity', 'seed', 'status', 'top1', 'denseTop1', 'achievedSparsity', 'seconds', 'zeroParams', 'prunableParams', 'model', 'arch', 'dataset', 'evalImages', 'prunedMacs', 'denseMacs', 'backend', 'commit', 'error'] as const;

const csvField = (v: unknown): string => {
  const s = v === undefined || v === null ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function resultsCsv(cells: CellRecord[]): string {
  const rows = cells.map((c) => {
    const r = c.result;
    const v: Record<(typeof CSV_COLUMNS)[number], unknown> = {
      key: c.key, method: c.method, ablation: c.ablation, sparsity: c.sparsity, seed: c.seed, status: c.status,
      top1: r?.top1, denseTop1: r?.denseTop1, achievedSparsity: r?.achievedSparsity, seconds: r?.seconds, zeroParams: r?.zeroParams,
      prunableParams: r?.prunableParams, model: r?.model, arch: r?.arch, dataset: r?.dataset, evalImages: r?.evalImages,
      prunedMacs: r?.macs?.pruned, denseMacs: r?.macs?.dense,
      backend: r?.backend, commit: r?.commit, error: c.error,
    };
    return CSV_COLUMNS.map((k) => csvField(v[k])).join(',');
  });
  return `${[CSV_COLUMNS.join(','), ...rows].join('\n')}\n`;
}

/** results.json: the run's name and every cell (its folder relative to nothing: dirs differ between shards). */
export function resultsJson(meta: RunMeta, cells: CellRecord[]): string {
  return `${JSON.stringify({ ...meta, cells: cells.map(({ dir: _d, ...c }) => c) }, null, 2)}\n`;
}

/** Write results.json/csv/md into `out`; returns their paths. */
export function writeTables(out: string, meta: RunMeta, cells: CellRecord[], plots: string[] = []): string[] {
  const files = { 'results.json': resultsJson(meta, cells), 'results.csv': resultsCsv(cells), 'results.md': resultsMarkdown(meta, cells, plots) };
  return Object.entries(files).map(([f, text]) => {
    const p = join(out, f);
    writeAtomic(p, text);
    return p;
  });
}
