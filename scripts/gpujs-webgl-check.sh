#!/usr/bin/env bash
# scripts/gpujs-webgl-check.sh: run the gpujs backend's test suite and the backend parity suite (every kernel against the reference) once in WebGL mode (gpu.js 'headlessgl', i.e.
# headless-gl on Mesa llvmpipe) under a virtual X display. Needs .ci/gpu-setup.sh to have run (it builds `gl` and
# installs Xvfb). The suite fails, rather than skips, when PTSLAB_GPUJS_MODE names a mode that cannot start, so a
# broken WebGL setup is a red CI run. Also available as `npm run test:webgl`.
# Env: SKIP_BUILD=1 to reuse an existing dist/ (CI builds once before). Type errors elsewhere in the tree are the
# main build's business: tsc still emits, so they are reported here as a warning and the check goes on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v xvfb-run >/dev/null || { echo "gpujs-webgl-check: xvfb-run missing; run .ci/gpu-setup.sh" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  npx tsc -p tsconfig.json >/tmp/gpujs-webgl-check-tsc.log 2>&1 ||
    echo "gpujs-webgl-check: warning: tsc reported errors (see /tmp/gpujs-webgl-check-tsc.log); testing the emitted JS" >&2
fi
[ -f dist/tests/gpujs.test.js ] || { echo "gpujs-webgl-check: dist/tests/gpujs.test.js missing; build first" >&2; exit 1; }
# -a: first free display number (parallel jobs); 24-bit screen so Mesa offers float-capable visuals.
PTSLAB_GPUJS_MODE=headlessgl exec xvfb-run -a -s "-screen 0 640x480x24" \
  node --enable-source-maps node_modules/uvu/bin.js dist/tests "(gpujs(-device|-resident)?|backend-parity)\.test\.js$"
