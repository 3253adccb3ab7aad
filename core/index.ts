// Public surface of core/: tensors, creation, autograd controls, ops as functions, F, backends, the per-op profile,
// errors.

export { Tensor, tensor, zeros, ones, full, zerosLike, onesLike, arange, rand, randn, fromStorage, hostElements } from './tensor.js';
export type { TensorLike, TensorOptions, NestedArray, RandomOptions } from './tensor.js';
export { noGrad, isGradEnabled, record } from './autograd.js';
export type { BackwardOptions, BackwardFn } from './autograd.js';
export { manualSeed, Generator } from './random.js';
export type { DType, Storage, DeviceArray, TensorData } from './dtype.js';
export { hostData, isHost } from './dtype.js';
export * from './ops/elementwise.js';
export { sum, mean, max, min, variance as var_, variance, argmax } from './ops/reduce.js';
export { reshape, permute, transpose, expand, slice, concat, pad, flatten, squeeze, unsqueeze, contiguous, clone, cast } from './ops/shape.js';
export { matmul } from './ops/matmul.js';
export { ops, type OpName } from './ops/index.js';
export { F } from './functional.js';
export type { Reduction } from './functional.js';
export type { Conv2dOptions } from './ops/conv.js';
export type { Pool2dOptions } from './ops/pool.js';
export type { BatchNormOptions } from './ops/norm.js';
export { backend, setBackend, withBackend, listBackends, registerBackend } from './backend/index.js';
export { selectBackend, autoBackendReport } from './backend/select.js';
export type { AutoReport, BackendCandidate } from './backend/select.js';
export type { Backend, View, HostView, Kernels, HostKernels, KernelName, TransferStats } from './backend/types.js';
export { composeBackend, hostBackend, KERNEL_NAMES, type ComposeSpec } from './backend/compose.js';
export { referenceBackend } from './backend/reference.js';
export { profileOps, profileOpsAsync, formatProfile } from './profile.js';
export type { Profile, ProfileRow, ProfileControl, ProfileOptions, FormatOptions as ProfileFormatOptions } from './profile.js';
export { PtslabError, ShapeError, ArgumentError, AutogradError, NumericError } from './errors.js';
export { gradcheck, GradcheckError } from './gradcheck.js';
export type { GradcheckOptions, JacobianEntry } from './gradcheck.js';
