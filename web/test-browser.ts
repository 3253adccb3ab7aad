// `npm run test:browser`: the page (npm run web's dist-web/) in headless Chromium (Debian's chromium, driven by
// playwright-core: no browser download), served by a static file server made here. A short FCPTS run in the page on
// gpu.js WebGL must reach the target sparsity exactly and the top-1 that the same run (web/run.ts, same files) gets
// in Node on the cpu backend, within float tolerance; a screenshot of the finished page is written to
// test-output/browser-page.png for a person to look at. Env: PTSLAB_CHROMIUM (the browser, default
// /usr/bin/chromium), PTSLAB_BROWSER_ITERS (default 10, at batch 8: Chromium's WebGL here is SwiftShader, software).

import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { chromium } from 'playwright-core';
import '../core/backend/all.js';
import { setBackend } from '../core/index.js';
import { buildWeb, WEB_OUT } from './build.js';
import { parseImageSet, runFcpts, type ImageSet, type PageResult } from './run.js';

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.map': 'application/json' };

function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const file = normalize(join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address() as { port: number };
    resolve({ server, url: `http://127.0.0.1:${a.port}` });
  }));
}

const imageSet = (file: string): ImageSet => parseImageSet(readFileSync(file));

async function main(): Promise<number> {
  const exe = process.env.PTSLAB_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(exe)) {
    console.log(`SKIPPED test:browser: no browser at ${exe} (apt-get install chromium, or set PTSLAB_CHROMIUM)`);
    return process.env.CI ? 1 : 0;
  }
  const iters = Number(process.env.PTSLAB_BROWSER_ITERS ?? 10);
  const batch = 8;
  await buildWeb();
  const { server, url } = await serve(WEB_OUT);
  const browser = await chromium.launch({ executablePath: exe, headless: true, args: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'] });
  let failures = 0;
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
    page.on('console', (m) => console.log(`  [page] ${m.text()}`));
    const crashed = new Promise<never>((_, reject) => page.on('pageerror', (e) => reject(new Error(`the page threw: ${e.message}`))));
    const t0 = Date.now();
    await page.goto(`${url}/index.html?auto=1&iters=${iters}&batch=${batch}`);
    mkdirSync('test-output', { recursive: true });
    try {
      await Promise.race([
        page.waitForFunction("document.getElementById('result').textContent || document.getElementById('error').textContent", undefined, { timeout: 540_000 }),
        crashed,
      ]);
    } finally {
      await page.screenshot({ path: 'test-output/browser-page.png', fullPage: true });
      console.log(`page status: ${await page.textContent('#status')}`);
    }
    const error = await page.textContent('#error');
    if (error) throw new Error(`the page failed: ${error}`);
    const got = JSON.parse((await page.textContent('#result'))!) as PageResult & { transfers: unknown };
    console.log(`page (${await page.textContent('#engine')}): ${iters} FCPTS iterations in ${((Date.now() - t0) / 1000).toFixed(1)} s, sparsity ${got.sparsity}, top-1 ${got.top1}%, traffic ${JSON.stringify(got.transfers)}`);
    setBackend('cpu');
    const want = await runFcpts({
      model: got.model, weights: readFileSync(join(WEB_OUT, 'models', `${got.model}.safetensors`)),
      calib: imageSet(join(WEB_OUT, 'data', 'calib.bin')), test: imageSet(join(WEB_OUT, 'data', 'test.bin')),
      sparsity: got.targetSparsity, iters, batchSize: batch,
    });
    console.log(`node (cpu backend): sparsity ${want.sparsity}, top-1 ${want.top1}%`);
    const check = (ok: boolean, what: string) => {
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
      if (!ok) failures++;
    };
    check(got.zeros === Math.round(got.targetSparsity * got.prunable), `exact sparsity in the page: ${got.zeros} zeros of ${got.prunable} = round(${got.targetSparsity} x ${got.prunable})`);
    check(got.zeros === want.zeros, `the same number of zeros as in Node (${got.zeros} vs ${want.zeros})`);
    // one held-out image in a hundred may flip between float32 engines after 20 iterations of training
    check(Math.abs(got.top1 - want.top1) <= 1, `top-1 within 1 point of Node's (${got.top1} vs ${want.top1})`);
    check(got.history.length === iters, `${iters} iterations logged`);
    console.log('screenshot: test-output/browser-page.png');
  } finally {
    await browser.close();
    server.close();
  }
  return failures ? 1 : 0;
}

process.exitCode = await main();
