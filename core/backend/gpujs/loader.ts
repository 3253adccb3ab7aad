// Loading gpu.js lazily and choosing its mode. gpu.js is required through createRequire inside a try block, so a
// broken or missing install (or a native `gl` addon that fails to load) never breaks `import 'ptslab'`: the gpujs
// backend is then simply unavailable and `gpujsUnavailableReason()` says why. Also holds the few gpu.js types this
// backend uses, declared locally: only the structural surface we call, so gpu.js's own typings cannot drift us.

import { createRequire } from 'node:module';
import { ArgumentError } from '../../errors.js';

/** The modes PTSLAB_GPUJS_MODE accepts. 'webgl' is an alias of 'headlessgl' in Node (WebGL 1 through `gl`). */
export const GPUJS_MODES = ['gpu', 'webgl', 'headlessgl', 'webasm', 'cpu'] as const;
export type GpujsModeRequest = (typeof GPUJS_MODES)[number];

/** What a gpu.js kernel returns: a flat array (1-D output), nested rows (2-D, 3-D), or a texture (pipeline, GL). */
export type NestedRows = Float32Array[] | Float32Array[][];
export type KernelResult = Float32Array | NestedRows | GpuTexture;

export interface GpuTexture {
  toArray(): Float32Array | NestedRows;
  delete(): void;
}

export type KernelArg = Float32Array | KernelResult | GpuInput | number;

export interface GpuKernel {
  (...args: KernelArg[]): KernelResult;
  /** The kernel instance now behind the run shortcut (gpu.js swaps it on fallback). */
  kernel: { constructor: KernelClass; fallbackReason?: string };
  destroy(removeCanvasReferences?: boolean): void;
}

export interface GpuKernelSettings {
  output: number[];
  constants?: Record<string, number>;
  precision?: 'single';
  pipeline?: boolean;
  immutable?: boolean;
  loopMaxIterations?: number;
  tactic?: 'precision';
  argumentTypes?: Record<string, string>;
  dynamicArguments?: boolean;
}

/** A gpu.js Kernel class. Its static `mode` is 'gpu' for every GL class, so the class name tells them apart. */
export interface KernelClass {
  readonly mode: string;
  readonly name: string;
  /** GL classes: the context's MAX_TEXTURE_SIZE; webasm: Infinity; cpu: absent. */
  readonly features?: { readonly maxTextureSize?: number };
}

const modeByClass: Record<string, string> = {
  HeadlessGLKernel: 'headlessgl',
  WebGLKernel: 'webgl',
  WebGL2Kernel: 'webgl2',
  WebGPUKernel: 'webgpu',
  WebAssemblyKernel: 'webasm',
  CPUKernel: 'cpu',
};

/** The mode a gpu.js Kernel class runs: 'headlessgl', 'webasm', 'cpu', ... */
export const modeOf = (k: KernelClass): string => modeByClass[k.name] ?? k.mode;

export interface GpuInstance {
  mode: string;
  Kernel: KernelClass;
  createKernel(source: string, settings: GpuKernelSettings): GpuKernel;
  destroy(): Promise<void>;
}

export type GpuInput = { readonly __gpuInput: true };

interface GpuModule {
  GPU: (new (settings: { mode?: string }) => GpuInstance) & { isHeadlessGLSupported: boolean };
  input(value: Float32Array, size: number[]): GpuInput;
}

let loaded: GpuModule | null = null;
let loadError: string | null = null;

/**
 * Hand gpu.js over instead of requiring it: a browser bundle imports gpu.js's browser build and passes it here before
 * the gpujs backend is first used (Node requires the package itself).
 */
export function provideGpujsModule(mod: unknown): void {
  loaded = mod as GpuModule;
  loadError = null;
}

/** The gpu.js module, or null (and the reason in gpujsUnavailableReason()) when it cannot load. */
export function gpujsModule(): GpuModule | null {
  if (loaded || loadError) return loaded;
  try {
    const require = createRequire(import.meta.url);
    loaded = require('gpu.js') as GpuModule;
  } catch (e) {
    loadError = `gpu.js failed to load: ${(e as Error).message.split('\n')[0]}`;
  }
  return loaded;
}

/**
 * Whether gpu.js has been required (successfully or not) in this process. The registry's gpujs entry leaves it false
 * until that backend is used or probed, so `import 'ptslab'` never pays for loading gpu.js.
 */
export function gpujsLoadAttempted(): boolean {
  return loaded !== null || loadError !== null;
}

/** The mode requested through PTSLAB_GPUJS_MODE, or null for gpu.js's own choice (headlessgl, else webasm). */
export function requestedMode(): GpujsModeRequest | null {
  const m = process.env.PTSLAB_GPUJS_MODE?.trim().toLowerCase();
  if (!m) return null;
  if (!(GPUJS_MODES as readonly string[]).includes(m)) {
    throw new ArgumentError(`PTSLAB_GPUJS_MODE='${m}' is not one of ${GPUJS_MODES.join(', ')}`);
  }
  return m as GpujsModeRequest;
}

/**
 * A GPU instance in the requested mode, with the mode gpu.js actually chose ('headlessgl', 'webasm' or 'cpu' in
 * Node), or the reason none can be made.
 */
export function createGpu(): { gpu: GpuInstance; mode: string } | { reason: string } {
  let req: GpujsModeRequest | null;
  try {
    req = requestedMode();
  } catch (e) {
    return { reason: (e as Error).message };
  }
  const mod = gpujsModule();
  if (!mod) return { reason: loadError ?? 'gpu.js failed to load' };
  const mode = req === 'webgl' ? 'headlessgl' : req ?? 'gpu';
  if (mode === 'headlessgl' && !mod.GPU.isHeadlessGLSupported) {
    return {
      reason:
        `gpu.js mode '${req}' needs headless-gl: the 'gl' addon ${hasGl() ? 'loads but gave no WebGL context (no X display? run under xvfb-run -a)' : 'is not installed (run .ci/gpu-setup.sh)'}`,
    };
  }
  try {
    const gpu = new mod.GPU({ mode });
    return { gpu, mode: modeOf(gpu.Kernel) };
  } catch (e) {
    return { reason: `gpu.js could not start in mode '${mode}': ${(e as Error).message}` };
  }
}

function hasGl(): boolean {
  try {
    createRequire(import.meta.url)('gl');
    return true;
  } catch {
    return false;
  }
}
