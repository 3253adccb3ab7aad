// The grid runner behind `ptslab run`: runs the selected cells one after another through runCell (the same code as
// `ptslab prune`), each in DIR/cells/<key>/, skipping cells whose result.json exists (resume is the default; with
// resume off every selected cell runs again and its old result is replaced when it starts). A cell
// that throws leaves DIR/cells/<key>/error.json and the run goes on. The tables are rewritten after every cell (a long
// run can be read while it goes), the plots at the end. The dense model's top-1 is measured once per evaluation set
// and handed to the following cells. With `reuse` folders, a cell whose exact spec (model, data, every pruning option,
// seed) already finished in one of them is copied instead of run again (e.g. the ablation grid's `default` rows are
// the main grid's FCPTS and erk-kd cells); its cell.json names where it came from, its result.json is the original.

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { applicableConfig, registry, type PluginRecord } from '../../sparsity/index.js';
import { copyFileAtomic } from '../../nn/io/atomic.js';
import { readJsonFile } from '../json-file.js';
import { runCell, writeJsonAtomic, type CellResult, type CellSpec } from '../prune-cell.js';
import type { TeacherCache } from '../../sparsity/teacher-cache.js';
import type { Cell } from './grid.js';
import type { Progress } from './progress.js';
import { finishedCells, gatherCells, writeTables, type CellMeta, type CellRecord, type RunMeta } from './results.js';
import { writePlots } from './plots.js';

export interface RunGridOptions {
  out: string;
  meta: RunMeta;
  /** The resolved config, saved as DIR/run.json beside the results. */
  config: unknown;
  commit: string | null;
  version: string;
  progress: Progress;
  /** Skip cells whose result.json exists (default true). */
  resume?: boolean;
  /** Results folders whose finished cells with an identical spec are copied instead of run. */
  reuse?: readonly string[];
  /** The config's loaded plugins (recorded in each cell's result.json). */
  plugins?: PluginRecord[];
}

export interface RunSummary {
  ran: string[];
  skipped: string[];
  /** Cells copied from a `reuse` folder. */
  reused: string[];
  failed: Array<{ key: string; error: string }>;
  /** Every cell found in DIR (this run's and earlier ones), as tabulated. */
  cells: CellRecord[];
  tables: string[];
  plots: string[];
}

/** JSON with sorted keys, to compare configs. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));

/** A spec as this version runs it: its prune config reduced to the keys that apply to its method. */
const ownSpec = (s: CellSpec): CellSpec => ({ ...s, prune: applicableConfig(s.prune) });

/** What determines the dense model's top-1: the model and the evaluation set. */
const denseKey = (s: CellSpec): string => canonical({ ...s, prune: undefined, denseTop1: undefined });

/** Write the tables and the plots of everything in `out`; returns their paths. */
export async function tabulate(out: string, meta: RunMeta, cells: CellRecord[]): Promise<{ tables: string[]; plots: string[] }> {
  const plots = await writePlots(out, cells, meta.plotSparsity);
  return { tables: writeTables(out, meta, cells, plots), plots: plots.map((p) => join(out, p)) };
}

/** Dense top-1 of every finished cell already in the folder, by evaluation set. */
function knownDenseTop1(cellsDir: string): Map<string, number> {
  const dense = new Map<string, number>();
  for (const { cell, result } of finishedCells(cellsDir)) if (cell.spec) dense.set(denseKey(cell.spec), result.denseTop1);
  return dense;
}

/** Finished cells of the `reuse` folders by canonical spec (the first folder that has one wins). */
function finishedBySpec(dirs: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const d of dirs) {
    if (!existsSync(join(d, 'cells'))) throw new Error(`reuse: ${d} is not a results folder (no cells/ inside)`);
    for (const { cell, dir } of finishedCells(join(d, 'cells'))) {
      if (cell.spec && !found.has(canonical(ownSpec(cell.spec)))) found.set(canonical(ownSpec(cell.spec)), dir);
    }
  }
  return found;
}

/** Copy the finished cell `from` into `dir` as this grid's cell; result.json goes last, atomically. */
function copyCell(from: string, dir: string, meta: CellMeta, spec: CellSpec): void {
  mkdirSync(dir, { recursive: true });
  for (const f of ['error.json', 'result.json', 'history.json', 'model.safetensors']) rmSync(join(dir, f), { force: true });
  for (const f of ['history.json', 'model.safetensors']) if (existsSync(join(from, f))) copyFileAtomic(join(from, f), join(dir, f));
  writeJsonAtomic(join(dir, 'cell.json'), { ...meta, spec, reusedFrom: from });
  copyFileAtomic(join(from, 'result.json'), join(dir, 'result.json'));
}

const metaOf = (c: Cell, config: string): CellMeta => ({ key: c.key, index: c.index, method: c.method, sparsity: c.sparsity, seed: c.seed, ablation: c.ablation, config });

export async function runGrid(cells: Cell[], o: RunGridOptions): Promise<RunSummary> {
  const cellsDir = join(o.out, 'cells');
  mkdirSync(cellsDir, { recursive: true });
  writeJsonAtomic(join(o.out, 'run.json'), { ...o.meta, config: o.config });
  const dense = knownDenseTop1(cellsDir);
  const summary: RunSummary = { ran: [], skipped: [], reused: [], failed: [], cells: [], tables: [], plots: [] };
  const reusable = finishedBySpec(o.reuse ?? []);
  const todo: Cell[] = [];
  for (const c of cells) {
    const resultFile = join(cellsDir, c.key, 'result.json');
    if (o.resume === false || !existsSync(resultFile)) {
      const from = reusable.get(canonical(ownSpec(c.spec)));
      if (!from) {
        todo.push(c);
        continue;
      }
      copyCell(from, join(cellsDir, c.key), metaOf(c, o.meta.name), c.spec);
      dense.set(denseKey(c.spec), readJsonFile<CellResult>(resultFile, c.key).denseTop1);
      summary.reused.push(c.key);
      continue;
    }
    const r = readJsonFile<CellResult>(resultFile, c.key);
    dense.set(denseKey(c.spec), r.denseTop1);
    summary.skipped.push(c.key);
    if (canonical(applicableConfig(r.config)) !== canonical(applicableConfig(c.spec.prune))) {
      o.progress.log(`warning: ${c.key} finished earlier with other options (e.g. a --smoke run); delete ${join(cellsDir, c.key)} to rerun it`);
    }
  }
  if (summary.skipped.length) o.progress.log(`${summary.skipped.length} of ${cells.length} cells already finished in ${cellsDir}: skipped`);
  if (summary.reused.length) o.progress.log(`${summary.reused.length} cells finished with the same spec in ${(o.reuse ?? []).join(', ')}: copied, not run (${summary.reused.join(', ')})`);
  // the FCPTS and erk-kd cells on one model and calibration set run its teacher on each view once between them
  const teacherCaches = new Map<string, TeacherCache>();
  for (const [i, c] of todo.entries()) {
    const dir = join(cellsDir, c.key);
    mkdirSync(dir, { recursive: true });
    rmSync(join(dir, 'error.json'), { force: true });
    rmSync(join(dir, 'result.json'), { force: true });
    const meta = metaOf(c, o.meta.name);
    writeJsonAtomic(join(dir, 'cell.json'), { ...meta, spec: c.spec });
    const m = registry.hasMethod(c.spec.prune.method) ? registry.method(c.spec.prune.method) : null;
    o.progress.startCell(i + 1, todo.length, c.key, m?.iterations ? m.iterations(applicableConfig(c.spec.prune)) : null);
    const known = dense.get(denseKey(c.spec));
    try {
      const r = await runCell(known === undefined ? c.spec : { ...c.spec, denseTop1: known }, {
        out: dir,
        commit: o.commit,
        version: o.version,
        plugins: o.plugins,
        teacherCaches,
        onStep: (s) => o.progress.step(s),
        onEval: (done, total) => o.progress.evaluating(done, total),
        log: (l) => o.progress.log(`${c.key}: ${l}`),
      });
      dense.set(denseKey(c.spec), r.denseTop1);
      summary.ran.push(c.key);
      o.progress.endCell();
      o.progress.log(`${c.key}: top-1 ${r.top1.toFixed(2)}% (dense ${r.denseTop1.toFixed(2)}%), sparsity ${(100 * r.achievedSparsity).toFixed(2)}%, ${r.seconds} s`);
    } catch (e) {
      const err = e as Error;
      const message = `${err.name === 'Error' ? '' : `${err.name}: `}${err.message.split('\n')[0]}`;
      writeJsonAtomic(join(dir, 'error.json'), { key: c.key, error: message, stack: err.stack ?? null, time: new Date().toISOString() });
      summary.failed.push({ key: c.key, error: message });
      o.progress.endCell();
      o.progress.log(`${c.key}: FAILED: ${message}`);
    }
    writeTables(o.out, o.meta, gatherCells([o.out]));
  }
  o.progress.stop();
  summary.cells = gatherCells([o.out]);
  Object.assign(summary, await tabulate(o.out, o.meta, summary.cells));
  return summary;
}
