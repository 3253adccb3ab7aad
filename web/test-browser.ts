// `npm run test:browser`: the page (npm run web's dist-web/) in headless Chromium (Debian's chromium, driven by
// playwright-core: no browser download), served by a plain static file server (web/serve.ts: no cross-origin isolation
// headers, as any static server). Four runs of the page, each method's cell checked against the same run
// (web/run.ts, same files) in Node on the cpu backend: exact sparsity, the same zero count, top-1 within 1 point:
// - on gpu.js WebGL (Mesa's llvmpipe here, a software rasteriser, through ANGLE over EGL): FCPTS, ERK and LAMP;
// - on the wasm cpu backend in the page's Web Worker, then the tab reloaded: the same cells come back from
//   sessionStorage without running again;
// - ERK on WebGL, then the WebGL context lost at FCPTS's second iteration (WEBGL_lose_context): FCPTS runs again on
//   the worker and ERK's cell is kept;
// - another model (mnist-resnet20, model= in the URL) on the worker: FCPTS and LAMP.
// Screenshots of the finished pages go to test-output/browser-page*.png for a person to look at. Env:
// PTSLAB_CHROMIUM (the browser, default /usr/bin/chromium), PTSLAB_BROWSER_ITERS (FCPTS iterations, default 20, at
// batch 8), PTSLAB_BROWSER_EVAL (held-out images evaluated, default 100: software WebGL evaluates about 10 a second),
// PTSLAB_BROWSER_RUNS (default webgl,worker,lost,mnist), PTSLAB_BROWSER_ANGLE (Chromium's --use-angle, default gl-egl;
// swiftshader is ANGLE's own software Vulkan, about 2x slower here).

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { serveStatic } from './serve.js';
import '../core/backend/all.js';
import { setBackend } from '../core/index.js';
import { buildWeb, WEB_OUT } from './build.js';
import { PAGE_METHODS, PAGE_MODEL, pageFiles, parseImageSet, runPage, type ImageSet, type PageReport } from './run.js';

const imageSet = (file: string): ImageSet => parseImageSet(readFileSync(file), file);

type PageOutput = PageReport & { engines: string[] };

/** Open the page with these URL parameters and wait for its report (or its error); a screenshot is written either way. */
async function runInPage(browser: Browser, url: string, query: string, shot: string, reload = false): Promise<{ report: PageOutput; before?: PageOutput; seconds: number; status: string; logs: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1300 } });
  const logs: string[] = [];
  page.on('console', (m) => {
    logs.push(m.text());
    console.log(`  [page] ${m.text()}`);
  });
  const crashed = new Promise<never>((_, reject) => page.on('pageerror', (e) => reject(new Error(`the page threw: ${e.message}`))));
  const done = async () => {
    try {
      await Promise.race([
        page.waitForFunction("document.getElementById('result').textContent || document.getElementById('error').textContent", undefined, { timeout: 540_000 }),
        crashed,
      ]);
    } finally {
      await page.screenshot({ path: `test-output/${shot}.png`, fullPage: true });
    }
    const error = await page.textContent('#error');
    if (error) throw new Error(`the page failed (${query}): ${error}`);
  };
  const t0 = Date.now();
  await page.goto(`${url}/index.html?${query}`);
  // what a person waits for before the page answers: its load event, and the bytes it fetched for that
  const load = JSON.parse(await page.evaluate(`JSON.stringify({
    ms: performance.getEntriesByType('navigation')[0].loadEventEnd,
    bytes: performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
      .filter((r) => r.responseEnd <= performance.getEntriesByType('navigation')[0].loadEventEnd).reduce((a, r) => a + r.encodedBodySize, 0),
  })`)) as { ms: number; bytes: number };
  console.log(`page ${query}: loaded in ${load.ms.toFixed(0)} ms, ${(load.bytes / 1024).toFixed(0)} KiB fetched before the load event`);
  await done();
  const result = async () => JSON.parse((await page.textContent('#result'))!) as PageOutput;
  const before = reload ? await result() : undefined;
  if (reload) {
    // the same tab again: the finished cells come back from sessionStorage and nothing runs
    await page.evaluate("document.getElementById('result').textContent = ''");
    logs.length = 0;
    await page.reload();
    await done();
  }
  const seconds = (Date.now() - t0) / 1000;
  const status = (await page.textContent('#status')) ?? '';
  const report = await result();
  console.log(`page ${query}${reload ? ' (and reloaded)' : ''}: ${seconds.toFixed(1)} s on ${report.engines.join(' then ')}; ${status}`);
  await page.close();
  return { report, before, seconds, status, logs };
}

/** The WebGL2 renderer string a blank page of this browser gets, or null without WebGL2. */
async function webglRenderer(browser: Browser): Promise<string | null> {
  const page = await browser.newPage();
  try {
    return await page.evaluate(`(() => {
      const gl = document.createElement('canvas').getContext('webgl2');
      if (!gl) return null;
      const e = gl.getExtension('WEBGL_debug_renderer_info');
      return String(gl.getParameter(e ? e.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    })()`);
  } finally {
    await page.close();
  }
}

async function main(): Promise<number> {
  const exe = process.env.PTSLAB_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(exe)) {
    console.log(`SKIPPED test:browser: no browser at ${exe} (apt-get install chromium, or set PTSLAB_CHROMIUM)`);
    return process.env.CI ? 1 : 0;
  }
  const iters = Number(process.env.PTSLAB_BROWSER_ITERS ?? 20);
  const batch = 8;
  await buildWeb();
  const { server, url } = await serveStatic(WEB_OUT);
  // ANGLE over EGL reaches Mesa's llvmpipe (no X display needed), about 2x faster than ANGLE's SwiftShader here;
  // where it gives no WebGL2 (no Mesa EGL installed) the test says so and takes SwiftShader
  const launch = (angle: string) => chromium.launch({
    executablePath: exe, headless: true,
    args: [`--use-angle=${angle}`, '--ignore-gpu-blocklist', ...(angle === 'swiftshader' ? ['--enable-unsafe-swiftshader'] : [])],
  });
  let angle = process.env.PTSLAB_BROWSER_ANGLE ?? 'gl-egl';
  let browser = await launch(angle);
  let renderer = await webglRenderer(browser);
  if (!renderer && angle !== 'swiftshader') {
    console.log(`--use-angle=${angle} gave no WebGL2 here: using --use-angle=swiftshader`);
    await browser.close();
    browser = await launch((angle = 'swiftshader'));
    renderer = await webglRenderer(browser);
  }
  console.log(`Chromium ${browser.version()}, --use-angle=${angle}: WebGL2 renderer ${renderer ?? 'none'}`);
  mkdirSync('test-output', { recursive: true });
  let failures = 0;
  const check = (ok: boolean, what: string) => {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failures++;
  };
  try {
    const evalImages = Number(process.env.PTSLAB_BROWSER_EVAL ?? 100);
    const q = `auto=1&iters=${iters}&batch=${batch}&evalImages=${evalImages}`;
    const ALL_RUNS = 'webgl,worker,lost,mnist';
    const runs = new Set((process.env.PTSLAB_BROWSER_RUNS ?? ALL_RUNS).split(','));
    const gl = runs.has('webgl') ? await runInPage(browser, url, `${q}&engine=webgl&methods=fcpts,erk,lamp`, 'browser-page') : null;
    const worker = runs.has('worker') ? await runInPage(browser, url, `${q}&engine=worker&methods=fcpts,erk,lamp`, 'browser-page-worker', true) : null;
    // ERK on WebGL, then the context is lost at FCPTS's second iteration: FCPTS runs again on the worker
    const lost = runs.has('lost') ? await runInPage(browser, url, `${q}&engine=webgl&methods=erk,fcpts&loseContextAt=1`, 'browser-page-context-lost') : null;
    // another of the page's models, chosen by URL parameter (its own weights and dataset files), on the worker
    const mnist = runs.has('mnist') ? await runInPage(browser, url, `${q}&engine=worker&model=mnist-resnet20&methods=fcpts,lamp`, 'browser-page-mnist') : null;

    setBackend('cpu');
    /** The same run in Node on the cpu backend, from the same files. */
    const nodeRun = async (model: string) => {
      const f = pageFiles(model);
      const r = await runPage({
        model, weights: readFileSync(join(WEB_OUT, f.weights)), calib: imageSet(join(WEB_OUT, f.calib)), test: imageSet(join(WEB_OUT, f.test)),
        sparsity: 0.8, iters, batchSize: batch, evalImages, methods: PAGE_METHODS, build: { version: 'node', commit: null },
      }, () => undefined);
      console.log(`node (cpu backend), ${model}: dense ${r.denseTop1}%, ${r.cells.map((c) => `${c.method} ${c.top1}%`).join(', ')}`);
      return r;
    };
    const want = await nodeRun(PAGE_MODEL);

    const compare = (what: string, got: PageOutput, backends: Record<string, string>, node = want) => {
      // one held-out image in a hundred may flip between float32 engines after a few iterations of training
      check(Math.abs(got.denseTop1 - node.denseTop1) <= 0.2, `${what}: dense top-1 ${got.denseTop1} vs Node's ${node.denseTop1}`);
      for (const w of node.cells.filter((c) => c.method in backends)) {
        const c = got.cells.find((x) => x.method === w.method);
        if (!c) {
          check(false, `${what}: no ${w.method} cell`);
          continue;
        }
        check(c.zeroParams === Math.round(c.targetSparsity * c.prunableParams) && c.zeroParams === w.zeroParams,
          `${what} ${c.method}: exact sparsity, ${c.zeroParams} zeros of ${c.prunableParams} = round(${c.targetSparsity} x ${c.prunableParams}), as in Node`);
        check(Math.abs(c.top1 - w.top1) <= 1, `${what} ${c.method}: top-1 ${c.top1} within 1 point of Node's ${w.top1}`);
        check(c.backend === backends[c.method], `${what} ${c.method}: ran on ${c.backend} (expected ${backends[c.method]})`);
        if (c.method === 'fcpts') check((c.config as { iters?: number }).iters === iters, `${what} fcpts: ${iters} iterations in its config`);
      }
    };
    if (gl) {
      compare('webgl', gl.report, { fcpts: 'gpujs', erk: 'gpujs', lamp: 'gpujs' });
      check(/gpu\.js/.test(gl.report.engines.join()), `webgl: the page says it ran on gpu.js (${gl.report.engines})`);
    }
    if (worker) {
      compare('worker', worker.report, { fcpts: 'cpu', erk: 'cpu', lamp: 'cpu' });
      check(JSON.stringify(worker.before?.cells) === JSON.stringify(worker.report.cells), 'worker: after a reload the page shows the same finished cells, from sessionStorage, without running them again');
      const reran = worker.logs.filter((l) => /iteration|evaluating|re-calibration/.test(l));
      check(worker.logs.some((l) => /resuming: fcpts, erk, lamp finished before/.test(l)) && reran.length === 0, `worker: the reloaded page ran nothing (${reran.length} steps logged after the reload)`);
      check(worker.report.engines.length === 1 && /Worker/.test(worker.report.engines[0]), `worker: ran in a Web Worker (${worker.report.engines})`);
    }
    if (lost) {
      compare('context loss', lost.report, { erk: 'gpujs', fcpts: 'cpu' });
      check(lost.report.engines.length === 2 && /gpu\.js/.test(lost.report.engines[0]) && /Worker/.test(lost.report.engines[1]), `context loss: WebGL, then the worker (${lost.report.engines.join(' then ')})`);
    }
    if (mnist) {
      compare('mnist-resnet20', mnist.report, { fcpts: 'cpu', lamp: 'cpu' }, await nodeRun('mnist-resnet20'));
      check(mnist.report.cells.every((c) => c.model === 'mnist-resnet20' && c.dataset === 'mnist'), `mnist-resnet20: its cells name it and mnist (${mnist.report.cells.map((c) => `${c.model}/${c.dataset}`)})`);
    }
    if (runs.size !== ALL_RUNS.split(',').length) console.log(`(PTSLAB_BROWSER_RUNS=${[...runs]}: only these runs)`);
    console.log('screenshots: test-output/browser-page*.png');
  } finally {
    await browser.close();
    server.close();
  }
  return failures ? 1 : 0;
}

process.exitCode = await main();
