// `npm run web`: the static page in dist-web/ (serve the folder with any static file server): index.html, main.js
// (web/main.ts bundled for the browser with esbuild; Node built-ins, which the browser path never calls, become
// modules that throw when used), the bundled model's weights and two subsets of the Fashion-MNIST split as files:
// data/calib.bin (calibration images, from the training split) and data/test.bin (held-out images).

import { build, type Plugin } from 'esbuild';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../nn/train/index.js';
import { bundledModelInfo } from '../experiments/models/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEB_OUT = join(root, 'dist-web');
export const CALIB_IMAGES = 256, TEST_IMAGES = 500;

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

/** n images of a dataset split as the page's binary format (web/run.ts parseImageSet reads it). */
function imageFile(split: 'train' | 'test', n: number): Uint8Array {
  const ds = loadDataset('fashion-mnist', split, { augment: false });
  const out = new Uint8Array(4 + n * 784 * 4 + n);
  new DataView(out.buffer).setUint32(0, n, true);
  const images = new Float32Array(out.buffer, 4, n * 784);
  for (let i = 0; i < n; i++) {
    const s = ds.get(i);
    images.set(s.image.toArray(), i * 784);
    out[4 + n * 784 * 4 + i] = s.label;
  }
  return out;
}

export async function buildWeb(): Promise<string> {
  mkdirSync(join(WEB_OUT, 'data'), { recursive: true });
  mkdirSync(join(WEB_OUT, 'models'), { recursive: true });
  const r = await build({
    entryPoints: [join(root, 'web', 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: join(WEB_OUT, 'main.js'),
    plugins: [nodeShims],
    logLevel: 'warning',
    metafile: true,
    minify: true,
    // the kernel cache tells gpu.js's texture classes apart by their names
    keepNames: true,
    sourcemap: true,
  });
  // what went into the bundle, for whoever trims it (npx esbuild --analyze reads it)
  writeFileSync(join(WEB_OUT, 'meta.json'), JSON.stringify(r.metafile));
  copyFileSync(join(root, 'web', 'index.html'), join(WEB_OUT, 'index.html'));
  copyFileSync(bundledModelInfo('fmnist-resnet20').weights, join(WEB_OUT, 'models', 'fmnist-resnet20.safetensors'));
  writeFileSync(join(WEB_OUT, 'data', 'calib.bin'), imageFile('train', CALIB_IMAGES));
  writeFileSync(join(WEB_OUT, 'data', 'test.bin'), imageFile('test', TEST_IMAGES));
  return WEB_OUT;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(`wrote ${await buildWeb()} (serve it with any static file server)`);
