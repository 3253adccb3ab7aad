// The GPU check's driver (scripts/gpu-check.sh runs it; `node dist/web/gpu-check.js --help`): serves dist-web/ with a
// plain static file server, opens bench.html in headless Chromium (playwright-core; /usr/bin/chromium or
// PTSLAB_CHROMIUM) with the ANGLE flags that reach a GPU, checks which WebGL renderer the page got, runs the page's
// benchmark (web/bench.ts: matmul, 3x3 convolutions, one FCPTS iteration) on gpu.js WebGL, then the same cases
// (web/bench-cases.ts) in this process on the cpu backend, and prints one table (gpu.js-WebGL against cpu, ms and
// GFLOP/s, with the renderer string). The rows go as JSON to --out (default test-output/gpu-check.json).
//
// ANGLE backends (--angle, a comma list tried in order; default vulkan,gl-egl):
//   vulkan       --use-angle=vulkan --enable-features=Vulkan --disable-vulkan-surface --enable-unsafe-webgpu
//                (the flags reported to reach an NVIDIA GPU from headless Chromium)
//   gl-egl, gl   --use-angle=<name> (ANGLE over the system's OpenGL / EGL driver: a second way onto the GPU)
//   swiftshader  --use-angle=swiftshader --enable-unsafe-swiftshader (software: for a machine without a GPU; also
//                --swiftshader)
// each with --ignore-gpu-blocklist, plus PTSLAB_CHROMIUM_ARGS (space-separated) if set. An attempt fails when the
// page gets no WebGL2 context, or (any backend but swiftshader, unless --allow-software) a software renderer
// (SwiftShader, llvmpipe): the check says so and tries the next backend, and exits 2 when none is left. It never
// falls back to software by itself: numbers from a software rasteriser must not pass for a GPU's.
//
// Only node: built-ins and playwright-core are imported up front; the cpu side (core/, experiments/, nn/, sparsity/
// under dist/) is imported when it runs, so --no-cpu works with dist/web/gpu-check.js, dist-web/ and playwright-core
// alone (see scripts/gpu-check.sh for what a machine needs).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { serveStatic } from './serve.js';
import type { BenchReport, BenchRow, GlInfo } from './bench-cases.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/web -> the repository root. */
const root = resolve(here, '..', '..');
const WEB_OUT = join(root, 'dist-web');
const MODEL_FILE = join(WEB_OUT, 'models', 'fmnist-resnet20.safetensors');

const USAGE = `node dist/web/gpu-check.js [options]   (scripts/gpu-check.sh builds first, then runs this)
  --out FILE         the JSON report (default test-output/gpu-check.json)
  --angle A[,B...]   ANGLE backends to try in order: vulkan, gl-egl, gl, swiftshader, ... (default vulkan,gl-egl;
                     env PTSLAB_GPU_CHECK_ANGLE)
  --swiftshader      = --angle swiftshader (software WebGL: runs on a machine without a GPU)
  --allow-software   accept a software renderer from a non-swiftshader backend instead of failing the attempt
  --quick            fewer runs and a small FCPTS batch (warmup 1, reps 2, batch 8, steps 1, fcpts warm-up 1):
                     what a run on SwiftShader needs to end in minutes
  --reps N --warmup N --batch B --steps S --fcpts-warmup N   the same one by one (defaults 5, 2, 64, 3, 2)
  --cases a,b        only cases whose name contains one of these
  --no-cpu           skip the cpu-backend side in Node (automatic when dist/core is missing)
  --timeout S        seconds the page may take (default 900)`;

const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(f);
const opt = (f: string) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : undefined);
const intOpt = (f: string, d: number) => {
  const v = opt(f);
  if (v === undefined) return d;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${f}: expected a whole number, got '${v}'`);
  return n;
};

function angleArgs(angle: string): string[] {
  const extra = process.env.PTSLAB_CHROMIUM_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  const base = [`--use-angle=${angle}`, '--ignore-gpu-blocklist', ...extra];
  if (angle === 'vulkan') return [...base, '--enable-features=Vulkan', '--disable-vulkan-surface', '--enable-unsafe-webgpu'];
  if (angle === 'swiftshader') return [...base, '--enable-unsafe-swiftshader'];
  return base;
}

const software = (r: string) => /swiftshader|llvmpipe|softpipe|software/i.test(r);

interface Attempt {
  angle: string;
  args: string[];
  probe: GlInfo | null;
  ok: boolean;
  why?: string;
}

/** Launch Chromium with one ANGLE backend, open the page and read its WebGL probe; the page stays open when ok. */
async function tryAngle(exe: string, url: string, angle: string, allowSoftware: boolean): Promise<{ attempt: Attempt; browser?: Browser; page?: Page }> {
  const args = angleArgs(angle);
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: exe, headless: true, args });
  } catch (e) {
    return { attempt: { angle, args, probe: null, ok: false, why: `Chromium did not start: ${(e as Error).message.split('\n')[0]}` } };
  }
  const page = await browser.newPage();
  const t0 = Date.now();
  page.on('console', (m) => {
    const t = `${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s`;
    if (m.text().startsWith('[bench] ')) console.log(`  [page ${t}] ${m.text().slice(8)}`);
    else if (m.type() === 'error' || m.type() === 'warning') console.log(`  [page ${t} ${m.type()}] ${m.text()}`);
  });
  await page.goto(url);
  await page.waitForFunction("document.getElementById('probe').textContent", undefined, { timeout: 60_000 });
  const probe = JSON.parse((await page.textContent('#probe'))!) as GlInfo | null;
  const fail = async (why: string) => {
    await browser.close();
    return { attempt: { angle, args, probe, ok: false, why } };
  };
  if (!probe) return fail('the page got no WebGL context at all');
  if (!probe.webgl2) return fail(`the page got ${probe.version} (renderer ${probe.renderer}), not WebGL2`);
  if (software(probe.renderer) && angle !== 'swiftshader' && !allowSoftware) {
    return fail(`WebGL2 came from a software renderer (${probe.renderer}), not a GPU (--allow-software accepts it)`);
  }
  return { attempt: { angle, args, probe, ok: true }, browser, page };
}

/** Click Run and wait for the report (the page's status lines are echoed by tryAngle's console handler). */
async function runPage(page: Page, timeoutS: number): Promise<BenchReport> {
  const crashed = new Promise<never>((_, reject) => page.on('pageerror', (e) => reject(new Error(`the page threw: ${e.message}`))));
  crashed.catch(() => undefined);
  await page.click('#run');
  await Promise.race([
    page.waitForFunction("document.getElementById('result').textContent || document.getElementById('error').textContent", undefined, { timeout: timeoutS * 1000 }),
    crashed,
  ]);
  const error = await page.textContent('#error');
  if (error) throw new Error(`the benchmark page failed: ${error}`);
  return JSON.parse((await page.textContent('#result'))!) as BenchReport;
}

interface Settings { reps: number; warmup: number; fcptsBatch: number; fcptsSteps: number; fcptsWarmup: number; cases: string[] }

/** The same cases in this process on the cpu backend (dist/core etc. imported here, only now). */
async function runCpu(s: Settings): Promise<{ rows: BenchRow[]; threads: number; kernels: string }> {
  await import('../core/backend/all.js');
  const { setBackend } = await import('../core/index.js');
  const { runBenchCases } = await import('./bench-cases.js');
  const cpu = await import('../core/backend/cpu/index.js');
  setBackend('cpu');
  let kernels: string;
  try {
    kernels = cpu.cpuKernelInfo().fma ? 'FMA (relaxed SIMD)' : 'SIMD128';
  } catch (e) {
    kernels = `unknown (${(e as Error).message})`;
  }
  try {
    const rows = await runBenchCases(readFileSync(MODEL_FILE), { ...s, onStatus: (t) => void console.log(`  [node] ${t}`) });
    return { rows, threads: cpu.threadCount(), kernels };
  } finally {
    cpu.shutdownThreads();
  }
}

const fmt = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '-' : v.toFixed(digits));

function table(gl: BenchRow[], cpu: BenchRow[], glEngine: string): string {
  const head = ['case', 'shape', `${glEngine} ms`, 'GFLOP/s', 'ptslab-cpu ms', 'GFLOP/s', 'cpu ms / webgl ms'];
  const body = gl.map((g) => {
    const c = cpu.find((r) => r.case === g.case);
    return [g.case, g.shape, fmt(g.ms), fmt(g.gflops), fmt(c?.ms), fmt(c?.gflops), c ? `${+(c.ms / g.ms).toPrecision(3)}x` : '-'];
  });
  for (const c of cpu.filter((c) => !gl.some((g) => g.case === c.case))) body.push([c.case, c.shape, '-', '-', fmt(c.ms), fmt(c.gflops), '-']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((v, i) => (i < 2 ? v.padEnd(w[i]) : v.padStart(w[i]))).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  if (flag('--help') || flag('-h')) {
    console.log(USAGE);
    return 0;
  }
  const quick = flag('--quick');
  const settings: Settings = {
    reps: intOpt('--reps', quick ? 2 : 5), warmup: intOpt('--warmup', quick ? 1 : 2),
    fcptsBatch: intOpt('--batch', quick ? 8 : 64), fcptsSteps: intOpt('--steps', quick ? 1 : 3),
    fcptsWarmup: intOpt('--fcpts-warmup', quick ? 1 : 2), cases: opt('--cases')?.split(',').filter(Boolean) ?? [],
  };
  if (settings.reps < 1 || settings.fcptsSteps < 1) throw new Error('--reps and --steps must be at least 1');
  const angles = (flag('--swiftshader') ? 'swiftshader' : (opt('--angle') ?? process.env.PTSLAB_GPU_CHECK_ANGLE ?? 'vulkan,gl-egl')).split(',').filter(Boolean);
  const out = opt('--out') ?? join('test-output', 'gpu-check.json');
  const timeoutS = intOpt('--timeout', 900);
  const cpuSide = !flag('--no-cpu') && existsSync(join(root, 'dist', 'core', 'backend', 'all.js'));
  const exe = process.env.PTSLAB_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(exe)) {
    console.log(`gpu-check: no browser at ${exe} (install Chromium, or set PTSLAB_CHROMIUM to a Chromium or Chrome binary)`);
    return 2;
  }
  for (const f of ['bench.html', 'bench.js', join('models', 'fmnist-resnet20.safetensors')]) {
    if (!existsSync(join(WEB_OUT, f))) {
      console.log(`gpu-check: dist-web/${f} is missing: build the page first (npm run web, or scripts/gpu-check.sh without --prebuilt)`);
      return 2;
    }
  }
  const q = new URLSearchParams({
    reps: String(settings.reps), warmup: String(settings.warmup), batch: String(settings.fcptsBatch),
    steps: String(settings.fcptsSteps), fcptsWarmup: String(settings.fcptsWarmup), ...(settings.cases.length ? { cases: settings.cases.join(',') } : {}),
  });
  console.log(`gpu-check: ${exe}, ANGLE ${angles.join(' then ')}; ${settings.warmup} warm-up + ${settings.reps} timed runs per kernel case (median), FCPTS batch ${settings.fcptsBatch}: ${settings.fcptsWarmup} warm-up + ${settings.fcptsSteps} timed iterations (median)${cpuSide ? '' : '; no cpu side'}`);
  const t0 = Date.now();
  const { server, url } = await serveStatic(WEB_OUT);
  const attempts: Attempt[] = [];
  let report: BenchReport | null = null;
  let browserVersion = '';
  try {
    for (const angle of angles) {
      const a = await tryAngle(exe, `${url}/bench.html?${q}`, angle, flag('--allow-software'));
      attempts.push(a.attempt);
      if (!a.attempt.ok) {
        console.log(`gpu-check: --use-angle=${angle}: ${a.attempt.why}`);
        continue;
      }
      console.log(`gpu-check: --use-angle=${angle}: ${a.attempt.probe!.version}, renderer ${a.attempt.probe!.renderer} (vendor ${a.attempt.probe!.vendor})`);
      browserVersion = a.browser!.version();
      try {
        report = await runPage(a.page!, timeoutS);
      } finally {
        await a.browser!.close();
      }
      break;
    }
  } finally {
    server.close();
  }
  if (!report) {
    console.log(`gpu-check: FAILED: no ANGLE backend of ${angles.join(', ')} gave gpu.js a${angles.includes('swiftshader') ? '' : ' hardware'} WebGL2 context (see above). ` +
      'On a machine without a GPU use --swiftshader; on one with a GPU check its Vulkan ICD / EGL driver (vulkaninfo, nvidia-smi) or try --angle gl,gles-egl.');
    return 2;
  }
  const pageS = (Date.now() - t0) / 1000;
  console.log(`gpu-check: the page took ${pageS.toFixed(0)} s on ${report.mode}${report.fallbacks.length ? `; gpu.js fallbacks: ${report.fallbacks.join('; ')}` : ''}`);
  let cpu: { rows: BenchRow[]; threads: number; kernels: string } | null = null;
  if (cpuSide) {
    console.log(`gpu-check: the same cases on the cpu backend in Node`);
    cpu = await runCpu(settings);
  } else console.log('gpu-check: cpu side skipped (--no-cpu, or dist/core is missing)');
  const renderer = report.renderer ?? report.probe;
  const glEngine = report.rows[0]?.engine ?? `ptslab-gpujs-${report.mode}`;
  console.log('');
  console.log(table(report.rows, cpu?.rows ?? [], glEngine));
  console.log('');
  console.log(`WebGL renderer: ${renderer?.renderer} (vendor ${renderer?.vendor}; ${renderer?.version}; MAX_TEXTURE_SIZE ${renderer?.maxTextureSize})${renderer && software(renderer.renderer) ? ' -- SOFTWARE, not a GPU' : ''}`);
  console.log(`browser: ${browserVersion}, ${attempts.at(-1)!.args.join(' ')}`);
  console.log(`cpu side: ${cpu ? `node ${process.version}, ${os.cpus()[0]?.model ?? '?'}, ${os.availableParallelism()} threads (cpu backend uses ${cpu.threads}, ${cpu.kernels} kernels)` : 'not run'}`);
  console.log('ms: median of the timed runs; kernel cases read one element back after each run, FCPTS reads its scalars back each iteration; FCPTS gflops: none (nominal flops only)');
  // the commit the run measured (null outside a git checkout, e.g. a packed copy on a GPU machine)
  const commit = await import('../scripts/commands/common.js').then((m) => m.gitCommit(), () => null);
  const json = {
    when: new Date().toISOString(), commit, seconds: +((Date.now() - t0) / 1000).toFixed(1), settings, attempts,
    browser: browserVersion, renderer, page: { ...report, rows: undefined },
    cpu: cpu ? { node: process.version, cpuModel: os.cpus()[0]?.model ?? null, threads: os.availableParallelism(), backendThreads: cpu.threads, kernels: cpu.kernels } : null,
    rows: [...report.rows, ...(cpu?.rows ?? [])],
  };
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(out, JSON.stringify(json, null, 2) + '\n');
  console.log(`wrote ${out} (${json.rows.length} rows) in ${json.seconds} s`);
  return 0;
}

process.exitCode = await main().catch((e: Error) => {
  console.log(`gpu-check: FAILED: ${e.stack ?? e.message}`);
  return 1;
});
