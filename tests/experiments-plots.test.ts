// The run plots (experiments/runner/plots.ts) as specs and as pictures: the value axes are fitted to the data (not
// 0-100), cells with several seeds get mean +- std error bars equal to the tables' numbers, past 6 series shapes and
// dashes join the colours, the FCPTS losses are on log scales with zeros left out and the learning rate has its own
// panel. Every plot kind, and the committed results of fmnist-resnet20 and fmnist-resnet20-seeds (read, never
// rewritten), is rendered to SVG and rasterised to PNG with @resvg/resvg-js; a PNG must not be blank (enough pixels
// off the white background, several colours, the first series' colour drawn). Without resvg the picture tests are
// reported skips.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import type { CellResult } from '../experiments/prune-cell.js';
import {
  allocationSpec, curvesSpec, fittedDomain, logDomain, MANY_SERIES, plotSparsity, renderSvg, top1Points, top1Spec, writePlots,
} from '../experiments/runner/plots.js';
import { gatherCells, statTable, type CellRecord } from '../experiments/runner/results.js';
import type { StepLog } from '../sparsity/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'ptslab-plots-'));
const PNG_DIR = join(tmp, 'png');
mkdirSync(PNG_DIR);

const LAYERS = ['conv1.weight', 'layer1.0.conv1.weight', 'layer1.0.conv2.weight', 'fc.weight'];
let n = 0;
/** A finished cell; `history` (FCPTS-style steps) is written to its folder for the curves. */
function cell(method: string, sparsity: number, seed: number, top1: number, o: { layers?: number[]; history?: StepLog[]; ablation?: string } = {}): CellRecord {
  const dir = join(tmp, 'cells', `c${n++}`);
  mkdirSync(dir, { recursive: true });
  if (o.history) writeFileSync(join(dir, 'history.json'), JSON.stringify(o.history));
  const layers = (o.layers ?? [0.1, 0.8, 0.85, 0.3]).map((s, k) => ({ name: LAYERS[k], params: 100, sparsity: s }));
  const result = { method, targetSparsity: sparsity, seed, top1, denseTop1: 93.8, layers, achievedSparsity: sparsity, seconds: 1 } as unknown as CellResult;
  return { key: `${method}-s${sparsity}-seed${seed}`, index: n, method, sparsity, seed, ablation: o.ablation ?? null, config: 'test', status: 'done', dir, result };
}

/** An FCPTS-like history: decaying KL, control loss that is 0 every 5th step (or always), cosine lr with warmup. */
function history(steps: number, o: { controlZero?: boolean; scale?: number } = {}): StepLog[] {
  return Array.from({ length: steps }, (_, step) => {
    const lr = 0.01 * Math.min(1, (step + 1) / 10) * 0.5 * (1 + Math.cos((Math.PI * step) / steps));
    const control = o.controlZero || step % 5 === 0 ? 0 : 1e-4 * (1 + Math.sin(step));
    const kl = (o.scale ?? 1) * (5 * Math.exp(-step / 20) + 0.1);
    return { step, lr, terms: { kl, control }, loss: kl + control, sparsity: 0.9 + 1e-3 * Math.sin(step / 3) };
  });
}

// several seeds per cell: fcpts at 80% = 93.4 / 93.5 / 93.6 (mean 93.5, std 0.1)
const SEEDED: CellRecord[] = [
  cell('fcpts', 0.8, 0, 93.4), cell('fcpts', 0.8, 1, 93.5), cell('fcpts', 0.8, 2, 93.6),
  cell('fcpts', 0.9, 0, 92.9, { history: history(120) }), cell('fcpts', 0.9, 1, 93.1), cell('fcpts', 0.9, 2, 93.0),
  cell('erk-kd', 0.8, 0, 93.45), cell('erk-kd', 0.8, 1, 93.35),
  cell('erk-kd', 0.9, 0, 92.8, { history: history(120, { controlZero: true, scale: 1.2 }) }), cell('erk-kd', 0.9, 1, 92.7),
];
const MANY_METHODS = ['fcpts', 'uniform', 'global', 'global-l1', 'global-l2', 'erk', 'lamp', 'pot'];
const MANY: CellRecord[] = MANY_METHODS.flatMap((m, k) => [
  cell(m, 0.5, 0, 90 - k, { layers: [0.05 * k, 0.5 + 0.05 * k, 0.6, 0.2] }),
  cell(m, 0.9, 0, 60 - 5 * k, { layers: [0.05 * k, 0.9, 0.95 - 0.01 * k, 0.4], history: m === 'fcpts' || m === 'lamp' ? history(60, { scale: 1 + k / 10 }) : undefined }),
]);
const BNRECAL: CellRecord[] = ['uniform', 'global', 'erk'].flatMap((m, k) => [0.5, 0.9].flatMap((s) => [cell(m, s, 0, 70 - 40 * s - k), cell(`${m}+bnrecal`, s, 0, 90 - 20 * s - k)]));
const SINGLE: CellRecord[] = [cell('given', 0.9, 0, 14.6), cell('given+bnrecal', 0.9, 0, 71.6), cell('erk-kd', 0.9, 0, 92.9), cell('erk-kd', 0.9, 1, 93.0)];

type Layer = { mark: string | { type: string }; data?: { values: Array<Record<string, unknown>> }; encoding: Record<string, { field?: string; scale?: Record<string, unknown> } | undefined> };
const markOf = (l: Layer) => (typeof l.mark === 'string' ? l.mark : l.mark.type);
const layers = (spec: unknown): Layer[] => (spec as { layer: Layer[] }).layer;
const layerOf = (spec: unknown, mark: string) => layers(spec).find((l) => markOf(l) === mark)!;
const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} vs ${b}`);

const s = suite('plots: specs');

s('fittedDomain: min/max plus 6% of the span, a minimum pad for a flat series, clamped to bounds; logDomain skips zeros', () => {
  assert.equal(fittedDomain([10, 20]), [9.4, 20.6]);
  assert.equal(fittedDomain([5, 5], { minPad: 0.5 }), [4.5, 5.5]);
  assert.equal(fittedDomain([1, 99], { bounds: [0, 100] }), [0, 100]);
  // a span of 0.6: 6% is 0.036, under the 0.05 minimum; a span of 1: 6% is 0.06
  assert.equal(fittedDomain([92.9, 93.5], { bounds: [0, 100], minPad: 0.05 }).map((v) => +v.toFixed(6)), [92.85, 93.55]);
  assert.equal(fittedDomain([92.9, 93.9], { bounds: [0, 100], minPad: 0.05 }).map((v) => +v.toFixed(6)), [92.84, 93.96]);
  assert.equal(logDomain([0, 0.01, 1, -3], 2), [0.005, 2]);
  assert.is(logDomain([0, 0]), null);
});

s('top-1: the y axis is fitted to the data (zero: false, not 0-100) and error bars are mean +- std as in the tables', () => {
  const spec = top1Spec(SEEDED);
  const line = layerOf(spec, 'line');
  const scale = line.encoding.y!.scale!;
  assert.is(scale.zero, false);
  const pts = top1Points(SEEDED);
  const all = [...pts.flatMap((p) => [p.lo, p.hi, ...p.seeds]), 93.8];
  const pad = Math.max(0.06 * (Math.max(...all) - Math.min(...all)), 0.05);
  const [lo, hi] = scale.domain as number[];
  close(lo, Math.min(...all) - pad);
  close(hi, Math.max(...all) + pad);
  assert.ok(lo > 92 && hi < 94, `domain [${lo}, ${hi}] hugs the data`);
  const bars = layerOf(spec, 'errorbar');
  const f80 = bars.data!.values.find((v) => v.method === 'fcpts' && v.sparsity === 80)!;
  close(f80.top1 as number, 93.5, 1e-9);
  close(f80.std as number, 0.1, 1e-9);
  close(f80.lo as number, 93.4, 1e-9);
  close(f80.hi as number, 93.6, 1e-9);
  assert.is(f80.n, 3);
  // the same numbers as results.md's table
  assert.match(statTable(SEEDED, (r) => r.top1, 2), /\| fcpts \| 93\.50 ± 0\.10 \(n=3\) \| 93\.00 ± 0\.10 \(n=3\) \|/);
  assert.equal(bars.data!.values.length, 4);
  // one faint dot per seed, and the subtitle says what the bars are
  assert.is(layerOf(spec, 'point').data!.values.length, 10);
  assert.match(JSON.stringify((spec as { title: unknown }).title), /mean ± std over n = 3, 2 seeds/);
});

s(`past ${MANY_SERIES} series lines differ by shape and dash as well as colour; at ${MANY_SERIES} or fewer by colour only`, () => {
  const many = top1Spec(MANY);
  const enc = layerOf(many, 'line').encoding;
  assert.equal([enc.color!.field, enc.strokeDash!.field, layerOf(many, 'point').encoding.shape!.field], ['method', 'method', 'method']);
  const dashes = enc.strokeDash!.scale!.range as number[][];
  assert.is(new Set(dashes.map((d) => d.join())).size, MANY_METHODS.length);
  const few = layerOf(top1Spec(SEEDED), 'line').encoding;
  assert.equal([few.shape, few.strokeDash], [undefined, undefined]);
  // +bnrecal rows: a method keeps its colour, the dash tells the variants apart (with its own legend)
  const bn = layerOf(top1Spec(BNRECAL), 'line').encoding;
  assert.equal([bn.color!.field, bn.strokeDash!.field], ['base', 'variant']);
  assert.equal(bn.color!.scale!.domain, ['uniform', 'global', 'erk']);
  const alloc = allocationSpec(MANY, 0.9) as unknown as Layer;
  assert.equal([alloc.encoding.shape!.field, alloc.encoding.strokeDash!.field], ['method', 'method']);
});

s('allocation: y fitted to the layer sparsities; methods with the very same allocation are named in the subtitle', () => {
  const cells = [cell('erk', 0.9, 0, 10, { layers: [0.2, 0.9, 0.95, 0.4] }), cell('erk-kd', 0.9, 0, 92, { layers: [0.2, 0.9, 0.95, 0.4] }), cell('fcpts', 0.9, 0, 93, { layers: [0.3, 0.92, 0.93, 0.5] })];
  const spec = allocationSpec(cells, 0.9) as unknown as Layer & { title: { subtitle: string[] } };
  const [lo, hi] = spec.encoding.y!.scale!.domain as number[];
  close(lo, 20 - 0.06 * 75);
  close(hi, 95 + 0.06 * 75);
  assert.match(spec.title.subtitle.join('\n'), /identical allocations, drawn over each other: erk = erk-kd/);
});

s('FCPTS curves: log-scale loss panels with zeros left out, a global sparsity panel and a learning-rate panel', () => {
  const spec = curvesSpec(SEEDED, 0.9) as unknown as { data: { values: Array<Record<string, number | string | null>> }; vconcat: Array<Layer & { title: { text: string; subtitle?: string } }> };
  assert.equal(spec.vconcat.map((p) => p.title.text), ['reconstruction loss (kl), log scale', 'control loss, log scale', 'global sparsity of the masks (%)', 'learning rate']);
  assert.equal(spec.vconcat.map((p) => p.encoding.y!.scale!.type ?? 'linear'), ['log', 'log', 'linear', 'linear']);
  assert.equal(spec.vconcat.map((p) => p.encoding.y!.field), ['rec', 'control', 'sparsity', 'lr']);
  const rows = spec.data.values;
  // every 5th fcpts step had control 0: null (a break in the line), never 0 on a log axis
  assert.ok(rows.every((r) => r.control === null || (r.control as number) > 0));
  assert.is(rows.filter((r) => r.run === 'fcpts' && r.control === null).length, 24);
  assert.is(spec.vconcat[1].title.subtitle, '0 throughout, not drawn: erk-kd');
  const lrs = rows.filter((r) => r.run === 'fcpts').map((r) => r.lr as number);
  const h = history(120);
  assert.equal(lrs, h.map((x) => x.lr));
  const [lo, hi] = spec.vconcat[1].encoding.y!.scale!.domain as number[];
  const positive = h.map((x) => x.terms.control).filter((c) => c > 0);
  close(lo, Math.min(...positive) / 1.25);
  close(hi, Math.max(...positive) * 1.25);
  assert.is(curvesSpec(BNRECAL, 0.9), null);
});

s('writePlots writes the three SVGs atomically (no temporary files left) and picks 90% when present', async () => {
  const out = join(tmp, 'out');
  mkdirSync(out);
  assert.is(plotSparsity(MANY), 0.9);
  const files = await writePlots(out, MANY);
  assert.equal(files, ['top1-vs-sparsity.svg', 'allocation-s0.9.svg', 'fcpts-curves-s0.9.svg']);
  assert.equal(readdirSync(out).sort(), [...files].sort());
  for (const f of files) assert.ok(readFileSync(join(out, f), 'utf8').startsWith('<svg'), f);
});

// ---- pictures ----

type Resvg = typeof import('@resvg/resvg-js').Resvg;
let Resvg: Resvg | null = null;
let why = '';
try {
  Resvg = (await import('@resvg/resvg-js')).Resvg;
  new Resvg('<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"/>').render();
} catch (e) {
  Resvg = null;
  why = `@resvg/resvg-js cannot load or render here: ${(e as Error).message.split('\n')[0]}`;
}

/** SVG -> PNG (white background, 1.5x) saved as `name`.png in the temp folder; returns the decoded pixels. */
function rasterise(svg: string, name: string): PNG {
  const png = new Resvg!(svg, { background: 'white', fitTo: { mode: 'zoom', value: 1.5 }, font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' } }).render().asPng();
  writeFileSync(join(PNG_DIR, `${name}.png`), png);
  return PNG.sync.read(png);
}

/** Why `img` reads as blank: < 2% of the pixels off white, < 6 distinct colours (4 bits a channel), or `colour` absent; null when none. */
function blankness(img: PNG, colour: [number, number, number]): string | null {
  let off = 0;
  let near = 0;
  const colours = new Set<number>();
  for (let i = 0; i < img.data.length; i += 4) {
    const [r, g, b] = [img.data[i], img.data[i + 1], img.data[i + 2]];
    if (r < 250 || g < 250 || b < 250) off++;
    colours.add(((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4));
    if (Math.abs(r - colour[0]) + Math.abs(g - colour[1]) + Math.abs(b - colour[2]) < 24) near++;
  }
  const px = img.width * img.height;
  if (img.width < 300 || img.height < 150) return `${img.width}x${img.height} pixels`;
  if (off / px < 0.02) return `only ${((100 * off) / px).toFixed(2)}% of the pixels are drawn`;
  if (colours.size < 6) return `${colours.size} colours`;
  if (near <= 40) return `the first series' colour rgb(${colour.join(', ')}) covers ${near} pixels`;
  return null;
}
const assertNotBlank = (img: PNG, what: string, colour: [number, number, number]) => assert.is(blankness(img, colour), null, what);

const BLUE: [number, number, number] = [31, 119, 180]; // category10's first colour

const p = suite('plots: rendered to PNG');
const pic = (name: string, fn: () => Promise<void>) => {
  if (Resvg) return p(name, fn);
  console.log(`SKIPPED experiments-plots '${name}': ${why}`);
  p.skip(`${name} (skipped: ${why})`, fn);
};

pic('every plot kind renders to a PNG that is not blank', async () => {
  const kinds: Array<[string, unknown, [number, number, number]]> = [
    ['top1-seeds', top1Spec(SEEDED), BLUE],
    ['top1-many', top1Spec(MANY), BLUE],
    ['top1-bnrecal', top1Spec(BNRECAL), BLUE],
    ['top1-single', top1Spec(SINGLE), BLUE],
    ['allocation-many', allocationSpec(MANY, 0.9), BLUE],
    ['curves-seeds', curvesSpec(SEEDED, 0.9), BLUE],
    ['curves-many', curvesSpec(MANY, 0.9), BLUE],
  ];
  for (const [name, spec, colour] of kinds) assertNotBlank(rasterise(await renderSvg(spec as never), name), name, colour);
  // a blank picture fails the check (the check is not vacuous)
  assert.is(blankness(rasterise('<svg xmlns="http://www.w3.org/2000/svg" width="600" height="400"/>', 'blank'), BLUE), 'only 0.00% of the pixels are drawn');
  const grey = '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="400"><rect x="0" y="0" width="300" height="400" fill="#888"/></svg>';
  assert.is(blankness(rasterise(grey, 'grey'), BLUE), '2 colours');
});

const COMMITTED = ['fmnist-resnet20-seeds', 'fmnist-resnet20'];
for (const name of COMMITTED) {
  const dir = join(ROOT, 'experiments', 'results', name);
  const title = `committed results ${name}: top-1, allocation and curves render to PNGs that are not blank (read only)`;
  if (!existsSync(join(dir, 'cells'))) {
    console.log(`SKIPPED experiments-plots '${title}': ${dir}/cells not found`);
    p.skip(`${title} (skipped: ${dir}/cells not found)`, () => undefined);
    continue;
  }
  pic(title, async () => {
    const stamp = () => readdirSync(dir).map((f) => [f, statSync(join(dir, f)).mtimeMs, statSync(join(dir, f)).size]);
    const before = stamp();
    const cells = gatherCells([dir]);
    const sp = plotSparsity(cells)!;
    assert.is(sp, 0.9);
    const specs: Array<[string, unknown, [number, number, number]]> = [
      ['top1', top1Spec(cells), BLUE],
      ['allocation', allocationSpec(cells, sp), BLUE],
      ['curves', curvesSpec(cells, sp), BLUE],
    ];
    for (const [kind, spec, colour] of specs) {
      assert.ok(spec, `${name}: ${kind} has data`);
      assertNotBlank(rasterise(await renderSvg(spec as never), `${name}-${kind}`), `${name} ${kind}`, colour);
    }
    // seeds: the top-1 chart has error bars; the main grid's 0-100 data keeps a fitted axis inside 0-100
    const y = layerOf(specs[0][1], 'line').encoding.y!.scale!;
    if (name.endsWith('-seeds')) {
      assert.ok(layers(specs[0][1]).some((l) => markOf(l) === 'errorbar'));
      assert.ok((y.domain as number[])[0] > 92 && (y.domain as number[])[1] < 94, `seeds domain ${JSON.stringify(y.domain)}`);
    } else assert.ok((y.domain as number[])[0] >= 0 && (y.domain as number[])[0] < 8 && (y.domain as number[])[1] <= 100);
    // nothing in the committed folder was touched
    assert.equal(stamp(), before);
  });
}

p.after(() => {
  if (process.env.PTSLAB_KEEP_PLOTS) console.log(`plots: PNGs kept in ${PNG_DIR}`);
  else rmSync(tmp, { recursive: true, force: true });
});
s.run();
p.run();
