// Entry point of a decode worker thread (see pool.ts): reads an image file, decodes it (decode.ts), applies a
// transform (transforms.ts) with the sample's seed, and posts back float32 CHW pixels, transferring the buffer.
// Errors go back as { name, message } so the pool can rethrow a DataError naming the file.

import { parentPort } from 'node:worker_threads';
import { decodeFile } from './decode.js';
import { applyTransformRaw, type Transform } from './transforms.js';

export interface DecodeTask {
  id: number;
  file: string;
  transform: Transform;
  seed: number;
}

export type DecodeReply =
  | { id: number; data: Float32Array; shape: [number, number, number] }
  | { id: number; error: { name: string; message: string } };

parentPort?.on('message', (task: DecodeTask) => {
  try {
    const { data, shape } = applyTransformRaw(decodeFile(task.file), task.transform, task.seed);
    parentPort!.postMessage({ id: task.id, data, shape } satisfies DecodeReply, [data.buffer as ArrayBuffer]);
  } catch (e) {
    const err = e as Error;
    parentPort!.postMessage({ id: task.id, error: { name: err.name, message: err.message } } satisfies DecodeReply);
  }
});
