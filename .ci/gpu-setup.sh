#!/usr/bin/env bash
# .ci/gpu-setup.sh: make gpu.js's WebGL path (headless-gl, `gl` on npm) usable on a Debian CI machine without a GPU.
#
# npm leaves out `gl`, gpu.js's optional dependency: no prebuilt binary can be downloaded here, and npm 11 blocks
# dependency install scripts by default (allowScripts). This script installs the Debian packages that a source
# build and a virtual display need, then builds `gl` (the version gpu.js pins) inside node_modules with node-gyp
# against node's local headers, never touching package.json or package-lock.json. WebGL then runs on Mesa llvmpipe
# (software) under Xvfb (`xvfb-run -a`): a correctness check of the WebGL kernels, not a fast path.
#
# Run it after `npm ci` (which wipes node_modules/gl again). Idempotent and fast on a machine that has done it:
# - gl loads and xvfb-run exists: nothing to do (about 1 s);
# - node_modules was reinstalled: gl's JS comes from npm's cache and the addon from the build cache
#   ($GPU_SETUP_CACHE, default ~/.cache/ptslab-gl, keyed by gl version, node ABI and arch): seconds;
# - otherwise: apt packages (about 1 min), the ANGLE + addon build (2.5 min on 2 idle cores; 7 min on a busy one).
# Env: GPU_SETUP_FORCE=1 rebuilds gl even if it loads.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$SECONDS
log() { echo "[gpu-setup +$((SECONDS - t0))s] $*"; }

if [ ! -f node_modules/gpu.js/package.json ]; then
  echo "gpu-setup: node_modules/gpu.js missing; run npm ci first" >&2
  exit 1
fi
GL_VERSION=$(node -p "require('./node_modules/gpu.js/package.json').optionalDependencies.gl")
CACHE="${GPU_SETUP_CACHE:-$HOME/.cache/ptslab-gl}/gl-$GL_VERSION-abi$(node -p process.versions.modules)-$(uname -m)"
ADDON=node_modules/gl/build/Release/webgl.node

gl_version_ok() {
  [ -f node_modules/gl/package.json ] && [ "$(node -p "require('./node_modules/gl/package.json').version")" = "$GL_VERSION" ]
}
gl_ok() { gl_version_ok && node -e "require('gl')" >/dev/null 2>&1; }

apt_install() { log "apt: $*"; bash .ci/apt-install.sh "$@"; }

if [ "${GPU_SETUP_FORCE:-0}" != 1 ] && command -v xvfb-run >/dev/null && gl_ok; then
  log "gl@$GL_VERSION already built and xvfb-run present: nothing to do"
  exit 0
fi

# 1. What running needs: Xvfb, Mesa's GL (llvmpipe) and the X libraries the addon links.
apt_install xvfb xauth libgl1 libgl1-mesa-dri libx11-6 libxext6

# 2. gl's JavaScript and dependencies, install scripts off (prebuild-install would try GitHub and fail).
if ! gl_version_ok; then
  log "npm install --no-save --ignore-scripts gl@$GL_VERSION"
  npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error "gl@$GL_VERSION"
fi

# 3. The native addon: from the build cache when this gl/node/arch was built before, else built from source.
if [ "${GPU_SETUP_FORCE:-0}" != 1 ] && [ -f "$CACHE/webgl.node" ] && ! gl_ok; then
  mkdir -p "$(dirname "$ADDON")" && cp "$CACHE/webgl.node" "$ADDON"
  gl_ok && log "addon restored from $CACHE"
fi
if [ "${GPU_SETUP_FORCE:-0}" = 1 ] || ! gl_ok; then
  apt_install build-essential python3 pkg-config libxi-dev libglu1-mesa-dev libglew-dev libxext-dev libx11-dev
  # nodedir: node's own headers (no download, which fails offline); falls back to node-gyp's download.
  NODEDIR=$(dirname "$(dirname "$(command -v node)")")
  [ -f "$NODEDIR/include/node/node.h" ] || NODEDIR=""
  log "node-gyp rebuild in node_modules/gl (nodedir=${NODEDIR:-download}, $(nproc) jobs)"
  (
    cd node_modules/gl
    ../.bin/node-gyp rebuild --loglevel=warn -j "$(nproc)" ${NODEDIR:+--nodedir="$NODEDIR"} >/tmp/gpu-setup-gl-build.log 2>&1
  ) || { tail -40 /tmp/gpu-setup-gl-build.log >&2; echo "gpu-setup: gl build failed (log: /tmp/gpu-setup-gl-build.log)" >&2; exit 1; }
  gl_ok || { echo "gpu-setup: gl built but does not load: $(node -e "require('gl')" 2>&1 | head -5)" >&2; exit 1; }
  mkdir -p "$CACHE" && cp "$ADDON" "$CACHE/webgl.node" && log "addon cached in $CACHE"
fi

# 4. Smoke test: a WebGL context on a virtual display.
xvfb-run -a -s "-screen 0 640x480x24" node -e "
  const c = require('gl')(1, 1);
  if (!c) { console.error('[gpu-setup] no WebGL context under Xvfb'); process.exit(1); }
  console.log('[gpu-setup] WebGL:', c.getParameter(c.VERSION), '|', c.getParameter(c.RENDERER), '| OES_texture_float:', !!c.getExtension('OES_texture_float'));"
log "done"
