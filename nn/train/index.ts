// Training and evaluation of classifiers by name: architectures and datasets (setup), the training loop with
// resumable checkpoints (trainer, checkpoint) and top-1/top-5 evaluation (evaluate). Used by `ptslab train`,
// `ptslab eval` and the bundled-model registry in experiments/models.

export { ARCHS, DATASETS, DATASET_INFO, NORMALIZATION, buildModel, datasetInfoOf, evalTransform, isArch, isDataset, loadDataset, trainTransform, type Arch, type DatasetInfo, type Normalization, type DatasetName, type ModelOptions, type LoadDatasetOptions } from './setup.js';
export { evaluate, countHits, type Accuracy } from './evaluate.js';
export { loadTrainCheckpoint, readTrainState, saveTrainCheckpoint, writeAtomic } from './checkpoint.js';
export { train, checkpointFile, NonFiniteError, type EpochRecord, type Progress, type TrainConfig, type TrainResult, type TrainRun, type TrainState } from './trainer.js';
export { architectureOf } from './arch-of.js';
