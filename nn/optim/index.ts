// Optimizers, learning-rate schedules and gradient clipping.

export { Optimizer, zeroMasked, type ParamGroup, type ParamsArg, type PostStepHook, type UpdateContext } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { LRScheduler, LambdaLR, CosineWarmupLR, StepLR, ConstantLR, type CosineWarmupOptions } from './lr-scheduler.js';
export { clipGradNorm } from './clip-grad.js';
