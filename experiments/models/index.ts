// The bundled pretrained models: name -> architecture, dataset and training recipe, with the weights at
// experiments/models/<name>/model.safetensors and the run record (config, accuracy per epoch, final top-1)
// beside them in record.json. loadBundledModel(name) builds the architecture, loads the weights and returns the model
// in eval mode with its metadata; it fails with BundledModelError naming the missing file while a model is untrained.
// How each one was (or will be) trained: experiments/models/README.md.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { PtslabError } from '../../core/errors.js';
import { loadSafetensors, type Module } from '../../nn/index.js';
import { DATASET_INFO, buildModel, type Arch, type DatasetName } from '../../nn/train/index.js';

export class BundledModelError extends PtslabError {}

export interface BundledModelSpec {
  name: string;
  arch: Arch;
  dataset: DatasetName;
  widthMult?: number;
  description: string;
  /** The held-out top-1 (percent) the model must reach (issue 5). */
  goalTop1: number;
}

export const BUNDLED_MODELS: readonly BundledModelSpec[] = [
  { name: 'fmnist-resnet20', arch: 'resnet20', dataset: 'fashion-mnist', description: 'CIFAR-style ResNet-20, one input channel, Fashion-MNIST split of nn/data', goalTop1: 92 },
  { name: 'fmnist-mobilenetv2', arch: 'mobilenetv2', dataset: 'fashion-mnist', widthMult: 0.5, description: 'MobileNetV2 (torchvision blocks, stem stride 1, width 0.5) on the Fashion-MNIST split', goalTop1: 91 },
  { name: 'mnist-resnet20', arch: 'resnet20', dataset: 'mnist', description: 'CIFAR-style ResNet-20, one input channel, MNIST', goalTop1: 99.3 },
];

/** The folder of experiments/models in the source tree (this file is compiled to dist/experiments/models). */
export function bundledModelsDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const src = join(here, '..', '..', '..', 'experiments', 'models');
  return existsSync(src) ? src : here;
}

export interface BundledRecord {
  final?: { top1: number; top5: number; count: number };
  backend?: string;
  [k: string]: unknown;
}

export interface BundledModelInfo extends BundledModelSpec {
  weights: string;
  recordFile: string;
  trained: boolean;
  record: BundledRecord | null;
  /** Final top-1 (percent) from record.json, or null while untrained. */
  top1: number | null;
}

export function bundledModelSpec(name: string): BundledModelSpec {
  const spec = BUNDLED_MODELS.find((m) => m.name === name);
  if (!spec) throw new BundledModelError(`unknown bundled model '${name}'; bundled: ${BUNDLED_MODELS.map((m) => m.name).join(', ')}`);
  return spec;
}

export function bundledModelInfo(name: string): BundledModelInfo {
  const spec = bundledModelSpec(name);
  const dir = join(bundledModelsDir(), name);
  const weights = join(dir, 'model.safetensors');
  const recordFile = join(dir, 'record.json');
  let record: BundledRecord | null = null;
  if (existsSync(recordFile)) {
    try {
      record = JSON.parse(readFileSync(recordFile, 'utf8')) as BundledRecord;
    } catch (e) {
      throw new BundledModelError(`${recordFile}: not valid JSON (${(e as Error).message})`);
    }
  }
  const trained = existsSync(weights);
  return { ...spec, weights, recordFile, trained, record, top1: trained ? (record?.final?.top1 ?? null) : null };
}

export function listBundledModels(): BundledModelInfo[] {
  return BUNDLED_MODELS.map((m) => bundledModelInfo(m.name));
}

/** The architecture of a bundled model (fresh weights). */
export function buildBundledArch(spec: BundledModelSpec): Module {
  const d = DATASET_INFO[spec.dataset];
  return buildModel(spec.arch, { numClasses: d.numClasses, inChannels: d.channels, inputSize: d.size, widthMult: spec.widthMult });
}

/** A bundled model with its trained weights, in eval mode, and its metadata. */
export function loadBundledModel(name: string): { model: Module; info: BundledModelInfo } {
  const info = bundledModelInfo(name);
  if (!info.trained) {
    throw new BundledModelError(`bundled model '${name}' is not trained yet: ${info.weights} does not exist (see experiments/models/README.md for the command that makes it)`);
  }
  const model = buildBundledArch(info);
  model.loadStateDict(loadSafetensors(info.weights));
  model.eval();
  return { model, info };
}
