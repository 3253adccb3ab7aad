// The `cpu` backend: the fast CPU kernel set. Convolutions and matrix products run as WebAssembly SIMD kernels
// (kernels/*.as) split across a persistent worker pool (threads.ts) over shared memory; batch norm and the common
// elementwise ops, where and max pooling on float32 run as SIMD or wasm kernels too (batch norm and pooling split by
// channels); the other elementwise ops, reductions and average pooling are tight JavaScript loops on the main thread
// (memory-bound, see their files). float64 inputs take the same JavaScript paths, or the reference kernels where the
// fast path is wasm (float32 only).

// first: the job table imports every module that defines jobs and seals the table (see jobs.ts)
import './job-table.js';
import { hostBackend } from '../compose.js';
import type { HostKernels } from '../types.js';
import { conv2d, conv2dAct, conv2dBackwardInput, conv2dBackwardWeight } from './conv.js';
import { assign, binary, clamp, contiguous, reduce, unary, where } from './elementwise.js';
import { matmul } from './gemm.js';
import { sparseConv2d, sparseLinear } from './sparse.js';
import { batchNormBackward, batchNormForward, batchNormStats } from './norm.js';
import {
  adaptiveAvgPool2d, adaptiveAvgPool2dBackward, avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward, maxPool2dInference,
} from './pool2d.js';
import { wasmUnavailable } from './wasm.js';

export { cpuKernelInfo } from './wasm.js';

export { shutdownThreads, threadCount, poolSize } from './threads.js';

/** The cpu kernels on host arrays (what cpuBackend runs; tests call them directly). */
export const cpuKernels: HostKernels = {
  contiguous,
  assign,
  unary,
  binary,
  where,
  clamp,
  reduce,
  matmul,
  conv2d,
  conv2dAct,
  sparseConv2d,
  sparseLinear,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  maxPool2d,
  maxPool2dBackward,
  maxPool2dInference,
  avgPool2d,
  avgPool2dBackward,
  adaptiveAvgPool2d,
  adaptiveAvgPool2dBackward,
  batchNormStats,
  batchNormForward,
  batchNormBackward,
};

export const cpuBackend = hostBackend('cpu', cpuKernels, { unavailableReason: wasmUnavailable });
