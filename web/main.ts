// The page: FCPTS and two baselines (ERK and LAMP, each with BatchNorm re-calibration) on the bundled fmnist-resnet20
// in the browser tab, through web/run.ts (the CLI's prune() and result.json). It runs on gpu.js WebGL in the tab when
// the browser gives a WebGL context, otherwise on the wasm cpu backend in a Web Worker (web/worker.ts), and says
// which. Live charts show FCPTS's loss terms, global sparsity and per-layer sparsity; each finished method gets a row
// with its top-1 on the held-out subset and its result.json to download.
//
// Recovery: each finished cell is kept in sessionStorage under the run's parameters, so a reload (or a crash of the
// tab's renderer) resumes with the cells not yet run. On WebGL the run yields to the page after every event through
// a MessageChannel (core/event-loop.ts), which background tabs do not throttle (setTimeout would be slowed to once a second or less);
// the worker is never throttled. If the WebGL context is lost (GPU reset, memory pressure) the cell that was running
// is dropped (a lost context reads back zeros, so its numbers cannot be trusted) and the run goes on from the last
// finished cell on the worker.
//
// URL parameters: model, iters, sparsity, batch (default 16), methods (comma list), engine=auto|webgl|worker, auto=1 (start
// at once), loseContextAt=N (lose the WebGL context at FCPTS iteration N through WEBGL_lose_context: the browser test
// uses it), fresh=1 (forget the stored cells first).

import * as gpujs from 'gpu.js';
import { setBackend } from '../core/backend/index.js';
import { yieldToEventLoop } from '../core/event-loop.js';
import { createGpujsBackend, type GpujsBackend } from '../core/backend/gpujs/index.js';
import { provideGpujsModule } from '../core/backend/gpujs/loader.js';
import type { CellResult } from '../experiments/cell-result.js';
import type { StepLog } from '../sparsity/distill.js';
import { barChart, lineChart, type Series } from './charts.js';
import { PAGE_METHODS, PAGE_MODEL, PAGE_MODELS, pageFiles, parseImageSet, runPage, type PageEvent, type PageMethod, type PageReport, type PageRunOptions } from './run.js';

declare const PTSLAB_BUILD: { version: string; commit: string | null };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const started = performance.now();
/** Show what the run is doing, and log it with the seconds since the page loaded (the browser test prints the log). */
const status = (s: string) => {
  $('status').textContent = s;
  console.info(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${s}`);
};
const COLORS: Record<PageMethod, string> = { fcpts: '#1f77b4', erk: '#ff7f0e', lamp: '#2ca02c' };
const TERM_COLORS = ['#9467bd', '#d62728', '#8c564b', '#e377c2', '#17becf'];

async function bytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot load ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** Thrown out of the run when the WebGL context is gone. */
class ContextLost extends Error {}

/** A place to run the page's run: the tab's WebGL through gpu.js, or the cpu backend in a worker. */
interface Engine {
  readonly name: string;
  run(o: PageRunOptions, emit: (e: PageEvent) => void): Promise<PageReport>;
}

function webglEngine(): Engine | { unavailable: string } {
  provideGpujsModule(gpujs);
  const made = createGpujsBackend();
  if ('unavailable' in made) return made;
  const gb: GpujsBackend = made;
  if (!/gl/.test(gb.mode)) return { unavailable: `gpu.js would run in mode '${gb.mode}', not on the GPU` };
  const loseAt = params.has('loseContextAt') ? Number(params.get('loseContextAt')) : -1;
  return {
    name: `gpu.js ${gb.mode} in this tab`,
    run: (o, emit) => {
      setBackend(gb);
      return runPage(o, async (e) => {
        const gl = gb.glContext();
        if (e.kind === 'step' && e.log.step === loseAt) (gl?.getExtension('WEBGL_lose_context') as { loseContext(): void } | null)?.loseContext();
        // a lost context reads back zeros: nothing from it may be reported
        if (gl?.isContextLost()) throw new ContextLost(`the WebGL context was lost${e.kind === 'step' ? ` at ${e.method} iteration ${e.log.step}` : ''}`);
        emit(e);
        await yieldToEventLoop();
      });
    },
  };
}

const workerEngine: Engine = {
  name: 'the wasm cpu backend in a Web Worker',
  run: (o, emit) => new Promise<PageReport>((resolve, reject) => {
    const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    const end = (f: () => void) => {
      w.terminate();
      f();
    };
    w.onmessage = (m: MessageEvent) => {
      const d = m.data as { kind: 'event'; event: PageEvent } | { kind: 'done'; report: PageReport } | { kind: 'error'; message: string; stack?: string };
      if (d.kind === 'event') emit(d.event);
      else if (d.kind === 'done') end(() => resolve(d.report));
      else end(() => reject(Object.assign(new Error(d.message), { stack: d.stack ?? d.message })));
    };
    w.onerror = (e) => end(() => reject(new Error(`the worker failed: ${e.message}`)));
    w.postMessage({ kind: 'start', options: o });
  }),
};

/** What the page shows and keeps of a run. */
interface Shown {
  denseTop1?: number;
  evalImages?: number;
  cells: CellResult[];
  histories: Partial<Record<PageMethod, StepLog[]>>;
  layers: string[];
  /** FCPTS's per-layer sparsity in its latest iteration. */
  live: number[];
  engines: string[];
}

function draw(s: Shown, o: PageRunOptions): void {
  const h = s.histories.fcpts ?? [];
  const terms = Object.keys(h[0]?.terms ?? {});
  const lossSeries: Series[] = [
    { name: 'loss', color: '#333', points: h.map((l) => [l.step + 1, l.loss]) },
    ...terms.map((t, i) => ({ name: t, color: TERM_COLORS[i % TERM_COLORS.length], points: h.map((l) => [l.step + 1, l.terms[t]] as const) })),
  ];
  lineChart($('chart-loss'), 'FCPTS loss terms', lossSeries);
  lineChart($('chart-sparsity'), 'FCPTS global sparsity', [
    { name: 'learned', color: COLORS.fcpts, points: h.map((l) => [l.step + 1, l.sparsity]) },
    { name: 'target', color: '#999', dashed: true, points: [[1, o.sparsity], [Math.max(2, o.iters), o.sparsity]] },
  ]);
  const groups = o.methods.map((m) => {
    const cell = s.cells.find((c) => c.method === m);
    return { name: m, color: COLORS[m], values: cell ? cell.layers.map((l) => l.sparsity) : m === 'fcpts' ? s.live : [] };
  });
  barChart($('chart-layers'), 'per-layer sparsity', s.layers, groups);
  const rows = s.cells.map((c) => {
    const macs = c.macs ? `${(c.macs.pruned / 1e6).toFixed(1)} / ${(c.macs.dense / 1e6).toFixed(1)}` : '';
    return `<tr><td>${c.method}</td><td>${c.backend}</td><td>${(100 * c.achievedSparsity).toFixed(2)}%</td><td>${c.top1.toFixed(1)}%</td><td>${macs}</td><td>${c.seconds}</td><td><a download="result-${c.method}.json" href="${URL.createObjectURL(new Blob([JSON.stringify(c, null, 2)], { type: 'application/json' }))}">result.json</a></td></tr>`;
  });
  $('cells').innerHTML = rows.join('');
  $('dense').textContent = s.denseTop1 === undefined ? '' : `dense top-1 ${s.denseTop1.toFixed(1)}% on ${s.evalImages ?? s.cells[0]?.evalImages} held-out images`;
}

function readOptions(): Omit<PageRunOptions, 'weights' | 'calib' | 'test'> {
  const num = (k: string) => Number(params.get(k) ?? ($(k) as HTMLInputElement).value);
  const methods = (params.get('methods')?.split(',') ?? PAGE_METHODS.filter((m) => ($(`m-${m}`) as HTMLInputElement).checked)) as PageMethod[];
  for (const m of methods) if (!PAGE_METHODS.includes(m)) throw new Error(`methods: '${m}' is not one of ${PAGE_METHODS.join(', ')}`);
  const model = params.get('model') ?? ($('model') as HTMLSelectElement).value;
  if (!(PAGE_MODELS as readonly string[]).includes(model)) throw new Error(`model: '${model}' is not one of ${PAGE_MODELS.join(', ')}`);
  return { model, sparsity: num('sparsity'), iters: num('iters'), batchSize: Number(params.get('batch') ?? 16), methods, build: PTSLAB_BUILD, ...(params.has('evalImages') ? { evalImages: Number(params.get('evalImages')) } : {}) };
}

async function run(fresh = false): Promise<void> {
  ($('run') as HTMLButtonElement).disabled = ($('fresh') as HTMLButtonElement).disabled = true;
  try {
    const base = readOptions();
    const key = `ptslab-page:${JSON.stringify({ ...base, build: undefined })}`;
    if (fresh || params.get('fresh') === '1') sessionStorage.removeItem(key);
    const stored = JSON.parse(sessionStorage.getItem(key) ?? 'null') as Pick<Shown, 'denseTop1' | 'evalImages' | 'cells' | 'histories' | 'layers' | 'engines'> | null;
    status('loading the model and the image subsets');
    const files = pageFiles(base.model);
    const [weights, calib, test] = await Promise.all([bytes(files.weights), bytes(files.calib), bytes(files.test)]);
    const o: PageRunOptions = { ...base, weights, calib: parseImageSet(calib, files.calib), test: parseImageSet(test, files.test) };
    const shown: Shown = { cells: [], histories: {}, layers: [], live: [], engines: [], ...stored };
    if (stored?.cells.length) status(`resuming: ${stored.cells.map((c) => c.method).join(', ')} finished before`);
    const want = params.get('engine') ?? 'auto';
    let engine: Engine;
    const gl = want === 'worker' ? { unavailable: 'engine=worker asked for' } : webglEngine();
    if ('unavailable' in gl) {
      if (want === 'webgl') throw new Error(`WebGL: ${gl.unavailable}`);
      engine = workerEngine;
      $('engine').textContent = `${engine.name} (${gl.unavailable})`;
    } else {
      engine = gl;
      $('engine').textContent = engine.name;
    }
    const save = () => sessionStorage.setItem(key, JSON.stringify({ denseTop1: shown.denseTop1, evalImages: shown.evalImages, cells: shown.cells, histories: shown.histories, layers: shown.layers, engines: shown.engines }));
    let pending = false;
    const emit = (e: PageEvent) => {
      if (e.kind === 'status') status(e.text);
      else if (e.kind === 'dense') [shown.denseTop1, shown.evalImages] = [e.top1, e.evalImages];
      else if (e.kind === 'begin') {
        shown.layers = e.layers.map((l) => l.name);
        shown.histories[e.method] = [];
        if (e.method === 'fcpts') shown.live = [];
      } else if (e.kind === 'step') {
        shown.histories[e.method]!.push(e.log);
        if (e.method === 'fcpts') shown.live = e.layers;
        status(`${e.method}: iteration ${e.log.step + 1} of ${o.iters}, loss ${e.log.loss.toFixed(4)}, global sparsity ${e.log.sparsity.toFixed(4)}`);
      } else if (e.kind === 'cell') {
        shown.cells.push(e.result);
        status(`${e.result.method}: ${(100 * e.result.achievedSparsity).toFixed(2)}% sparse, top-1 ${e.result.top1.toFixed(1)}% (${e.result.seconds} s)`);
        shown.histories[e.result.method as PageMethod] = e.history;
        save();
      }
      if (e.kind === 'dense') save();
      // one redraw per frame however fast the events come
      if (!pending) {
        pending = true;
        requestAnimationFrame(() => {
          pending = false;
          draw(shown, o);
        });
      }
    };
    draw(shown, o);
    // everything finished before (a reload after the end): nothing to start
    const finished = shown.denseTop1 !== undefined && o.methods.every((m) => shown.cells.some((c) => c.method === m));
    let report: PageReport = { denseTop1: shown.denseTop1 ?? NaN, cells: o.methods.map((m) => shown.cells.find((c) => c.method === m)!) };
    if (finished) $('engine').textContent = `${shown.engines.join(' then ')} (finished before this reload)`;
    while (!finished) {
      if (shown.engines.at(-1) !== engine.name) shown.engines.push(engine.name);
      try {
        report = await engine.run({ ...o, done: shown.cells, denseTop1: shown.denseTop1 }, emit);
        break;
      } catch (e) {
        if (!(e instanceof ContextLost) || engine === workerEngine) throw e;
        $('notice').textContent = `${e.message}: the run goes on from the last finished cell on ${workerEngine.name}.`;
        engine = workerEngine;
        $('engine').textContent = `${engine.name} (after the WebGL context was lost)`;
      }
    }
    draw(shown, o);
    status(`done: ${report.cells.map((c) => `${c.method} ${c.top1.toFixed(1)}%`).join(', ')} top-1 at ${(100 * o.sparsity).toFixed(0)}% sparsity`);
    $('result').textContent = JSON.stringify({ ...report, engines: shown.engines });
  } catch (e) {
    status(`failed: ${(e as Error).message}`);
    $('error').textContent = String((e as Error).stack ?? e);
  } finally {
    ($('run') as HTMLButtonElement).disabled = ($('fresh') as HTMLButtonElement).disabled = false;
  }
}

// the model choice: every page model, the default first
($('model') as HTMLSelectElement).innerHTML = PAGE_MODELS.map((m) => `<option${m === PAGE_MODEL ? ' selected' : ''}>${m}</option>`).join('');
// URL parameters show in the form too
if (params.has('model')) ($('model') as HTMLSelectElement).value = params.get('model')!;
for (const k of ['iters', 'sparsity']) if (params.has(k)) ($(k) as HTMLInputElement).value = params.get(k)!;
if (params.has('methods')) for (const m of PAGE_METHODS) ($(`m-${m}`) as HTMLInputElement).checked = params.get('methods')!.split(',').includes(m);
$('run').addEventListener('click', () => void run());
$('fresh').addEventListener('click', () => void run(true));
if (params.get('auto') === '1') void run();
