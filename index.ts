// The ptslab package entry: `import { tensor, F, noGrad } from 'ptslab'`. Importing it registers every backend
// (gpu.js is loaded only if chosen) and the first op selects one as the CLI does (PTSLAB_BACKEND, else auto).
// Beside core, nn, data and sparsity it carries the experiment kit (loadExperiment: a model with its teacher,
// calibration data, held-out set and evaluate), `z` (the zod that method and term option schemas are declared
// with), and, from 'ptslab/testing', gradient property tests.

export * from './core/index.js';
export * from './nn/index.js';
export * from './nn/data/index.js';
export * from './sparsity/index.js';
export { modelMacs, type ModelMacs, type LayerMacs } from './sparsity/macs.js';
export { enableSparseInference, inferenceActive, SPARSE_KERNEL_MODES, type SparseKernelMode, type SparseInference, type SparseLayer } from './nn/sparse-inference.js';
export * from './experiments/kit.js';
export { z } from 'zod';
