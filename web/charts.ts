// The page's charts as plain SVG (a few hundred points; no chart library in the bundle): line charts of series over
// iterations and grouped bar charts over layers. Each call redraws its chart from scratch.

export interface Series {
  name: string;
  color: string;
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

const W = 460, H = 220, L = 48, R = 10, T = 22, B = 30;
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
/** A tick label: enough decimals that ticks `step` apart read differently (0.8000 and 0.8007, not 0.80 twice). */
const tick = (v: number, step: number) => v.toFixed(Math.min(6, Math.max(0, Math.ceil(-Math.log10(step)) + 1)));

function frame(title: string, y0: number, y1: number, body: string, legend: readonly { name: string; color: string }[]): string {
  const ticks = [0, 0.5, 1].map((f) => {
    const y = T + (1 - f) * (H - T - B);
    return `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${L - 4}" y="${y + 4}" text-anchor="end">${tick(y0 + f * (y1 - y0), (y1 - y0) / 2)}</text>`;
  }).join('');
  const keys = legend.map((s, i) => `<rect x="${L + 8 + i * 110}" y="${T + 2}" width="10" height="10" fill="${s.color}"/><text x="${L + 22 + i * 110}" y="${T + 11}">${esc(s.name)}</text>`).join('');
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-size="11" font-family="system-ui, sans-serif"><text x="${L}" y="14" font-weight="bold">${esc(title)}</text>${ticks}${body}${keys}<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#999"/></svg>`;
}

/** Lines over x (whole numbers: iterations); y from the data unless yRange is given. */
export function lineChart(el: HTMLElement, title: string, series: readonly Series[], o: { yRange?: [number, number]; xLabel?: string } = {}): void {
  const pts = series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]).filter(Number.isFinite);
  const x0 = xs.length ? Math.min(...xs) : 0, x1 = Math.max(x0 + 1, ...xs);
  let [y0, y1] = o.yRange ?? [Math.min(...ys), Math.max(...ys)];
  if (!ys.length && !o.yRange) [y0, y1] = [0, 1];
  if (y1 <= y0) [y0, y1] = [y0 - 0.5, y0 + 0.5];
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const lines = series.map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="4 3"' : ''} points="${s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`).join('');
  const axis = `<text x="${W - R}" y="${H - 8}" text-anchor="end">${esc(o.xLabel ?? 'iteration')} ${x1}</text><text x="${L}" y="${H - 8}">${x0}</text>`;
  el.innerHTML = frame(title, y0, y1, lines + axis, series);
}

/** Bars per category (layers), one bar per group (method) side by side; values in [0, 1]. */
export function barChart(el: HTMLElement, title: string, categories: readonly string[], groups: readonly { name: string; color: string; values: readonly number[] }[]): void {
  const n = Math.max(1, categories.length), g = Math.max(1, groups.length);
  const cw = (W - L - R) / n, bw = Math.max(1, (cw * 0.8) / g);
  const bars = groups.map((grp, j) => grp.values.map((v, i) => {
    const h = Math.max(0, Math.min(1, v)) * (H - T - B);
    return `<rect x="${(L + i * cw + cw * 0.1 + j * bw).toFixed(1)}" y="${(H - B - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${grp.color}"><title>${esc(`${grp.name} ${categories[i]}: ${(100 * v).toFixed(1)}%`)}</title></rect>`;
  }).join('')).join('');
  const axis = `<text x="${L}" y="${H - 8}">${esc(categories[0] ?? '')}</text><text x="${W - R}" y="${H - 8}" text-anchor="end">${esc(categories[n - 1] ?? '')} (${n} layers)</text>`;
  el.innerHTML = frame(title, 0, 1, bars + axis, groups);
}
