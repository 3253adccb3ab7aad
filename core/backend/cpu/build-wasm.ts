// Compiles the cpu backend's AssemblyScript kernels (core/backend/cpu/kernels/*.as, our own source; entry
// kernels/index.as) with asc (a devDependency; nothing is downloaded) into binaries from the same sources:
// dist/core/backend/cpu/kernels.wasm (SIMD128) and kernels-fma.wasm (relaxed SIMD too: the kernels' `madd` becomes
// f32x4.relaxed_madd, see kernels/common.as), both importing a shared memory for Node's worker pool, and the same two
// importing a non-shared memory, kernels-noshared.wasm and kernels-fma-noshared.wasm, for a browser page that is not
// cross-origin isolated (no SharedArrayBuffer; see browser.ts). It also writes the typed `Kernels` interface of the exports,
// kernels/exports.ts (committed; tests/cpu-kernels.test.ts fails when it is stale), from the exported signatures.
// Run by `npm run build` / `prepare` after tsc, and by wasm.ts at load time (in a child process, binaries only) when
// a .wasm is missing or older than a source, so a fresh clone works either way.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/core/backend/cpu -> repository root. */
const root = path.resolve(here, '..', '..', '..', '..');
export const kernelsDir = path.join(root, 'core', 'backend', 'cpu', 'kernels');
export const kernelsEntry = path.join(kernelsDir, 'index.as');
export const exportsPath = path.join(kernelsDir, 'exports.ts');
export const buildScriptPath = fileURLToPath(import.meta.url);

/**
 * The non-shared builds' file names (next to kernels.wasm in dist/, copied into dist-web/ by web/build.ts); a
 * constant here because a browser bundle cannot compute wasmBuilds' paths.
 */
export const NOSHARED_FILES = { simd: 'kernels-noshared.wasm', fma: 'kernels-fma-noshared.wasm' } as const;

/**
 * The builds: features passed to asc, whether the imported memory is shared, and where the binary goes. The kernels
 * use no atomic instructions, so the non-shared builds need no `threads` feature; they differ from their shared
 * twins only in the memory import's shared flag (the code is the same).
 */
export const wasmBuilds = {
  simd: { file: path.join(here, 'kernels.wasm'), enable: 'simd,threads', shared: true },
  fma: { file: path.join(here, 'kernels-fma.wasm'), enable: 'simd,threads,relaxed-simd', shared: true },
  simdNoShared: { file: path.join(here, NOSHARED_FILES.simd), enable: 'simd', shared: false },
  fmaNoShared: { file: path.join(here, NOSHARED_FILES.fma), enable: 'simd,relaxed-simd', shared: false },
} as const;
export type WasmBuildName = keyof typeof wasmBuilds;

/** Every .as source of the kernels (the loader's staleness check looks at all of them). */
export const kernelSourcePaths = (): string[] =>
  fs.existsSync(kernelsDir) ? fs.readdirSync(kernelsDir).filter((f) => f.endsWith('.as')).sort().map((f) => path.join(kernelsDir, f)) : [];

type AscMain = (argv: string[], options: {
  readFile(name: string, baseDir: string): string | null;
  writeFile(name: string, contents: Uint8Array | string, baseDir: string): void;
}) => Promise<{ error: Error | null; stderr: { toString(): string } }>;

export async function buildWasm(name: WasmBuildName, out: string = wasmBuilds[name].file): Promise<void> {
  const asc = (await import('assemblyscript/asc')).default as unknown as { main: AscMain };
  let binary: Uint8Array | null = null;
  const { error, stderr } = await asc.main(
    [
      'index.ts', '-o', 'kernels.wasm', '-O3', '--runtime', 'stub', '--noAssert', '--use', 'abort=',
      '--importMemory', ...(wasmBuilds[name].shared ? ['--sharedMemory'] : []), '--initialMemory', '1', '--maximumMemory', '32768',
      '--enable', wasmBuilds[name].enable,
    ],
    {
      // asc asks for `x.ts` (the entry, and `./x` imports, relative to the entry's folder): serve kernels/x.as
      readFile(file, baseDir) {
        const as = path.join(kernelsDir, file.replace(/\.ts$/, '.as'));
        try {
          return fs.readFileSync(file.endsWith('.ts') && fs.existsSync(as) ? as : path.join(baseDir, file), 'utf8');
        } catch {
          return null;
        }
      },
      writeFile(file, contents) {
        if (file.endsWith('.wasm') && typeof contents !== 'string') binary = contents;
      },
    },
  );
  if (error || !binary) throw new Error(`build-wasm: asc failed on ${kernelsEntry} (${name}): ${error?.message ?? 'no output'}\n${stderr.toString()}`);
  writeAtomic(out, binary);
}

/** Write then rename, so a concurrent loader never sees a half-written file. */
function writeAtomic(file: string, contents: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, contents);
  fs.renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------------------- exports.ts

export type WasmValType = 'i32' | 'i64' | 'f32' | 'f64';
/** AssemblyScript parameter and result types of exported kernels, and their wasm and TypeScript types. */
const AS_TYPES: Record<string, { wasm: WasmValType; ts: string }> = {
  i32: { wasm: 'i32', ts: 'number' }, u32: { wasm: 'i32', ts: 'number' }, usize: { wasm: 'i32', ts: 'number' },
  isize: { wasm: 'i32', ts: 'number' }, bool: { wasm: 'i32', ts: 'boolean' }, i64: { wasm: 'i64', ts: 'bigint' },
  u64: { wasm: 'i64', ts: 'bigint' }, f32: { wasm: 'f32', ts: 'number' }, f64: { wasm: 'f64', ts: 'number' },
};

export interface KernelSignature {
  name: string;
  /** The family file it lives in, e.g. gemm.as. */
  file: string;
  params: Array<{ name: string; type: string }>;
  /** AssemblyScript result type; void for none. */
  result: string;
}

/**
 * The exported functions of the kernels, in export order: index.as's `export * from './x'` lines in order, each
 * family's `export function` declarations in source order. Anything else a family exports is an error (the wasm
 * exports would not match the typings).
 */
export function kernelSignatures(dir: string = kernelsDir): KernelSignature[] {
  const entryPath = path.join(dir, 'index.as');
  const entry = fs.readFileSync(entryPath, 'utf8');
  const files = ['index.as'];
  for (const m of entry.matchAll(/^export \* from '\.\/([\w-]+)';?\s*$/gm)) files.push(`${m[1]}.as`);
  const sigs: KernelSignature[] = [];
  for (const file of files) {
    const at = path.join(dir, file);
    if (!fs.existsSync(at)) throw new Error(`build-wasm: ${entryPath} re-exports ./${file.replace(/\.as$/, '')}, but ${at} does not exist`);
    // comments out, so that prose mentioning `export` does not count
    const src = fs.readFileSync(at, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    for (const line of src.split('\n')) {
      if (/\bexport\b/.test(line) && !/^export function \w+\(/.test(line) && !(file === 'index.as' && /^export \* from/.test(line))) {
        throw new Error(`build-wasm: ${at}: only \`export function name(...): type\` may be exported from a kernel family, got: ${line.trim()}`);
      }
    }
    for (const m of src.matchAll(/^export function (\w+)\(([^)]*)\)\s*:\s*(\w+)/gm)) {
      const [, name, list, result] = m;
      const params = list.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        const pm = /^(\w+)\s*:\s*(\w+)$/.exec(s);
        if (!pm || !AS_TYPES[pm[2]]) {
          throw new Error(`build-wasm: ${at}: export ${name}: parameter '${s}' must be 'name: T' with T one of ${Object.keys(AS_TYPES).join(', ')}`);
        }
        return { name: pm[1], type: pm[2] };
      });
      if (result !== 'void' && !AS_TYPES[result]) throw new Error(`build-wasm: ${at}: export ${name}: result type ${result} is not supported`);
      if (sigs.some((s) => s.name === name)) throw new Error(`build-wasm: ${at}: export ${name} is defined twice`);
      sigs.push({ name, file, params, result });
    }
  }
  return sigs;
}

/** Wasm signature text of a kernel, as kernelTypes in exports.ts spells it: 'i32 i32 f32 -> void'. */
export const wasmTypeText = (s: KernelSignature): string =>
  `${s.params.map((p) => AS_TYPES[p.type].wasm).join(' ')} -> ${s.result === 'void' ? 'void' : AS_TYPES[s.result].wasm}`;

/** The text of kernels/exports.ts for these signatures. */
export function renderExports(sigs: KernelSignature[]): string {
  const lines = [
    '// Generated by build-wasm (core/backend/cpu/build-wasm.ts) from the exported signatures of core/backend/cpu/kernels/',
    '// *.as: do not edit. `node dist/core/backend/cpu/build-wasm.js` rewrites it; tests/cpu-kernels.test.ts fails when it',
    '// differs from what the sources give, or from the compiled binaries.',
    '',
    '/** The wasm kernels, typed from their AssemblyScript signatures. */',
    'export interface Kernels {',
  ];
  let file = '';
  for (const s of sigs) {
    if (s.file !== file) lines.push(`  // ${(file = s.file)}`);
    const ret = s.result === 'void' ? 'void' : AS_TYPES[s.result].ts;
    const params = s.params.map((p) => `${p.name}: ${AS_TYPES[p.type].ts}`);
    const one = `  ${s.name}(${params.join(', ')}): ${ret};`;
    if (one.length <= 120) {
      lines.push(one);
      continue;
    }
    lines.push(`  ${s.name}(`);
    let row = '   ';
    for (const p of params) {
      if (row.length + p.length + 2 > 120) { lines.push(row); row = '   '; }
      row += ` ${p},`;
    }
    lines.push(row, `  ): ${ret};`);
  }
  lines.push('}', '', '/** Wasm type of every export (params -> result), checked against the compiled binaries by the tests. */');
  lines.push('export const kernelTypes: Record<keyof Kernels, string> = {');
  for (const s of sigs) lines.push(`  ${s.name}: '${wasmTypeText(s)}',`);
  lines.push('};', '');
  return lines.join('\n');
}

/** Rewrite kernels/exports.ts when the sources give a different text. */
export function writeExports(): void {
  const text = renderExports(kernelSignatures());
  if (!fs.existsSync(exportsPath) || fs.readFileSync(exportsPath, 'utf8') !== text) writeAtomic(exportsPath, text);
}

if (globalThis.process?.argv?.[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  // wasm.ts's rebuild at load passes --wasm-only: it must not write into the source tree (which may be read-only)
  if (!process.argv.includes('--wasm-only')) writeExports();
  for (const name of Object.keys(wasmBuilds) as WasmBuildName[]) await buildWasm(name);
}
