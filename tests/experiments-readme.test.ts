// Generated README blocks: a results block is the top-1 table of a committed results.json (values, pending cells,
// the exactness line), a gpucheck block is a committed GPU check's table and a browser block a test:browser log's
// runs, stale blocks are reported, text outside the blocks is kept, a missing folder is an error
// naming it, and the repository's own README files are up to date with the committed results and model records.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonFileError } from '../experiments/json-file.js';
import { benchBlock, renderGenerated, resultsBlock, wrapWords } from '../experiments/runner/readme.js';
import { throwsMatching } from './helpers/throws.js';

const CLI = fileURLToPath(new URL('../scripts/cli.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'ptslab-readme-'));

function cell(method: string, sparsity: number, top1: number | null, zeros = Math.round(sparsity * 1000)) {
  const base = { key: `${method}-s${sparsity}-seed0`, index: 0, method, sparsity, seed: 0, ablation: null, config: 'x.yaml' };
  if (top1 === null) return { ...base, status: 'pending' };
  return {
    ...base,
    status: 'done',
    result: {
      method, model: 'tiny-r20', arch: 'resnet20', dataset: 'mnist', targetSparsity: sparsity, achievedSparsity: zeros / 1000,
      prunableParams: 1000, zeroParams: zeros, top1, denseTop1: 99.1, seconds: 1, seed: 0, backend: 'cpu',
      commit: 'abcdef0123456789', version: '0.1.0', config: {}, evalImages: 500, layers: [],
    },
  };
}

mkdirSync(join(root, 'runs', 'a'), { recursive: true });
writeFileSync(join(root, 'runs', 'a', 'results.json'), JSON.stringify({
  name: 'a', smoke: false,
  cells: [cell('fcpts', 0.5, 98.5), cell('fcpts', 0.9, 91.25, 901), cell('lamp', 0.5, 97), cell('lamp', 0.9, null)],
}));

test('a results block is the top-1 table of results.json, with pending cells and the exactness line', () => {
  const block = resultsBlock(root, 'runs/a');
  // the caption is wrapped at 118 columns like the prose around it; read it as one line
  const caption = block.split('\n\n')[0];
  assert.ok(caption.includes('\n'), 'a caption this long is wrapped');
  for (const line of caption.split('\n')) assert.ok(line.length <= 118, line);
  const flat = caption.replaceAll('\n', ' ');
  assert.match(flat, /Top-1 \(%\) of `tiny-r20` \(resnet20, mnist\) on 500 held-out images; dense 99\.10%\./);
  assert.match(flat, /3 cells finished \(1 more started or failed\); backend cpu; commit abcdef0\./);
  // the 0.9 fcpts cell has 901 zeros for round(0.9 x 1000) = 900: one weight off
  assert.match(flat, /at most 1 from round\(target x 1,000\)/);
  assert.match(block, /\| method \| 50% \| 90% \|/);
  assert.match(block, /\| fcpts \| 98\.50 \| 91\.25 \|/);
  assert.match(block, /\| lamp \| 97\.00 \| pending \|/);
});

test('wrapWords breaks at spaces only and keeps a long word whole', () => {
  assert.is(wrapWords('aa bb cc dd', 5), 'aa bb\ncc dd');
  assert.is(wrapWords('aa bbbbbbb cc', 5), 'aa\nbbbbbbb\ncc');
  assert.is(wrapWords('short', 80), 'short');
});

test('renderGenerated rewrites only the blocks and lists the stale ones', () => {
  const text = 'intro\n<!-- ptslab:results runs/a -->\nold table\n<!-- /ptslab:results -->\noutro\n';
  const r = renderGenerated(text, root);
  assert.equal(r.stale, ['ptslab:results runs/a']);
  assert.ok(r.text.startsWith('intro\n<!-- ptslab:results runs/a -->\nTop-1'));
  assert.ok(r.text.endsWith('\n<!-- /ptslab:results -->\noutro\n'));
  assert.not.match(r.text, /old table/);
  // a second pass over the fresh text changes nothing
  const again = renderGenerated(r.text, root);
  assert.equal(again.stale, []);
  assert.is(again.text, r.text);
});

test('a results block naming a missing folder is an error naming the file', () => {
  throwsMatching(() => renderGenerated('<!-- ptslab:results runs/nope -->\n<!-- /ptslab:results -->', root), JsonFileError, /ptslab:results runs\/nope: file not found: .*runs\/nope\/results\.json/);
});

test('a bench block tabulates the cases with a torch row, the ratios and the targets judged on them', () => {
  const row = (c: string, engine: string, ms: number) => JSON.stringify({ case: c, shape: '8x3x224x224', engine, gflops: 1, ms });
  writeFileSync(join(root, 'bench.jsonl'), [
    row('gemm-1024', 'ptslab-cpu', 10), // no torch row, not a headline kernel: not shown
    JSON.stringify({ case: 'conv3x3-256-56-fwd', shape: 'x', engine: 'ptslab-cpu', gflops: 40, ms: 1 }),
    JSON.stringify({ case: 'conv3x3-256-56-fwd', shape: 'x', engine: 'tfjs-wasm', gflops: 20, ms: 2 }),
    JSON.stringify({ case: 'conv3x3-256-56-fwd', shape: 'x (channels / 8: slow engine)', engine: 'tfjs-cpu', gflops: 0.5, ms: 2 }),
    row('resnet18-train-step-b8', 'ptslab-cpu', 1000), row('resnet18-train-step-b8', 'torch', 500),
    row('resnet18-s90-infer-b1', 'ptslab-cpu', 90), row('resnet18-s90-infer-b1', 'ptslab-cpu-sparse', 30), row('resnet18-s90-infer-b1', 'torch', 20),
  ].join('\n') + '\n');
  const block = benchBlock(root, 'bench.jsonl');
  assert.match(block, /^From `bench.jsonl`/);
  assert.match(block, /\| resnet18-train-step-b8 \| 8x3x224x224 \| 1000 \| – \| 500 \| 2.00x \| – \|/);
  assert.match(block, /\| resnet18-s90-infer-b1 \| 8x3x224x224 \| 90.0 \| 30.0 \| 20.0 \| 4.50x \| 1.50x \|/);
  assert.not.match(block, /gemm-1024/);
  assert.match(block, /\| conv3x3-256-56-fwd \| 40.0 \| 20.0 \| 0.500\* \| 2.00x \| 80.00x \|/);
  assert.not.match(block, /conv3x3-256-56-fwdbwd/);
  assert.match(block, /- ResNet-18 train step b8: ptslab-cpu \/ torch = 1000.0 \/ 500.0 ms = 2.00 \(target <= 2.5\): met/);
  assert.match(block, /- ResNet-18 90% sparse, dense \/ sparse, b1: ptslab-cpu \/ ptslab-cpu-sparse = 90.0 \/ 30.0 ms = 3.00 \(target >= 2.5\): met/);
  assert.match(block, /sparse faster than torch, b1: ptslab-cpu-sparse \/ torch = 30.0 \/ 20.0 ms = 1.50 \(target < 1\): not met/);
  assert.match(block, /MobileNetV2 train step b8: ptslab-cpu \/ torch \(target <= 2\): not measured/);
  assert.throws(() => benchBlock(root, 'missing.jsonl'), /ptslab:bench missing.jsonl: cannot read/);
});

test('the models block lists the three bundled models with their goals', () => {
  const r = renderGenerated('<!-- ptslab:models -->\n<!-- /ptslab:models -->\n', root);
  assert.match(r.text, /\| `fmnist-resnet20` \| resnet20 \| fashion-mnist \| >= 92% \|/);
  assert.match(r.text, /\| `fmnist-mobilenetv2` \| mobilenetv2 x0\.5 \| fashion-mnist \| >= 91% \|/);
  assert.match(r.text, /\| `mnist-resnet20` \| resnet20 \| mnist \| >= 99\.3% \|/);
});

test('a gpucheck block: gpu.js WebGL against the cpu backend per case, the renderer, commit and settings', () => {
  const row = (c: string, engine: string, gflops: number | null, ms: number) => ({ case: c, shape: `${c} shape`, engine, gflops, ms });
  writeFileSync(join(root, 'check.json'), JSON.stringify({
    when: '2026-12-03T19:20:10.021Z', commit: 'ff96af220fecbf878689f7a89eb17c921668e72c',
    settings: { reps: 2, warmup: 1, fcptsBatch: 8, fcptsSteps: 1, fcptsWarmup: 1 }, browser: '156.0', renderer: { renderer: 'ANGLE (llvmpipe)', version: 'WebGL 2.0' },
    attempts: [{ angle: 'vulkan', args: ['--use-angle=vulkan'], ok: false }, { angle: 'gl-egl', args: ['--use-angle=gl-egl'], ok: true }],
    rows: [row('gemm-512', 'ptslab-gpujs-webgl2', 0.73, 368), row('step', 'ptslab-gpujs-webgl2', null, 3781.7), row('gemm-512', 'ptslab-cpu', 26.3, 10.2), row('step', 'ptslab-cpu', null, 127.66)],
  }));
  const r = renderGenerated('<!-- ptslab:gpucheck check.json -->\n<!-- /ptslab:gpucheck -->\n', root).text;
  // the caption is wrapped like the prose around it; read it as one line
  assert.match(r.replace(/\n(?=[^|<\n])/g, ' '), /commit ff96af2, 2026-12-03\): Chromium 156\.0 with `--use-angle=gl-egl`, WebGL renderer ANGLE \(llvmpipe\); 1 warm-up \+ 2 timed/);
  assert.match(r, /\| gemm-512 \| gemm-512 shape \| 368 \| 0\.730 \| 10\.2 \| 26\.3 \| 36\.1x \|/);
  assert.match(r, /\| step \| step shape \| 3781\.7 \| – \| 127\.66 \| – \| 29\.6x \|/);
  throwsMatching(() => renderGenerated('<!-- ptslab:gpucheck nope.json -->\n<!-- /ptslab:gpucheck -->', root), JsonFileError, /ptslab:gpucheck nope\.json: file not found/);
});

test('a browser block: the log header, each page run, the Node run and the checks counted', () => {
  writeFileSync(join(root, 'browser.txt'), [
    '# npm run test:browser at commit abc1234, somewhere', '  [page] [0.0 s] loading', 'page q=1: loaded in 513 ms, 1411 KiB fetched before the load event',
    'page q=1: 179.1 s on gpu.js webgl2 in this tab; done: fcpts 93.0%', 'node (cpu backend): dense 97%, fcpts 93%', 'ok   a', 'ok   b', 'FAIL c', '',
  ].join('\n'));
  const r = renderGenerated('<!-- ptslab:browser browser.txt -->\n<!-- /ptslab:browser -->\n', root).text;
  assert.match(r, /From `browser\.txt`: npm run test:browser at commit abc1234, somewhere\. 2 checks passed, 1 failed\.\n\n/);
  assert.match(r, /- `page q=1: loaded in 513 ms, 1411 KiB fetched before the load event`\n- `page q=1: 179\.1 s on gpu\.js webgl2 in this tab; done: fcpts 93\.0%`\n- `node \(cpu backend\): dense 97%, fcpts 93%`\n<!--/);
  assert.not.match(r, /loading/);
  writeFileSync(join(root, 'empty.txt'), '# header only\n');
  throwsMatching(() => renderGenerated('<!-- ptslab:browser empty.txt -->\n<!-- /ptslab:browser -->', root), Error, /ptslab:browser empty\.txt: no page runs in the log/);
});

test('the repository README files match the committed results and model records (ptslab readme --check)', () => {
  const r = spawnSync(process.execPath, [CLI, 'readme', '--check'], { encoding: 'utf8' });
  assert.is(r.status, 0, `ptslab readme --check: ${r.stderr}${r.stdout}`);
  const stale = spawnSync(process.execPath, [CLI, 'readme', '--check', join(root, 'stale.md')], { encoding: 'utf8' });
  assert.is(stale.status, 2, 'a missing file is a usage error');
  writeFileSync(join(root, 'stale.md'), '<!-- ptslab:models -->\nold\n<!-- /ptslab:models -->\n');
  const r2 = spawnSync(process.execPath, [CLI, 'readme', '--check', join(root, 'stale.md')], { encoding: 'utf8' });
  assert.is(r2.status, 1);
  assert.match(r2.stderr, /out of date \(run `ptslab readme`\): .*stale\.md: ptslab:models/);
});

test.run();
