// SVG plots of a run, from the gathered cell records: top-1 vs target sparsity (one line per method, the dense
// model as a dashed rule), the per-layer sparsity allocation of every method at one target sparsity, and the FCPTS
// curves (reconstruction loss, control loss, global sparsity per iteration, from history.json). Charts are Vega-Lite
// specs compiled and rendered headless by vega's View.toSVG() (renderer 'none': no canvas, no browser).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { readHistory, rowLabel, type CellRecord } from './results.js';

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const FONT = { config: { font: 'sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, labelLimit: 260 } } };

/** Colour by row (category10, or tableau20 past 10 rows), dashes for the +bnrecal variants when there are any. */
function colourEncoding(labels: string[], title: string) {
  const color = { field: 'method', type: 'nominal', title, scale: { scheme: labels.length <= 10 ? 'category10' : 'tableau20', domain: labels } };
  if (!labels.some((l) => l.includes('+bnrecal'))) return { color } as const;
  // no legend for the dashes (vega draws its stroke symbols empty here): the title says it
  return { color, strokeDash: { field: 'variant', type: 'nominal', legend: null, scale: { domain: ['as pruned', 'BN re-calibrated'], range: [[1, 0], [5, 3]] } } } as const;
}
const variant = (label: string) => (label.includes('+bnrecal') ? 'BN re-calibrated' : 'as pruned');

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

export function top1Spec(cells: CellRecord[]): TopLevelSpec {
  const done = cells.filter((c) => c.result);
  const groups = new Map<string, number[]>();
  for (const c of done) {
    const k = JSON.stringify([rowLabel(c), c.sparsity]);
    groups.set(k, [...(groups.get(k) ?? []), c.result!.top1]);
  }
  const values = [...groups].map(([k, v]) => {
    const [method, s] = JSON.parse(k) as [string, number];
    return { method, variant: variant(method), sparsity: 100 * s, top1: mean(v) };
  });
  const dense = done.length ? done[0].result!.denseTop1 : null;
  const x = { field: 'sparsity', type: 'quantitative', title: 'target sparsity (%)', scale: { zero: false, padding: 20 }, axis: { format: '.4~r', values: [...new Set(values.map((v) => v.sparsity))] } } as const;
  const labels = [...new Set(values.map((v) => v.method))];
  if (new Set(values.map((v) => v.sparsity)).size === 1) return top1Bars(values, labels, dense);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Top-1 vs target sparsity' + (dense !== null ? ` (dense ${dense.toFixed(2)}%: black dashes)` : '') + (labels.some((l) => l.includes('+bnrecal')) ? '; dashed lines: BN re-calibrated' : ''),
    width: 520,
    height: 340,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'top1', type: 'quantitative', title: 'top-1 (%)', scale: { domain: [0, 100] } }, ...colourEncoding(labels, 'method') },
      },
      ...(dense !== null ? [{ data: { values: [{ dense }] }, mark: { type: 'rule' as const, strokeDash: [6, 4], color: 'black' }, encoding: { y: { field: 'dense', type: 'quantitative' as const } } }] : []),
    ],
    ...FONT,
  } as TopLevelSpec;
}

/** One target sparsity: a bar per method (a line plot of single points says little). */
function top1Bars(values: Array<{ method: string; sparsity: number; top1: number }>, labels: string[], dense: number | null): TopLevelSpec {
  const y = { field: 'method', type: 'nominal', title: null, sort: labels } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Top-1 at ${values[0].sparsity.toFixed(4).replace(/\.?0+$/, '')}% target sparsity` + (dense !== null ? ` (dense ${dense.toFixed(2)}%, dashed)` : ''),
    width: 420,
    height: { step: 18 },
    layer: [
      { data: { values }, mark: { type: 'bar' }, encoding: { y, x: { field: 'top1', type: 'quantitative', title: 'top-1 (%)', scale: { domain: [0, 100] } }, color: { field: 'method', type: 'nominal', legend: null, scale: { scheme: labels.length <= 10 ? 'category10' : 'tableau20', domain: labels } } } },
      { data: { values }, mark: { type: 'text', align: 'left', dx: 3 }, encoding: { y, x: { field: 'top1', type: 'quantitative' }, text: { field: 'top1', type: 'quantitative', format: '.2f' } } },
      ...(dense !== null ? [{ data: { values: [{ dense }] }, mark: { type: 'rule' as const, strokeDash: [6, 4], color: 'black' }, encoding: { x: { field: 'dense', type: 'quantitative' as const } } }] : []),
    ],
    ...FONT,
  } as TopLevelSpec;
}

export function allocationSpec(cells: CellRecord[], sparsity: number): TopLevelSpec {
  const seen = new Set<string>();
  const values: Array<{ method: string; layer: string; index: number; sparsity: number }> = [];
  for (const c of cells) {
    if (!c.result || c.sparsity !== sparsity || seen.has(rowLabel(c)) || c.method.endsWith('+bnrecal')) continue;
    seen.add(rowLabel(c));
    c.result.layers.forEach((l, index) => values.push({ method: rowLabel(c), layer: `${index} ${l.name.replace(/\.weight$/, '')}`, index, sparsity: 100 * l.sparsity }));
  }
  const nLayers = new Set(values.map((v) => v.index)).size;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Per-layer sparsity at ${+(100 * sparsity).toFixed(2)}% target (first seed; +bnrecal rows share their method's allocation)`,
    width: Math.max(420, 16 * nLayers),
    height: 320,
    data: { values },
    mark: { type: 'line', point: { size: 25 }, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'layer', type: 'ordinal', sort: { field: 'index' }, title: 'layer (network order)', axis: { labelAngle: -60, labelFontSize: 9, labelLimit: 160 } },
      y: { field: 'sparsity', type: 'quantitative', title: 'layer sparsity (%)', scale: { domain: [0, 100] } },
      color: { field: 'method', type: 'nominal', title: 'method', scale: { scheme: seen.size <= 10 ? 'category10' : 'tableau20', domain: [...seen] } },
    },
    ...FONT,
  } as TopLevelSpec;
}

/** FCPTS-style cells (a history with a control term) at the chosen sparsity, first seed of each row. */
export function curvesSpec(cells: CellRecord[], sparsity: number): TopLevelSpec | null {
  const values: Array<{ run: string; step: number; metric: string; value: number }> = [];
  const seen = new Set<string>();
  for (const c of cells) {
    if (!c.result || c.sparsity !== sparsity || seen.has(rowLabel(c))) continue;
    const h = readHistory(c);
    if (!h.length || !('control' in h[0].terms)) continue;
    seen.add(rowLabel(c));
    const every = Math.max(1, Math.ceil(h.length / 400));
    for (const s of h.filter((_, i) => i % every === 0 || i === h.length - 1)) {
      const rec = Object.entries(s.terms).filter(([k]) => k !== 'control');
      values.push({ run: rowLabel(c), step: s.step + 1, metric: `reconstruction loss (${rec.map(([k]) => k).join(' + ')})`, value: rec.reduce((a, [, v]) => a + v, 0) });
      values.push({ run: rowLabel(c), step: s.step + 1, metric: 'control loss', value: s.terms.control });
      values.push({ run: rowLabel(c), step: s.step + 1, metric: 'global sparsity (%)', value: 100 * s.sparsity });
    }
  }
  if (!values.length) return null;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `FCPTS curves at ${+(100 * sparsity).toFixed(2)}% target`,
    data: { values },
    facet: { row: { field: 'metric', type: 'nominal', title: null, sort: [...new Set(values.map((v) => v.metric))], header: { labelAngle: 0, labelAlign: 'left', labelFontSize: 12 } } },
    spec: {
      width: 520,
      height: 150,
      mark: { type: 'line', strokeWidth: 1.5 },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'iteration' },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'run', type: 'nominal', title: 'cell', scale: { scheme: 'category10' } },
      },
    },
    resolve: { scale: { y: 'independent' } },
    ...FONT,
  } as TopLevelSpec;
}

/** Write every plot that has data into `out`; returns the file names (relative to out). */
export async function writePlots(out: string, cells: CellRecord[], wanted?: number): Promise<string[]> {
  const files: string[] = [];
  const put = async (name: string, spec: TopLevelSpec | null) => {
    if (!spec) return;
    writeFileSync(join(out, name), await renderSvg(spec));
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
