// Public surface of nn/: Module and Parameter, layers, parametrizations (torch.nn.utils.parametrize), initialisers,
// the model zoo (as `models`), checkpoint I/O (safetensors, torch.save files), optimizers, schedules and gradient
// clipping.

export { Module, Parameter, type ForwardHook, type ForwardPreHook, type HookHandle, type LoadStateDictOptions, type LoadStateDictResult } from './module.js';
export {
  Conv2d, Linear, BatchNorm2d, ReLU, ReLU6, Dropout, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Identity, Sequential,
  type Conv2dOptions as Conv2dLayerOptions, type BatchNorm2dOptions, type Pool2dOptions as Pool2dLayerOptions,
} from './layers.js';
export { registerParametrization, parametrized, isParametrized, withParametrizations, type Parametrization, type ParametrizationHandle } from './parametrize.js';
export * as init from './init.js';
export * as models from './models/index.js';
export { CheckpointError, StateDictError } from './errors.js';
export { loadSafetensors, saveSafetensors, readSafetensors, parseSafetensors, serializeSafetensors, type SafetensorsFile, type SaveSafetensorsOptions } from './io/safetensors.js';
export { loadCheckpoint, loadTorchCheckpoint, parseCheckpoint, detectFormat, type CheckpointFormat } from './io/checkpoint.js';
export { readPublishedCheckpoint, parseRename, fillBatchNormBuffers, loadPublished, suggestRenames, STATE_DICT_WRAPPERS, type PublishedCheckpoint, type ReadPublishedOptions, type LoadPublishedOptions, type LoadPublishedReport, type ExtraValue } from './io/published.js';
export { serializeTorchZip, saveTorch, torchSaveDType, TORCH_STORAGE_ALIGNMENT, type SaveTorchOptions, type TorchSaveDType } from './io/torch-save.js';
export * from './optim/index.js';
