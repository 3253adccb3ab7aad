// The benchmark page (dist-web/bench.html): the GPU check's cases (web/bench-cases.ts: matmul, 3x3 convolutions, one
// FCPTS iteration on fmnist-resnet20) on gpu.js WebGL in this tab, each row shown as it finishes. On load it says
// which WebGL renderer the browser gives (WEBGL_debug_renderer_info's UNMASKED_RENDERER_WEBGL: an NVIDIA GPU, or
// SwiftShader / llvmpipe, software), and puts that as JSON into #probe; when the run is done the JSON report
// ({ probe, renderer, mode, rows, ... }, rows as scripts/bench.ts's { case, shape, engine, gflops, ms }) goes into
// #result, or the error into #error. scripts/gpu-check.sh (web/gpu-check.ts) drives it in headless Chromium.
//
// URL parameters: auto=1 (start at once), reps (timed runs per kernel case, default 5), warmup (default 2), batch
// (the FCPTS step's batch, default 64), steps (timed FCPTS iterations, default 3), fcptsWarmup (default 2), cases
// (comma list: only cases whose name contains one of them).

import * as gpujs from 'gpu.js';
import { setBackend } from '../core/backend/index.js';
import { createGpujsBackend } from '../core/backend/gpujs/index.js';
import { provideGpujsModule } from '../core/backend/gpujs/loader.js';
import { yieldToEventLoop } from '../core/event-loop.js';
import { BENCH_MODEL, runBenchCases, type BenchReport, type GlInfo } from './bench-cases.js';

declare const PTSLAB_BUILD: { version: string; commit: string | null };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const num = (k: string, d: number) => (params.has(k) ? Number(params.get(k)) : d);

function glInfo(gl: WebGLRenderingContext | WebGL2RenderingContext): GlInfo {
  const dbg = gl.getExtension('WEBGL_debug_renderer_info');
  return {
    webgl2: typeof WebGL2RenderingContext !== 'undefined' && gl instanceof WebGL2RenderingContext,
    version: String(gl.getParameter(gl.VERSION)),
    vendor: String(dbg ? gl.getParameter(dbg.UNMASKED_VENDOR_WEBGL) : gl.getParameter(gl.VENDOR)),
    renderer: String(dbg ? gl.getParameter(dbg.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)),
    maxTextureSize: Number(gl.getParameter(gl.MAX_TEXTURE_SIZE)),
  };
}

/** The renderer a fresh canvas gets (WebGL2, else WebGL 1), or null when the browser gives no WebGL at all. */
function probe(): GlInfo | null {
  const c = document.createElement('canvas');
  const gl = c.getContext('webgl2') ?? c.getContext('webgl');
  if (!gl) return null;
  const info = glInfo(gl);
  (gl.getExtension('WEBGL_lose_context') as { loseContext(): void } | null)?.loseContext();
  return info;
}

const software = (r: string) => /swiftshader|llvmpipe|softpipe|software/i.test(r);

const glProbe = probe();

function showProbe(): void {
  $('probe').textContent = JSON.stringify(glProbe);
  $('renderer').textContent = glProbe
    ? `${glProbe.version}; renderer: ${glProbe.renderer} (vendor ${glProbe.vendor})${software(glProbe.renderer) ? ' (software rendering, not a GPU)' : ''}`
    : 'no WebGL context: the browser gives none';
}

async function run(): Promise<void> {
  ($('run') as HTMLButtonElement).disabled = true;
  const status = async (s: string) => {
    $('status').textContent = s;
    // the driver echoes these as they come (a page busy in a case answers no queries, but its console lines arrive)
    console.log(`[bench] ${s}`);
    await yieldToEventLoop();
  };
  const t0 = performance.now();
  try {
    if (!glProbe?.webgl2) throw new Error(`WebGL2 is not available here (${glProbe ? glProbe.version : 'no WebGL at all'}): gpu.js would not run on the GPU`);
    provideGpujsModule(gpujs);
    const gb = createGpujsBackend();
    if ('unavailable' in gb) throw new Error(`gpu.js cannot start: ${gb.unavailable}`);
    if (!/gl/.test(gb.mode)) throw new Error(`gpu.js would run in mode '${gb.mode}', not on WebGL`);
    setBackend(gb);
    const settings = {
      reps: num('reps', 5), warmup: num('warmup', 2), fcptsBatch: num('batch', 64), fcptsSteps: num('steps', 3),
      fcptsWarmup: num('fcptsWarmup', 2), cases: params.get('cases')?.split(',').filter(Boolean) ?? [],
    };
    await status(`loading models/${BENCH_MODEL}.safetensors`);
    const r = await fetch(`models/${BENCH_MODEL}.safetensors`);
    if (!r.ok) throw new Error(`cannot load models/${BENCH_MODEL}.safetensors: HTTP ${r.status}`);
    const weights = new Uint8Array(await r.arrayBuffer());
    const engine = `ptslab-gpujs-${gb.mode}`;
    const rows = await runBenchCases(weights, {
      ...settings,
      engine,
      onStatus: status,
      onRow: async (row) => {
        const tr = document.createElement('tr');
        for (const v of [row.case, row.shape, row.engine, row.ms.toFixed(2), row.gflops === null ? '' : row.gflops.toFixed(2)]) {
          const td = document.createElement('td');
          td.textContent = v;
          tr.append(td);
        }
        $('rows').append(tr);
        await yieldToEventLoop();
      },
    });
    const gl = gb.glContext() as unknown as WebGLRenderingContext | null;
    const report: BenchReport = {
      probe: glProbe, renderer: gl && !gl.isContextLost() ? glInfo(gl) : null, mode: gb.mode, fallbacks: gb.fallbacks,
      userAgent: navigator.userAgent, build: PTSLAB_BUILD, settings, rows, seconds: +((performance.now() - t0) / 1000).toFixed(1),
    };
    if (gl?.isContextLost()) throw new Error('the WebGL context was lost during the run: its numbers cannot be trusted');
    await status(`done in ${report.seconds} s on ${engine}${report.renderer ? ` (${report.renderer.renderer})` : ''}`);
    $('result').textContent = JSON.stringify(report, null, 2);
    $('result').hidden = false;
  } catch (e) {
    const err = e as Error;
    $('status').textContent = 'failed';
    $('error').textContent = err.stack ?? err.message;
  }
}

showProbe();
$('run').addEventListener('click', () => void run());
if (params.get('auto') === '1') void run();
