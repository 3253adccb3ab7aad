// The ptslab package entry: `import { tensor, F, noGrad } from 'ptslab'`.

export * from './core/index.js';
export * from './nn/index.js';
export * from './nn/data/index.js';
export * from './sparsity/index.js';
