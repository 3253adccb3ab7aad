// Compiles the cpu backend's AssemblyScript kernels (kernels.as, our own source) into dist/core/backend/cpu/
// kernels.wasm with asc (a devDependency; nothing is downloaded). Run by `npm run build` / `prepare` after tsc, and
// by wasm.ts at load time (in a child process) when the .wasm is missing, so a fresh clone works either way.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/core/backend/cpu -> repository root. */
const root = path.resolve(here, '..', '..', '..', '..');
export const wasmSourcePath = path.join(root, 'core', 'backend', 'cpu', 'kernels.as');
export const wasmOutputPath = path.join(here, 'kernels.wasm');
export const buildScriptPath = fileURLToPath(import.meta.url);

type AscMain = (argv: string[], options: {
  readFile(name: string, baseDir: string): string | null;
  writeFile(name: string, contents: Uint8Array | string, baseDir: string): void;
}) => Promise<{ error: Error | null; stderr: { toString(): string } }>;

export async function buildWasm(out = wasmOutputPath): Promise<void> {
  const source = fs.readFileSync(wasmSourcePath, 'utf8');
  const asc = (await import('assemblyscript/asc')).default as unknown as { main: AscMain };
  let binary: Uint8Array | null = null;
  const { error, stderr } = await asc.main(
    [
      'kernels.ts', '-o', 'kernels.wasm', '-O3', '--runtime', 'stub', '--noAssert', '--use', 'abort=',
      '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '32768', '--enable', 'simd,threads',
    ],
    {
      readFile(name, baseDir) {
        if (name === 'kernels.ts') return source;
        try {
          return fs.readFileSync(path.join(baseDir, name), 'utf8');
        } catch {
          return null;
        }
      },
      writeFile(name, contents) {
        if (name.endsWith('.wasm') && typeof contents !== 'string') binary = contents;
      },
    },
  );
  if (error || !binary) throw new Error(`build-wasm: asc failed on ${wasmSourcePath}: ${error?.message ?? 'no output'}\n${stderr.toString()}`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  // Write then rename, so a concurrent loader never sees a half-written file.
  const tmp = `${out}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, binary);
  fs.renameSync(tmp, out);
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  await buildWasm(process.argv[2] ?? wasmOutputPath);
}
