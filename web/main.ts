// The page: FCPTS on a bundled model in the browser tab, on gpu.js WebGL (the tab's GPU) when the browser has it.
// Reads the static files `npm run web` writes beside it (data/calib.bin, data/test.bin, models/<name>.safetensors),
// shows each iteration's loss terms and global sparsity as it runs, and ends with the exact sparsity counted from the
// pruned weights, top-1 on the held-out subset and a result.json to download. URL parameters: iters, sparsity,
// batch (default 16), auto=1 (start at once; the browser test uses it).

import * as gpujs from 'gpu.js';
import { setBackend } from '../core/backend/index.js';
import { createGpujsBackend } from '../core/backend/gpujs/index.js';
import { provideGpujsModule } from '../core/backend/gpujs/loader.js';
import { parseImageSet, runFcpts, type ImageSet, type PageResult } from './run.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const status = (s: string) => ($('status').textContent = s);

async function bytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot load ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

const imageSet = async (url: string): Promise<ImageSet> => parseImageSet(await bytes(url));

async function run(): Promise<void> {
  ($('run') as HTMLButtonElement).disabled = true;
  try {
    provideGpujsModule(gpujs);
    const gb = createGpujsBackend();
    if ('unavailable' in gb) throw new Error(`gpu.js cannot start here: ${gb.unavailable}`);
    setBackend(gb);
    $('engine').textContent = `gpu.js ${gb.mode}`;
    status('loading the model and the calibration subset');
    const model = 'fmnist-resnet20';
    const [weights, calib, test] = await Promise.all([bytes(`models/${model}.safetensors`), imageSet('data/calib.bin'), imageSet('data/test.bin')]);
    const iters = Number(params.get('iters') ?? ($('iters') as HTMLInputElement).value);
    const sparsity = Number(params.get('sparsity') ?? ($('sparsity') as HTMLInputElement).value);
    const rows = $('log');
    const result: PageResult = await runFcpts({
      model, weights, calib, test, sparsity, iters, batchSize: Number(params.get('batch') ?? 16),
      onStep: async (log) => {
        status(`FCPTS iteration ${log.step + 1} of ${iters}`);
        const tr = document.createElement('tr');
        tr.innerHTML = `<td>${log.step}</td><td>${log.loss.toFixed(4)}</td><td>${log.sparsity.toFixed(4)}</td>`;
        rows.appendChild(tr);
        // let the page paint between iterations
        await new Promise((r) => setTimeout(r, 0));
      },
    });
    const t = gb.transfers();
    status(`done: sparsity ${result.sparsity.toFixed(4)}, top-1 ${result.top1.toFixed(2)}% on ${result.testImages} held-out images`);
    $('result').textContent = JSON.stringify({ ...result, transfers: t });
    const a = $('download') as HTMLAnchorElement;
    a.href = URL.createObjectURL(new Blob([JSON.stringify(result, null, 2)], { type: 'application/json' }));
    a.hidden = false;
  } catch (e) {
    status(`failed: ${(e as Error).message}`);
    $('error').textContent = String((e as Error).stack ?? e);
  }
}

// URL parameters show in the form too
for (const k of ['iters', 'sparsity']) if (params.has(k)) ($(k) as HTMLInputElement).value = params.get(k)!;
$('run').addEventListener('click', () => void run());
if (params.get('auto') === '1') void run();
