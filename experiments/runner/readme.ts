// Generated blocks of markdown files (README.md): every number a README shows comes from a committed file, and
// `ptslab readme` rewrites the blocks from those files (`--check` fails when a block is stale; a test runs it).
//
//   <!-- ptslab:results experiments/results/fmnist-resnet20 -->   top-1 table of a committed run folder
//   ...generated...                                                 (its results.json)
//   <!-- /ptslab:results -->
//   <!-- ptslab:models -->                                          the bundled models: accuracy, goal, state
//   ...generated...                                                 (experiments/models/<name>/record.json,
//   <!-- /ptslab:models -->                                          or train/record.json while training)
//   <!-- ptslab:bench experiments/results/bench/<run>.jsonl -->     whole-model rows of a committed
//   ...generated...                                                 `npm run bench -- --json` run against
//   <!-- /ptslab:bench -->                                          PyTorch, and the speed targets met or not
//   <!-- ptslab:gpucheck experiments/results/bench/<run>.json -->   a committed `scripts/gpu-check.sh --out` run:
//   ...generated...                                                 gpu.js WebGL against the cpu backend per case,
//   <!-- /ptslab:gpucheck -->                                       the renderer, the commit and the settings
//   <!-- ptslab:browser experiments/results/bench/<run>.txt -->     a committed `npm run test:browser` log: each
//   ...generated...                                                 page run (load time, seconds, engines, top-1),
//   <!-- /ptslab:browser -->                                        Node's run, and the checks passed
//
// Paths in a marker are relative to the repository root. Text outside the blocks is never touched.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateTargets, formatTarget } from '../../scripts/bench-peer.js';
import { readJsonFile, readJsonIfExists } from '../json-file.js';
import { listBundledModels } from '../models/index.js';
import { distinctOf, shortCommit, statTable, type CellRecord, type RunMeta } from './results.js';

const BLOCK = /<!-- ptslab:(results|models|bench|gpucheck|browser)([^>]*?)-->\n([\s\S]*?)<!-- \/ptslab:\1 -->/g;


/** Break `text` at spaces into lines of at most `width` characters (a longer word keeps a line of its own). */
export function wrapWords(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) (lines.push(line), (line = w));
    else line = line ? `${line} ${w}` : w;
  }
  return [...lines, line].join('\n');
}

/** The top-1 table of a committed run folder, with where it came from and how exact the sparsities are. */
export function resultsBlock(root: string, dir: string): string {
  const file = join(root, dir, 'results.json');
  const run = readJsonFile<RunMeta & { cells: Omit<CellRecord, 'dir'>[] }>(file, `ptslab:results ${dir}`);
  const done = run.cells.filter((c) => c.result);
  const lines: string[] = [];
  if (!done.length) {
    lines.push(`No finished cell yet in \`${dir}\` (${run.cells.length} cells listed).`);
    return lines.join('\n');
  }
  const r0 = done[0].result!;
  const dense = distinctOf(done, (r) => `${r.denseTop1.toFixed(2)}%`);
  const evalImages = distinctOf(done, (r) => r.evalImages);
  const backends = distinctOf(done, (r) => r.backend);
  const commits = distinctOf(done, shortCommit);
  // how far each cell's zero count is from round(S* x N): the exactness claim, measured from the saved weights
  const off = Math.max(...done.map((c) => Math.abs(c.result!.zeroParams - Math.round(c.result!.targetSparsity * c.result!.prunableParams))));
  lines.push(
    // wrapped like the prose around it (markdown joins the lines into one paragraph)
    wrapWords(`Top-1 (%) of \`${r0.model}\` (${r0.arch}, ${r0.dataset}) on ${evalImages} held-out images; dense ${dense}. ` +
      `${done.length} cells finished${run.cells.length > done.length ? ` (${run.cells.length - done.length} more started or failed)` : ''}` +
      `${run.smoke ? ' (smoke run: not a result)' : ''}; backend ${backends}; ` +
      `commit ${commits}. Zero weights counted from each saved model ${off === 0 ? 'equal' : `are at most ${off} from`} ` +
      `round(target x ${r0.prunableParams.toLocaleString('en-US')}). From \`${dir}/results.json\` (\`${dir}/results.md\` has ` +
      `sparsity and seconds).`, 118),
    '',
    statTable(run.cells, (r) => r.top1, 2),
  );
  return lines.join('\n');
}

interface TrainRecord {
  iterations?: number;
  totalIterations?: number;
  epochs?: Array<{ epoch: number; top1: number }>;
  config?: { epochs?: number };
}

/** The bundled models: held-out top-1 against the goal, or the state of the training run. */
export function modelsBlock(root: string): string {
  const lines = ['| name | architecture | data | goal (top-1) | held-out top-1 | state |', '| --- | --- | --- | ---: | ---: | --- |'];
  for (const m of listBundledModels()) {
    const goal = `>= ${m.goalTop1}%`;
    let top1 = '–', state: string;
    if (m.trained && m.top1 !== null) {
      top1 = `${m.top1.toFixed(2)}%`;
      state = `trained (${m.record?.final?.count ?? '?'} images; goal ${m.top1 >= m.goalTop1 ? 'met' : 'not met'})`;
    } else {
      const trainRecord = join(root, 'experiments', 'models', m.name, 'train', 'record.json');
      const r = readJsonIfExists<TrainRecord>(trainRecord, `ptslab:models ${m.name}`);
      if (r?.iterations !== undefined && r.totalIterations) {
        const last = r.epochs?.at(-1);
        // epoch granularity, so the block changes only when an epoch ends
        state = last ? `training: ${last.epoch} of ${r.config?.epochs ?? '?'} epochs done (${last.top1.toFixed(2)}% after epoch ${last.epoch})` : 'training: in its first epoch';
      } else state = 'not started';
    }
    lines.push(`| \`${m.name}\` | ${m.arch}${m.widthMult ? ` x${m.widthMult}` : ''} | ${m.dataset} | ${goal} | ${top1} | ${state} |`);
  }
  return lines.join('\n');
}

interface BenchRow { case: string; shape: string; engine: string; gflops: number; ms: number }

/** The kernel cases a bench block shows (the 3x3 conv the cpu backend was built around, and a conv-sized GEMM). */
const KERNEL_CASES = ['conv3x3-256-56-fwd', 'conv3x3-256-56-fwdbwd', 'gemm-256x2304x3136', 'r20-3x3-16-28-fwdbwd'];
const KERNEL_ENGINES = ['ptslab-cpu', 'tfjs-wasm', 'tfjs-cpu'];

/**
 * A committed bench run in brief: the headline kernel cases against the tfjs peers (GFLOP/s), the whole-model cases
 * (every case with a `torch` row: ms per engine, each ptslab engine's time over PyTorch's), then the targets of
 * scripts/bench-peer.ts judged on the same rows.
 */
export function benchBlock(root: string, file: string): string {
  const path = join(root, file);
  let rows: BenchRow[];
  try {
    rows = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as BenchRow);
  } catch (e) {
    throw new Error(`ptslab:bench ${file}: cannot read a JSON-lines bench run (${(e as Error).message})`);
  }
  const cases = [...new Set(rows.filter((r) => r.engine === 'torch').map((r) => r.case))];
  if (!cases.length) return `No whole-model case with a \`torch\` row in \`${file}\`.`;
  const engines = ['ptslab-cpu', 'ptslab-cpu-sparse', 'torch'];
  const row = (c: string, e: string) => rows.find((r) => r.case === c && r.engine === e);
  const ms = (c: string, e: string) => row(c, e)?.ms;
  const fmt = (v: number | undefined) => (v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const lines = [
    `From \`${file}\`. Headline kernels (GFLOP/s, medians; a \`*\` marks a slow engine timed on channels / 8):`,
    '',
    `| case | ${KERNEL_ENGINES.join(' | ')} | ptslab-cpu / tfjs-wasm | ptslab-cpu / tfjs-cpu |`,
    `| --- | ${KERNEL_ENGINES.map(() => '---:').join(' | ')} | ---: | ---: |`,
  ];
  for (const c of KERNEL_CASES.filter((c) => row(c, 'ptslab-cpu'))) {
    const g = (e: string) => row(c, e)?.gflops;
    const cell = (e: string) => (g(e) === undefined ? '–' : `${g(e)!.toPrecision(3)}${row(c, e)!.shape.includes('(') ? '*' : ''}`);
    const rate = (e: string) => (g(e) === undefined ? '–' : `${(g('ptslab-cpu')! / g(e)!).toFixed(2)}x`);
    lines.push(`| ${c} | ${KERNEL_ENGINES.map(cell).join(' | ')} | ${rate('tfjs-wasm')} | ${rate('tfjs-cpu')} |`);
  }
  lines.push(
    '',
    'Whole models (ms per step or forward, medians; ratio = ptslab time / PyTorch time, in the same run):',
    '',
    `| case | shape | ${engines.join(' ms | ')} ms | ptslab-cpu / torch | ptslab-cpu-sparse / torch |`,
    `| --- | --- | ${engines.map(() => '---:').join(' | ')} | ---: | ---: |`,
  );
  for (const c of cases) {
    const t = ms(c, 'torch')!;
    const ratio = (e: string) => (ms(c, e) === undefined ? '–' : `${(ms(c, e)! / t).toFixed(2)}x`);
    const shape = rows.find((r) => r.case === c)!.shape;
    lines.push(`| ${c} | ${shape} | ${engines.map((e) => fmt(ms(c, e))).join(' | ')} | ${ratio('ptslab-cpu')} | ${ratio('ptslab-cpu-sparse')} |`);
  }
  lines.push('', 'Targets (issue 23), judged on these rows:', '', ...evaluateTargets(rows).map((r) => `- ${formatTarget(r)}`));
  return lines.join('\n');
}

interface GpuCheckRecord {
  when: string;
  commit: string | null;
  settings: { reps: number; warmup: number; fcptsBatch: number; fcptsSteps: number; fcptsWarmup: number };
  browser: string;
  renderer: { renderer: string; version: string } | null;
  attempts: { angle: string; args: string[]; ok: boolean }[];
  rows: BenchRow[];
}

/** A committed GPU check (web/gpu-check.ts --out): per case, gpu.js WebGL and the cpu backend side by side. */
export function gpuCheckBlock(root: string, file: string): string {
  const d = readJsonFile<GpuCheckRecord>(join(root, file), `ptslab:gpucheck ${file}`);
  const gl = d.rows.filter((r) => r.engine.startsWith('ptslab-gpujs'));
  if (!gl.length) throw new Error(`ptslab:gpucheck ${file}: no gpu.js rows`);
  const cpu = (c: string) => d.rows.find((r) => r.case === c && r.engine === 'ptslab-cpu');
  const rate = (r: BenchRow | undefined) => (r?.gflops == null ? '–' : r.gflops.toPrecision(3));
  const ran = d.attempts.find((a) => a.ok);
  const s = d.settings;
  const lines = [
    `From \`${file}\` (commit ${(d.commit ?? 'unknown').slice(0, 7)}, ${d.when.slice(0, 10)}): Chromium ${d.browser} with \`${ran?.args.join(' ') ?? '?'}\`, WebGL renderer ${d.renderer?.renderer ?? '?'}; ${s.warmup} warm-up + ${s.reps} timed runs per kernel case, FCPTS at batch ${s.fcptsBatch} with ${s.fcptsWarmup} + ${s.fcptsSteps} iterations (medians).`,
    '',
    '| case | shape | gpu.js WebGL ms | GFLOP/s | cpu ms | GFLOP/s | WebGL time / cpu time |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of gl) {
    const c = cpu(r.case);
    lines.push(`| ${r.case} | ${r.shape} | ${r.ms} | ${rate(r)} | ${c?.ms ?? '–'} | ${rate(c)} | ${c ? `${(r.ms / c.ms).toPrecision(3)}x` : '–'} |`);
  }
  return wrapWords(lines[0], 118) + lines.slice(1).map((l) => `\n${l}`).join('');
}

/**
 * A committed `npm run test:browser` log: its header line, each page run's load and result lines (`page ...`), the
 * Node run's line, and how many checks passed and failed.
 */
export function browserBlock(root: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(join(root, file), 'utf8');
  } catch (e) {
    throw new Error(`ptslab:browser ${file}: cannot read the test:browser log (${(e as Error).message})`);
  }
  const lines = text.split('\n');
  const ok = lines.filter((l) => l.startsWith('ok ')).length, failed = lines.filter((l) => l.startsWith('FAIL ')).length;
  const runs = lines.filter((l) => /^page .*: (loaded in|[\d.]+ s on)/.test(l) || l.startsWith('node (cpu backend)'));
  if (!runs.length) throw new Error(`ptslab:browser ${file}: no page runs in the log`);
  const head = lines[0].replace(/^# /, '');
  return [wrapWords(`From \`${file}\`: ${head}. ${ok} checks passed, ${failed} failed.`, 118), '', ...runs.map((l) => `- \`${l}\``)].join('\n');
}

/** Each block kind's renderer, from the repository root and the marker's argument. */
const BLOCKS: Record<string, (root: string, arg: string) => string> = {
  results: resultsBlock, models: modelsBlock, bench: benchBlock, gpucheck: gpuCheckBlock, browser: browserBlock,
};

/** The text with every generated block rewritten; `stale` lists the blocks whose content changed. */
export function renderGenerated(text: string, root: string): { text: string; stale: string[] } {
  const stale: string[] = [];
  const out = text.replace(BLOCK, (whole, kind: string, arg: string, body: string) => {
    const a = arg.trim();
    const fresh = `${BLOCKS[kind](root, a)}\n`;
    if (fresh !== body) stale.push(`ptslab:${kind}${a ? ` ${a}` : ''}`);
    return `<!-- ptslab:${kind}${arg}-->\n${fresh}<!-- /ptslab:${kind} -->`;
  });
  return { text: out, stale };
}
