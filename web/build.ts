// `npm run web`: the static page in dist-web/ (serve the folder with any static file server): index.html, main.js
// (web/main.ts bundled for the browser with esbuild; Node built-ins, which the browser path never calls, become
// modules that throw when used), the page models' weights (models/<name>.safetensors) and two subsets of each of
// their datasets as files (run.ts pageFiles): data/<dataset>-calib.bin (calibration images, from the training split)
// and data/<dataset>-test.bin (held-out images).

import { build, type Plugin } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../nn/train/index.js';
import { bundledModelInfo } from '../experiments/models/index.js';
import { loadExperiment } from '../experiments/kit.js';
import type { Dataset } from '../nn/data/index.js';
import { gitCommit } from '../scripts/commands/common.js';
import { packageVersion } from '../scripts/commands/version.js';
import { IMAGE, PAGE_MODELS, pageDataset, pageFiles } from './run.js';
import { buildWasm, kernelSourcePaths, NOSHARED_FILES, wasmBuilds } from '../core/backend/cpu/build-wasm.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEB_OUT = join(root, 'dist-web');
export const CALIB_IMAGES = 256, TEST_IMAGES = 500;
/** The page's scripts, each web/<name>.ts bundled to dist-web/<name>.js: the page, its Web Worker, the benchmark page. */
const ENTRIES = ['main', 'worker', 'bench'];

/**
 * Every Node built-in, and the wasm kernels' compiler (AssemblyScript and binaryen, used at install time only), as a
 * module whose every export throws, naming itself, if the browser ever calls it.
 */
const nodeShims: Plugin = {
  name: 'node-builtins',
  setup(b) {
    const names = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    const shimmed = (p: string) => names.has(p) || /^(assemblyscript|binaryen)(\/|$)/.test(p);
    b.onResolve({ filter: /.*/ }, (a) => (shimmed(a.path) ? { path: a.path, namespace: 'node-shim' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'node-shim' }, async (a) => {
      // the real module's export names (esbuild's interop copies own keys; a Proxy would give undefined)
      const keys = names.has(a.path) ? Object.keys(await import(a.path)).filter((k) => k !== 'default') : ['default'];
      // helpers that modules call while loading (build-wasm.ts computes its paths; pngjs calls util.inherits on
      // stream classes) do nothing there; the rest throw when called
      const pure = /^(node:)?(path|url|util|stream|events|buffer|string_decoder|assert)$/.test(a.path);
      return {
        contents: `const fail = (k) => ${pure ? "() => ''" : `() => { throw new Error(${JSON.stringify(a.path)} + '.' + k + ' is not available in the browser'); }`};
module.exports = { ${keys.map((k) => `${JSON.stringify(k)}: fail(${JSON.stringify(k)})`).join(', ')} };`,
        loader: 'js',
      };
    });
  },
};

/** Images and labels as the page's binary format (web/run.ts parseImageSet reads it). */
function imageFile(ds: Dataset, n: number): Uint8Array {
  const out = new Uint8Array(4 + n * IMAGE + n);
  new DataView(out.buffer).setUint32(0, n, true);
  for (let i = 0; i < n; i++) {
    out.set(ds.raw(i).data, 4 + i * IMAGE);
    out[4 + n * IMAGE + i] = ds.label(i);
  }
  return out;
}

export async function buildWeb(): Promise<string> {
  // the data files are all written below: none of an earlier build's stays
  rmSync(join(WEB_OUT, 'data'), { recursive: true, force: true });
  mkdirSync(join(WEB_OUT, 'data'), { recursive: true });
  mkdirSync(join(WEB_OUT, 'models'), { recursive: true });
  const r = await build({
    entryPoints: ENTRIES.map((e) => join(root, 'web', `${e}.ts`)).filter(existsSync),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: WEB_OUT,
    plugins: [nodeShims],
    logLevel: 'warning',
    metafile: true,
    minify: true,
    // the kernel cache tells gpu.js's texture classes apart by their names
    keepNames: true,
    sourcemap: true,
    // what the page's result.json records as the CLI's does: the package version and the commit it was built from
    define: { PTSLAB_BUILD: JSON.stringify({ version: packageVersion(), commit: gitCommit() }) },
  });
  // what went into the bundle, for whoever trims it (npx esbuild --analyze reads it)
  writeFileSync(join(WEB_OUT, 'meta.json'), JSON.stringify(r.metafile));
  for (const f of readdirSync(join(root, 'web')).filter((f) => f.endsWith('.html'))) copyFileSync(join(root, 'web', f), join(WEB_OUT, f));
  for (const m of PAGE_MODELS) copyFileSync(bundledModelInfo(m).weights, join(WEB_OUT, pageFiles(m).weights));
  // the worker's wasm kernels (core/backend/cpu/browser.ts): the non-shared builds, next to worker.js; compiled first
  // when missing or older than a kernel source (as the Node loader does), since `npm run web` does not run build-wasm
  for (const [b, file] of [['simdNoShared', NOSHARED_FILES.simd], ['fmaNoShared', NOSHARED_FILES.fma]] as const) {
    const built = existsSync(wasmBuilds[b].file) ? statSync(wasmBuilds[b].file).mtimeMs : -1;
    if (built < 0 || kernelSourcePaths().some((s) => statSync(s).mtimeMs > built)) await buildWasm(b);
    copyFileSync(wasmBuilds[b].file, join(WEB_OUT, file));
  }
  // the first CALIB_IMAGES training images, and the CLI's seeded evaluation subset of the held-out split (kit.heldOut)
  // (per dataset: the models of one dataset share its files)
  const byDataset = new Map(PAGE_MODELS.map((m) => [pageDataset(m), m]));
  for (const [d, m] of byDataset) {
    const files = pageFiles(m);
    writeFileSync(join(WEB_OUT, files.calib), imageFile(loadDataset(d, 'train', { augment: false }), CALIB_IMAGES));
    writeFileSync(join(WEB_OUT, files.test), imageFile(loadExperiment({ model: m }).heldOut({ images: TEST_IMAGES }), TEST_IMAGES));
  }
  return WEB_OUT;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(`wrote ${await buildWeb()} (serve it with any static file server)`);
