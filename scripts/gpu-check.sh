#!/usr/bin/env bash
# The GPU check: the benchmark page's own cases (web/bench-cases.ts: matmul 512 and 1024, 3x3 convolutions at
# ResNet-20 and ResNet-18 shapes, one FCPTS iteration on fmnist-resnet20 at batch 64) on gpu.js WebGL in headless
# Chromium, against the same cases on the cpu backend in Node; prints one table (ms and GFLOP/s of each, their ratio,
# the WebGL renderer string) and writes the rows as JSON to --out (default test-output/gpu-check.json).
#
#   scripts/gpu-check.sh [--prebuilt | --pack] [options of web/gpu-check.ts]
#     (neither)        npm run web first (tsc, the page's bundles into dist-web/), then the check
#     --prebuilt       use dist-web/ and dist/ as they are, build nothing; without dist/core the cpu side is skipped
#     --pack           build, and make dist/ + dist-web/ runnable without node_modules (below); runs no check
#     --angle A,B      ANGLE backends tried in order (default vulkan,gl-egl): vulkan = --use-angle=vulkan
#                      --enable-features=Vulkan --disable-vulkan-surface --enable-unsafe-webgpu --ignore-gpu-blocklist
#     --swiftshader    --use-angle=swiftshader --enable-unsafe-swiftshader instead (software: no GPU needed)
#     --quick          warmup 1, reps 2, FCPTS batch 8 with 1 + 1 iterations: for SwiftShader, a few minutes
#     --reps --warmup --batch --steps --fcpts-warmup --cases --no-cpu --allow-software --timeout --out: see --help
#   env: PTSLAB_CHROMIUM (default /usr/bin/chromium), PTSLAB_CHROMIUM_ARGS (more flags), PTSLAB_GPU_CHECK_ANGLE
#
# Vulkan and software: an attempt counts only when the page gets WebGL2 from a hardware renderer (the renderer
# string is not SwiftShader / llvmpipe); otherwise the check prints why and tries the next --angle backend, and fails
# (exit 2) when none is left. It never drops to software by itself (--swiftshader asks for it). On a machine without
# a GPU, Chromium 156 here with the Vulkan flags still gives WebGL2, but on SwiftShader (Vulkan's software ICD), so the
# default run fails there with that message: use --swiftshader.
#
# What a machine needs (e.g. a lent GPU machine that gets only the working tree and up to 64 MiB of carried ignored
# paths, no network, no node_modules):
#   - node >= 20 on PATH. The script cannot bring one (a node binary is ~100 MB, over the carry limit): without it
#     the check cannot run there, and says so (exit 127).
#   - Chromium or Chrome (PTSLAB_CHROMIUM, default /usr/bin/chromium), with the NVIDIA driver's Vulkan ICD (or its
#     EGL for --angle gl-egl) and the libraries Chromium links against. Not carryable either (hundreds of MB).
#   - dist/ and dist-web/, carried. `scripts/gpu-check.sh --pack` prepares them here: npm run web, then copies into
#     dist/node_modules/ the packages the driver and its cpu side import at run time (playwright-core, ~14 MB, and
#     zod, fflate, pngjs, ...: found by esbuild from dist/web/gpu-check.js's imports, with their dependencies; the
#     wasm kernels' compiler is left out, the prebuilt kernels are in dist/), which node resolves from dist/ without
#     a node_modules at the root. dist/ is then ~30 MB and dist-web/ ~18 MB (here): carry ["dist", "dist-web"].
#   Then, there: scripts/gpu-check.sh --prebuilt (add --no-cpu to skip the cpu side). --prebuilt builds nothing and
#   marks the prebuilt wasm kernels as newer than their sources (a copy may reorder mtimes, and a stale-looking
#   binary would be rebuilt with the compiler, which is not carried). Expected (not measured: no GPU run yet): 2 to 5
#   minutes on a GPU, mostly kernel compilation in the page and the cpu side's FCPTS iterations at batch 64.
set -euo pipefail
cd "$(dirname "$0")/.."

prebuilt=0
pack=0
args=()
for a in "$@"; do
  case "$a" in
    --prebuilt) prebuilt=1 ;;
    --pack) pack=1 ;;
    *) args+=("$a") ;;
  esac
done

if ! command -v node >/dev/null 2>&1; then
  echo "gpu-check: no node on PATH: the check needs node >= 20 (and Chromium) on this machine" >&2
  exit 127
fi

if [ "$pack" = 1 ]; then
  # dist/ and dist-web/ for a machine without node_modules (see the header)
  npm run web
  rm -rf dist/node_modules
  node --input-type=module - <<'JS'
import { build } from 'esbuild';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
// every bare import reachable from the driver (static or dynamic), as package names
const r = await build({ entryPoints: ['dist/web/gpu-check.js'], bundle: true, platform: 'node', format: 'esm', packages: 'external', write: false, metafile: true, logLevel: 'error', outfile: 'x.js' });
const name = (p) => p.split('/').slice(0, p.startsWith('@') ? 2 : 1).join('/');
const roots = new Set();
for (const i of Object.values(r.metafile.inputs)) for (const im of i.imports) if (im.external && !im.path.startsWith('node:')) roots.add(name(im.path));
// the wasm kernels' compiler: used to build dist/core/backend/cpu/*.wasm, which are prebuilt
for (const n of ['assemblyscript', 'binaryen']) roots.delete(n);
const todo = [...roots], done = new Set();
while (todo.length) {
  const n = todo.pop();
  if (done.has(n)) continue;
  const dir = join('node_modules', n);
  if (!existsSync(dir)) throw new Error(`gpu-check --pack: ${n} is not installed (npm ci first)`);
  done.add(n);
  const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  todo.push(...Object.keys(pj.dependencies ?? {}), ...Object.keys(pj.optionalDependencies ?? {}).filter((d) => existsSync(join('node_modules', d))));
  cpSync(dir, join('dist', 'node_modules', n), { recursive: true, dereference: true });
}
console.log(`gpu-check --pack: copied into dist/node_modules: ${[...done].sort().join(' ')}`);
JS
  echo "gpu-check --pack: $(du -sh dist | cut -f1) dist/, $(du -sh dist-web | cut -f1) dist-web/; carry [\"dist\", \"dist-web\"] and run: scripts/gpu-check.sh --prebuilt"
  exit 0
fi

if [ "$prebuilt" = 0 ]; then
  npm run web
else
  for f in dist/web/gpu-check.js dist-web/bench.html dist-web/bench.js dist-web/models/fmnist-resnet20.safetensors; do
    if [ ! -e "$f" ]; then
      echo "gpu-check --prebuilt: $f is missing (make dist/ and dist-web/ with scripts/gpu-check.sh --pack on a machine with node_modules, and bring both)" >&2
      exit 2
    fi
  done
  if [ ! -e dist/node_modules/playwright-core/package.json ] && [ ! -e node_modules/playwright-core/package.json ]; then
    echo "gpu-check --prebuilt: playwright-core is in neither dist/node_modules nor node_modules (scripts/gpu-check.sh --pack puts it in dist/)" >&2
    exit 2
  fi
  if [ ! -e dist/core/backend/all.js ]; then
    echo "gpu-check --prebuilt: dist/core is missing: the cpu side is skipped" >&2
    args+=(--no-cpu)
  else
    # prebuilt kernels count as up to date (see the header)
    touch dist/core/backend/cpu/kernels*.wasm 2>/dev/null || true
  fi
fi

exec node dist/web/gpu-check.js ${args[@]+"${args[@]}"}
