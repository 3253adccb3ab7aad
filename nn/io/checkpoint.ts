// One entry point for weights on disk: loadCheckpoint(path) reads a safetensors file or a torch.save file (zip or
// legacy), decided by the file's first bytes and never by its name, and returns the state_dict as a record of
// tensors (wrappers such as {"state_dict": ...} and 'module.' prefixes removed for torch files).

import { readFileSync } from 'node:fs';
import { Tensor } from '../tensor-utils.js';
import { CheckpointError } from '../errors.js';
import { parseSafetensors } from './safetensors.js';
import { parseTorchFile, torchStateDict } from './torch-load.js';

export type CheckpointFormat = 'safetensors' | 'torch-zip' | 'torch-legacy';

/** The format of a checkpoint image by its magic bytes, or null. */
export function detectFormat(bytes: Uint8Array): CheckpointFormat | null {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'torch-zip';
  // Legacy torch.save starts with a protocol-2 pickle of its magic number: PROTO 2, LONG1 of 10 bytes.
  if (bytes.length >= 4 && bytes[0] === 0x80 && bytes[1] === 0x02 && bytes[2] === 0x8a && bytes[3] === 0x0a) return 'torch-legacy';
  if (bytes.length >= 9 && bytes[8] === 0x7b) return 'safetensors';
  return null;
}

/** Parse a checkpoint image already in memory; source names it in errors. */
export function parseCheckpoint(bytes: Uint8Array, source = '<buffer>'): Record<string, Tensor> {
  const format = detectFormat(bytes);
  if (format === 'safetensors') return parseSafetensors(bytes, source).tensors;
  if (format !== null) return torchStateDict(parseTorchFile(bytes, source), source);
  throw new CheckpointError(`${source}: not a safetensors file, a torch.save zip archive or a legacy torch.save pickle (first bytes ${[...bytes.subarray(0, 9)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`);
}

/** Read a .safetensors, .pth/.pt/.bin (torch.save) file into a state_dict record. */
export function loadCheckpoint(path: string): Record<string, Tensor> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(`${path}: cannot read (${(e as Error).message})`);
  }
  return parseCheckpoint(bytes, path);
}

/** Read a torch.save file only (either of its formats). */
export function loadTorchCheckpoint(path: string): Record<string, Tensor> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(`${path}: cannot read (${(e as Error).message})`);
  }
  return torchStateDict(parseTorchFile(bytes, path), path);
}
