// One gpujs conv call (forward, backward-input, backward-weight) with its result read back, on ResNet-20 shapes (3x3, pad
// 1, batch 8), mean of 3 after a warm-up. Takes the repository root to load (a worktree of another commit compares
// before and after): PTSLAB_GPUJS_MODE=headlessgl xvfb-run -a -s '-screen 0 640x480x24' node scripts/gpujs-conv-calls.mjs ROOT
const root = process.argv[2];
const { createGpujsBackend } = await import(`${root}/dist/core/backend/gpujs/index.js`);
const b = createGpujsBackend({});
const r = (n) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const st = (s) => s.map((_, i) => s.slice(i + 1).reduce((a, c) => a * c, 1));
const v = (d, s) => ({ data: d, shape: s, strides: st(s), offset: 0 });
const host = (x) => (x.read ? x.read() : x); // a device array (after) or a host array (before)
const p = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
for (const [N, C, H] of [[8, 16, 28], [8, 32, 14], [8, 64, 7]]) {
  const x = v(r(N * C * H * H), [N, C, H, H]), w = v(r(C * C * 9), [C, C, 3, 3]), gy = v(r(N * C * H * H), [N, C, H, H]);
  const t = (f) => { host(f()); const t0 = performance.now(); for (let i = 0; i < 3; i++) host(f()); return ((performance.now() - t0) / 3).toFixed(1); };
  console.log(`N${N} C${C} ${H}x${H}: fwd ${t(() => b.conv2d(x, w, null, p))} ms, bwd-in ${t(() => b.conv2dBackwardInput(gy, w, x.shape, p))} ms, bwd-w ${t(() => b.conv2dBackwardWeight(gy, x, w.shape, p))} ms`);
}
