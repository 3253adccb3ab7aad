// Training checkpoints: one safetensors file holding the model's state dict (parameters and BN buffers, F32 with
// num_batches_tracked as I64), the optimizer's momentum buffers under `optim.momentum.<param name>`, and the loop
// state (epoch, batch within the epoch, iteration, history, config) as JSON in the `ptslab_train_state` metadata
// entry. Written atomically and fsynced (nn/io/atomic.ts: temporary file, fsync, rename, fsync of the folder), so a
// killed run never leaves a torn checkpoint. The random state needs no entry: augmentation and shuffling are
// functions of (seed, epoch, index) and dropout is reseeded from (seed, iteration) before every step.

import { readFileSync } from 'node:fs';
import { writeAtomic } from '../io/atomic.js';
import { fromStorage, type Tensor } from '../../core/index.js';
import { CheckpointError, readSafetensors, serializeSafetensors, type Module, type Optimizer } from '../index.js';

const MOMENTUM = 'optim.momentum.';
const STATE_KEY = 'ptslab_train_state';

export { writeAtomic } from '../io/atomic.js';

/** Save model + momentum buffers + loop state to `file` (atomically). `buffers` overrides the model's buffers. */
export function saveTrainCheckpoint<S>(file: string, model: Module, optimizer: Optimizer<any>, state: S, buffers?: Record<string, Tensor>): void {
  const record: Record<string, Tensor> = { ...model.stateDict(), ...(buffers ?? {}) };
  for (const [name, p] of model.namedParameters()) {
    const buf = optimizer.state.get(p)?.momentumBuffer as Float32Array | undefined;
    if (buf) record[MOMENTUM + name] = fromStorage(buf, [...p.shape]);
  }
  writeAtomic(file, serializeSafetensors(record, { [STATE_KEY]: JSON.stringify(state) }));
}

/** Restore model weights and momentum buffers from `file` and return the saved loop state. */
export function loadTrainCheckpoint<S>(file: string, model: Module, optimizer: Optimizer<any>): S {
  const { tensors, metadata } = readSafetensors(file);
  const json = metadata?.[STATE_KEY];
  if (json === undefined) throw new CheckpointError(`${file}: not a ptslab training checkpoint (no '${STATE_KEY}' metadata)`);
  const weights: Record<string, Tensor> = {};
  const moms: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (k.startsWith(MOMENTUM)) moms[k.slice(MOMENTUM.length)] = t;
    else weights[k] = t;
  }
  model.loadStateDict(weights);
  for (const [name, p] of model.namedParameters()) {
    const m = moms[name];
    if (!m) continue;
    if (m.size !== p.size) throw new CheckpointError(`${file}: momentum buffer '${name}' has ${m.size} elements, parameter has ${p.size}`);
    const buf = new Float32Array(p.size);
    buf.set(m.toArray());
    optimizer.state.set(p, { momentumBuffer: buf });
  }
  return JSON.parse(json) as S;
}

/** The loop state of a checkpoint without loading its tensors into a model. */
export function readTrainState<S>(file: string): S {
  const bytes = readFileSync(file);
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))) as { __metadata__?: Record<string, string> };
  const json = header.__metadata__?.[STATE_KEY];
  if (json === undefined) throw new CheckpointError(`${file}: not a ptslab training checkpoint (no '${STATE_KEY}' metadata)`);
  return JSON.parse(json) as S;
}
