// SVG plots of a run, from the gathered cell records: top-1 vs target sparsity (one line per method, mean +- std
// error bars and the single seeds where a cell has several, the dense model as a dashed rule), the per-layer
// sparsity allocation of every method at one target sparsity, and the FCPTS curves from history.json (reconstruction
// and control loss on log scales, global sparsity, learning rate; one panel each). Value axes are fitted to the data
// (min/max plus a small margin, not 0-100); past 6 series, lines differ in point shape and dash as well as colour.
// Charts are Vega-Lite specs compiled and rendered headless by vega's View.toSVG() (renderer 'none': no canvas, no
// browser) and written with nn/io/atomic.ts (temporary file, fsync, rename).

import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { writeAtomic } from '../../nn/io/atomic.js';
import { mean, readHistory, rowLabel, std, type CellRecord } from './results.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const FONT = { config: { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, labelLimit: 260, symbolOpacity: 1 }, title: { subtitleFontSize: 11, subtitleColor: '#444' } } };

/** More series than this: point shapes and dashes join the colours (colours alone are hard to tell apart). */
export const MANY_SERIES = 6;
const SHAPES = ['circle', 'square', 'triangle-up', 'diamond', 'cross', 'triangle-down', 'triangle-right', 'triangle-left'];
const DASHES = [[1, 0], [6, 3], [2, 2], [8, 3, 2, 3], [12, 4], [3, 5], [8, 2, 2, 2, 2, 2], [4, 2]];
const cycle = <T>(xs: T[], n: number): T[] => Array.from({ length: n }, (_, k) => xs[k % xs.length]);
const scheme = (n: number) => (n <= 10 ? 'category10' : 'tableau20');

/**
 * A value axis' domain fitted to the data: [min, max] widened by `margin` of the span on each side (an absolute
 * `minPad` when the span is tiny), then clamped to `bounds` (top-1 and sparsity cannot leave 0-100).
 */
export function fittedDomain(values: readonly number[], o: { margin?: number; minPad?: number; bounds?: [number, number] } = {}): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return o.bounds ?? [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  const pad = Math.max((hi - lo) * (o.margin ?? 0.06), o.minPad ?? Math.max(Math.abs(hi), 1) * 1e-3);
  lo -= pad;
  hi += pad;
  if (o.bounds) {
    lo = Math.max(lo, o.bounds[0]);
    hi = Math.min(hi, o.bounds[1]);
  }
  return [lo, hi];
}

/** A log axis' domain: the positive values' range, widened by a factor of `pad` each way. */
export function logDomain(values: readonly number[], pad = 1.25): [number, number] | null {
  const pos = values.filter((v) => Number.isFinite(v) && v > 0);
  if (!pos.length) return null;
  return [Math.min(...pos) / pad, Math.max(...pos) * pad];
}

/** Quantitative scale for a fitted value axis. */
const fitted = (domain: [number, number]) => ({ domain, zero: false, nice: false });

/**
 * Colour per series (category10, tableau20 past 10); past MANY_SERIES also a point shape and, unless the caller
 * uses the dash for something else, a dash per series. Shape and dash share the colour's legend.
 */
function seriesChannels(field: string, domain: string[], title: string, o: { dash?: boolean; shape?: boolean } = {}) {
  const many = domain.length > MANY_SERIES;
  return {
    color: { field, type: 'nominal', title, scale: { scheme: scheme(domain.length), domain } },
    ...(many && o.shape !== false ? { shape: { field, type: 'nominal', title, scale: { domain, range: cycle(SHAPES, domain.length) } } } : {}),
    ...(many && o.dash !== false ? { strokeDash: { field, type: 'nominal', title, scale: { domain, range: cycle(DASHES, domain.length) } } } : {}),
  } as const;
}

const BNRECAL = '+bnrecal';
const baseOf = (label: string) => label.replace(BNRECAL, '');
const variantOf = (label: string) => (label.includes(BNRECAL) ? 'BN re-calibrated' : 'as pruned');

/** Render a Vega-Lite spec to SVG text (vega is imported on first use: it costs other commands 0.3 s to load). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [{ compile }, { View, parse }] = await Promise.all([import('vega-lite'), import('vega')]);
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The target sparsity the allocation and curve plots show: the config's choice, else 0.9 if present, else the highest. */
export function plotSparsity(cells: CellRecord[], wanted?: number): number | null {
  const have = [...new Set(cells.filter((c) => c.result).map((c) => c.sparsity))].sort((a, b) => a - b);
  if (!have.length) return null;
  if (wanted !== undefined && have.includes(wanted)) return wanted;
  return have.includes(0.9) ? 0.9 : have[have.length - 1];
}

/** One plotted point of the top-1 chart: a (row, target sparsity) cell over its finished seeds. */
export interface Top1Point {
  method: string;
  base: string;
  variant: string;
  sparsity: number;
  top1: number;
  std: number;
  n: number;
  lo: number;
  hi: number;
  seeds: number[];
}

/** Finished cells grouped as the tables group them (row label x target sparsity): mean, std (n - 1) and n of top-1. */
export function top1Points(cells: CellRecord[]): Top1Point[] {
  const groups = new Map<string, { method: string; sparsity: number; seeds: number[] }>();
  for (const c of cells) {
    if (!c.result) continue;
    const k = JSON.stringify([rowLabel(c), c.sparsity]);
    const g = groups.get(k) ?? { method: rowLabel(c), sparsity: c.sparsity, seeds: [] };
    g.seeds.push(c.result.top1);
    groups.set(k, g);
  }
  return [...groups.values()].map(({ method, sparsity, seeds }) => {
    const m = mean(seeds);
    const s = std(seeds);
    return { method, base: baseOf(method), variant: variantOf(method), sparsity: 100 * sparsity, top1: m, std: s, n: seeds.length, lo: m - s, hi: m + s, seeds };
  });
}

const denseRule = (dense: number, channel: 'x' | 'y') => ({
  data: { values: [{ dense }] },
  mark: { type: 'rule' as const, strokeDash: [6, 4], color: 'black' },
  encoding: { [channel]: { field: 'dense', type: 'quantitative' as const } },
});

export function top1Spec(cells: CellRecord[]): TopLevelSpec {
  const points = top1Points(cells);
  const done = cells.filter((c) => c.result);
  const dense = done.length ? done[0].result!.denseTop1 : null;
  const labels = [...new Set(points.map((v) => v.method))];
  const sparsities = [...new Set(points.map((v) => v.sparsity))].sort((a, b) => a - b);
  const seeded = points.some((p) => p.n > 1);
  const yDomain = fittedDomain([...points.flatMap((p) => [p.lo, p.hi, ...p.seeds]), ...(dense !== null ? [dense] : [])], { bounds: [0, 100], minPad: 0.05 });
  if (sparsities.length === 1) return top1Dots(points, labels, dense, yDomain);
  const bnrecal = labels.some((l) => l.includes(BNRECAL));
  // with +bnrecal rows a method keeps its colour and shape, and the dash tells the two variants apart
  const bases = [...new Set(points.map((p) => p.base))];
  const style = bnrecal
    ? { ...seriesChannels('base', bases, 'method', { dash: false }), strokeDash: { field: 'variant', type: 'nominal', title: 'variant', scale: { domain: ['as pruned', 'BN re-calibrated'], range: [[1, 0], [5, 3]] }, legend: { symbolStrokeColor: '#333', symbolStrokeWidth: 2, symbolSize: 400 } } }
    : seriesChannels('method', labels, 'method');
  const colourOnly = { color: style.color, ...('shape' in style ? { shape: style.shape } : {}) };
  // cells with several seeds: points dodged sideways (by up to 1.5% of the x span) so their error bars do not overlap
  const step = seeded && labels.length > 1 ? (0.03 * (sparsities[sparsities.length - 1] - sparsities[0])) / (labels.length - 1) : 0;
  const values = points.map((p) => ({ ...p, x: p.sparsity + step * (labels.indexOf(p.method) - (labels.length - 1) / 2) }));
  const seedDots = values.flatMap((p) => (p.n > 1 ? p.seeds.map((top1) => ({ method: p.method, base: p.base, variant: p.variant, x: p.x, top1 })) : []));
  const x = { field: 'x', type: 'quantitative', title: 'target sparsity (%)', scale: { zero: false, padding: 20 }, axis: { format: '.4~r', values: sparsities } } as const;
  const y = { field: 'top1', type: 'quantitative', title: 'top-1 (%)', scale: fitted(yDomain) } as const;
  const n = [...new Set(points.filter((p) => p.n > 1).map((p) => p.n))];
  const subtitle = [
    ...(dense !== null ? [`dense model ${dense.toFixed(2)}%: black dashed rule`] : []),
    ...(seeded ? [`bars: mean ± std over n = ${n.join(', ')} seeds; faint dots: single seeds; nudged sideways to stay apart`] : []),
    ...(bnrecal ? ['dashed lines: BN re-calibrated'] : []),
  ];
  return {
    $schema: SCHEMA,
    title: { text: 'Top-1 vs target sparsity', anchor: 'start', ...(subtitle.length ? { subtitle } : {}) },
    width: 560,
    height: 360,
    layer: [
      ...(dense !== null ? [denseRule(dense, 'y')] : []),
      ...(seeded
        ? [
            { data: { values: seedDots }, mark: { type: 'point', filled: true, size: 22, opacity: 0.35 }, encoding: { x, y, ...colourOnly } },
            { data: { values: values.filter((p) => p.n > 1) }, mark: { type: 'errorbar', ticks: { width: 6 }, thickness: 1.5 }, encoding: { x, y: { ...y, field: 'lo', title: 'top-1 (%)' }, y2: { field: 'hi' }, color: style.color } },
          ]
        : []),
      // lines and points as two layers: the dash legend then draws strokes (a line's points would fill it empty)
      { data: { values }, mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y, color: style.color, ...('strokeDash' in style ? { strokeDash: style.strokeDash } : {}) } },
      { data: { values }, mark: { type: 'point', size: 45, filled: true, opacity: 1 }, encoding: { x, y, ...colourOnly } },
    ],
    ...FONT,
  } as TopLevelSpec;
}

/** One target sparsity: a dot per method with its mean +- std bar and value (bars from 0 would hide the differences). */
function top1Dots(points: Top1Point[], labels: string[], dense: number | null, domain: [number, number]): TopLevelSpec {
  const y = { field: 'method', type: 'nominal', title: null, sort: labels } as const;
  const x = { field: 'top1', type: 'quantitative', title: 'top-1 (%)', scale: fitted(domain) } as const;
  const color = { field: 'method', type: 'nominal', legend: null, scale: { scheme: scheme(labels.length), domain: labels } } as const;
  const seeded = points.filter((p) => p.n > 1);
  const label = (p: Top1Point) => (p.n > 1 ? `${p.top1.toFixed(2)} ± ${p.std.toFixed(2)} (n=${p.n})` : p.top1.toFixed(2));
  const subtitle = [...(dense !== null ? [`dense model ${dense.toFixed(2)}%: dashed rule`] : []), ...(seeded.length ? ['mean ± std over seeds'] : [])];
  return {
    $schema: SCHEMA,
    title: { text: `Top-1 at ${points[0].sparsity.toFixed(4).replace(/\.?0+$/, '')}% target sparsity`, ...(subtitle.length ? { subtitle } : {}) },
    width: 420,
    height: { step: 20 },
    layer: [
      ...(dense !== null ? [denseRule(dense, 'x')] : []),
      ...(seeded.length ? [{ data: { values: seeded }, mark: { type: 'errorbar', ticks: { height: 6 } }, encoding: { y, x: { ...x, field: 'lo' }, x2: { field: 'hi' }, color } }] : []),
      { data: { values: points }, mark: { type: 'point', filled: true, size: 60, opacity: 1 }, encoding: { y, x, color } },
      { data: { values: points.map((p) => ({ ...p, label: label(p) })) }, mark: { type: 'text', align: 'left', dx: 8, dy: -7, fontSize: 10 }, encoding: { y, x, text: { field: 'label' } } },
    ],
    ...FONT,
  } as TopLevelSpec;
}

export function allocationSpec(cells: CellRecord[], sparsity: number): TopLevelSpec {
  const seen = new Set<string>();
  const values: Array<{ method: string; layer: string; index: number; sparsity: number }> = [];
  const byAllocation = new Map<string, string[]>();
  for (const c of cells) {
    if (!c.result || c.sparsity !== sparsity || seen.has(rowLabel(c)) || c.method.endsWith(BNRECAL)) continue;
    seen.add(rowLabel(c));
    c.result.layers.forEach((l, index) => values.push({ method: rowLabel(c), layer: `${index} ${l.name.replace(/\.weight$/, '')}`, index, sparsity: 100 * l.sparsity }));
    const k = JSON.stringify(c.result.layers.map((l) => l.sparsity.toFixed(6)));
    byAllocation.set(k, [...(byAllocation.get(k) ?? []), rowLabel(c)]);
  }
  // methods that chose the very same allocation draw one line over the other: say so
  const same = [...byAllocation.values()].filter((g) => g.length > 1).map((g) => g.join(' = '));
  const nLayers = new Set(values.map((v) => v.index)).size;
  return {
    $schema: SCHEMA,
    title: {
      text: `Per-layer sparsity at ${+(100 * sparsity).toFixed(2)}% target`,
      anchor: 'start',
      subtitle: [`layers in network order; first seed of each method (+bnrecal rows share their method's allocation)`, ...(same.length ? [`identical allocations, drawn over each other: ${same.join('; ')}`] : [])],
    },
    width: Math.max(480, 22 * nLayers),
    height: 340,
    data: { values },
    mark: { type: 'line', point: { size: 30, filled: true }, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'layer', type: 'ordinal', sort: { field: 'index' }, title: null, axis: { labelAngle: -50, labelFontSize: 9, labelLimit: 220 } },
      y: { field: 'sparsity', type: 'quantitative', title: 'layer sparsity (%)', scale: fitted(fittedDomain(values.map((v) => v.sparsity), { bounds: [0, 100], minPad: 0.5 })) },
      ...seriesChannels('method', [...seen], 'method'),
    },
    ...FONT,
  } as TopLevelSpec;
}

/** FCPTS-style cells (a history with a control term) at the chosen sparsity, first seed of each row. */
export function curvesSpec(cells: CellRecord[], sparsity: number): TopLevelSpec | null {
  type Row = { run: string; step: number; rec: number | null; control: number | null; sparsity: number; lr: number };
  const values: Row[] = [];
  const runs: string[] = [];
  let recName = '';
  for (const c of cells) {
    if (!c.result || c.sparsity !== sparsity || runs.includes(rowLabel(c))) continue;
    const h = readHistory(c);
    if (!h.length || !('control' in h[0].terms)) continue;
    runs.push(rowLabel(c));
    const every = Math.max(1, Math.ceil(h.length / 400));
    for (const s of h.filter((_, i) => i % every === 0 || i === h.length - 1)) {
      const rec = Object.entries(s.terms).filter(([k]) => k !== 'control');
      recName ||= rec.map(([k]) => k).join(' + ');
      const r = rec.reduce((a, [, v]) => a + v, 0);
      // log scales: a zero (or negative) value is left out, breaking the line there
      values.push({ run: rowLabel(c), step: s.step + 1, rec: r > 0 ? r : null, control: s.terms.control > 0 ? s.terms.control : null, sparsity: 100 * s.sparsity, lr: s.lr });
    }
  }
  if (!values.length) return null;
  const style = seriesChannels('run', runs, 'cell', { shape: false });
  const last = Math.max(...values.map((v) => v.step));
  const noControl = runs.filter((r) => values.every((v) => v.run !== r || v.control === null));
  const panels: Array<{ field: keyof Row; title: string; subtitle?: string; scale: object; format?: string }> = [];
  const logPanel = (field: 'rec' | 'control', title: string, subtitle?: string) => {
    const d = logDomain(values.map((v) => v[field] ?? 0));
    // decimals while they stay short, powers of ten past three decades or below 0.001
    if (d) panels.push({ field, title, subtitle, scale: { type: 'log', domain: d, nice: false }, format: d[0] < 1e-3 || d[1] / d[0] > 1e3 ? '.0e' : '~g' });
  };
  logPanel('rec', `reconstruction loss (${recName}), log scale`);
  logPanel('control', 'control loss, log scale', noControl.length ? `0 throughout, not drawn: ${noControl.join(', ')}` : undefined);
  panels.push({ field: 'sparsity', title: 'global sparsity of the masks (%)', scale: fitted(fittedDomain(values.map((v) => v.sparsity), { bounds: [0, 100], minPad: 0.01 })) });
  panels.push({ field: 'lr', title: 'learning rate', scale: fitted(fittedDomain(values.map((v) => v.lr), { minPad: 1e-9 })), format: '~g' });
  return {
    $schema: SCHEMA,
    title: { text: `FCPTS curves at ${+(100 * sparsity).toFixed(2)}% target`, anchor: 'start', subtitle: 'first seed of each row; losses on log scales (zero values left out)' },
    data: { values },
    vconcat: panels.map((p, k) => ({
      title: { text: p.title, ...(p.subtitle ? { subtitle: p.subtitle } : {}), anchor: 'start', frame: 'group', fontSize: 12 },
      width: 560,
      height: 140,
      mark: { type: 'line', strokeWidth: 1.3 },
      encoding: {
        // the iteration axis is titled once, under the last panel
        x: { field: 'step', type: 'quantitative', title: k === panels.length - 1 ? 'iteration' : null, scale: { domain: [0, last], nice: false } },
        y: { field: p.field, type: 'quantitative', title: null, scale: p.scale, ...(p.format ? { axis: { format: p.format } } : {}) },
        ...style,
      },
    })),
    resolve: { scale: { color: 'shared' } },
    ...FONT,
  } as unknown as TopLevelSpec;
}

/** Write every plot that has data into `out` (atomically); returns the file names (relative to out). */
export async function writePlots(out: string, cells: CellRecord[], wanted?: number): Promise<string[]> {
  const files: string[] = [];
  const put = async (name: string, spec: TopLevelSpec | null) => {
    if (!spec) return;
    writeAtomic(join(out, name), await renderSvg(spec));
    files.push(name);
  };
  if (!cells.some((c) => c.result)) return files;
  await put('top1-vs-sparsity.svg', top1Spec(cells));
  const s = plotSparsity(cells, wanted);
  if (s !== null) {
    await put(`allocation-s${s}.svg`, allocationSpec(cells, s));
    await put(`fcpts-curves-s${s}.svg`, curvesSpec(cells, s));
  }
  return files;
}
