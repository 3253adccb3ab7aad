// Progress reporting for `ptslab run` and `ptslab prune`. On a terminal: cli-progress bars, the grid (cells done of
// the selected ones, with ETA; `prune` has a grid of one) and the current cell (FCPTS / erk-kd iterations with loss
// and sparsity, it/s and ETA, then the evaluation's images); log lines (POT's layers, evaluation) are printed above
// them. Otherwise (a log file, CI, a batch job): plain timestamped lines, an iteration line every ~10%, an evaluation
// line every quarter.

import cliProgress from 'cli-progress';
import type { StepLog } from '../../sparsity/index.js';

export interface Progress {
  log(line: string): void;
  startCell(n: number, total: number, key: string, iters: number | null): void;
  step(s: StepLog): void;
  /** Evaluation progress of the current cell (images done of total). */
  evaluating(done: number, total: number): void;
  endCell(): void;
  stop(): void;
}

const stamp = () => new Date().toISOString().slice(11, 19);

export function makeProgress(totalCells: number, o: { tty?: boolean; write?: (s: string) => void } = {}): Progress {
  const write = o.write ?? ((s: string) => process.stderr.write(s));
  if (!(o.tty ?? Boolean(process.stderr.isTTY))) {
    let iters: number | null = null;
    let label = '';
    let t0 = 0;
    let tFirst = 0;
    return {
      log: (line) => write(`[${stamp()}] ${line}\n`),
      startCell(n, total, key, it) {
        iters = it;
        label = `[${n}/${total}] ${key}`;
        t0 = performance.now();
        write(`[${stamp()}] ${label}: start${it ? ` (${it} iterations)` : ''}\n`);
      },
      step(s) {
        if (!iters) return;
        if (s.step === 0) tFirst = performance.now();
        const every = Math.max(1, Math.round(iters / 10));
        if ((s.step + 1) % every !== 0 && s.step + 1 !== iters) return;
        // seconds per iteration from the first step on (loading and the dense evaluation excluded)
        const rate = s.step > 0 ? (performance.now() - tFirst) / 1000 / s.step : (performance.now() - t0) / 1000;
        const terms = Object.entries(s.terms).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
        write(`[${stamp()}] ${label}: iter ${s.step + 1}/${iters}, ${terms}, sparsity ${(100 * s.sparsity).toFixed(2)}%, ${rate.toFixed(2)} s/it (${(1 / rate).toFixed(2)} it/s), ETA ${Math.round(rate * (iters - s.step - 1))} s\n`);
      },
      evaluating(done, total) {
        // a line at each quarter of the held-out set
        const q = (x: number) => Math.floor((4 * x) / total);
        if (done === total || q(done) !== q(done - 1)) write(`[${stamp()}] ${label}: evaluated ${done}/${total} images\n`);
      },
      endCell() {},
      stop() {},
    };
  }
  const multi = new cliProgress.MultiBar(
    { clearOnComplete: false, hideCursor: true, etaBuffer: 30, format: '{name} |{bar}| {value}/{total} {unit} | {speed} | {info} | ETA {eta_formatted}' },
    cliProgress.Presets.shades_classic,
  );
  const grid = multi.create(totalCells, 0, { name: 'grid'.padEnd(28), unit: 'cells', info: '', speed: '' });
  let cell: cliProgress.SingleBar | null = null;
  let done = 0;
  let tFirst = 0;
  return {
    log: (line) => multi.log(`${line}\n`),
    startCell(n, _total, key, iters) {
      grid.update(done, { info: key });
      cell = multi.create(iters ?? 1, 0, { name: key.slice(0, 28).padEnd(28), unit: iters ? 'it' : 'step', info: iters ? '' : 'one-shot', speed: '' });
    },
    step(s) {
      if (s.step === 0) tFirst = performance.now();
      const terms = Object.entries(s.terms).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' ');
      const speed = s.step > 0 ? `${(s.step / ((performance.now() - tFirst) / 1000)).toFixed(2)} it/s` : '';
      cell?.update(s.step + 1, { info: `${terms} S ${(100 * s.sparsity).toFixed(1)}%`, speed });
    },
    evaluating(done, total) {
      if (!cell) return;
      if (cell.getTotal() !== total) cell.setTotal(total);
      cell.update(done, { unit: 'img', info: 'evaluating', speed: '' });
    },
    endCell() {
      if (cell) {
        cell.update(cell.getTotal());
        multi.remove(cell);
        cell = null;
      }
      grid.update(++done);
    },
    stop: () => multi.stop(),
  };
}
