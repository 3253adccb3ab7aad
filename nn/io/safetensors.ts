// The safetensors format, read and written in full: an 8-byte little-endian u64 header length N, N bytes of JSON
// ({ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { string: string } }, padded with spaces
// so the data starts on an 8-byte boundary, as the reference writer does), then the raw little-endian data. Reading
// validates everything before it allocates: the header length against the file size and a 100 MB cap, the JSON,
// each dtype, shape and byte range (inside the data, matching the shape, no overlaps). Any problem is a
// CheckpointError naming the file and the tensor. Reads F32, F64, F16, BF16, I64 (exact in a double), I32, I16, I8,
// U8, BOOL; writes F32 (and I64 for num_batches_tracked, F64 on request).

import { readFileSync, writeFileSync } from 'node:fs';
import { Tensor } from '../tensor-utils.js';
import { CheckpointError } from '../errors.js';
import { decodeElements, ELEMENT_SIZE, type ElementType } from './decode.js';

const DTYPES: Record<string, ElementType> = {
  F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

/** The reference implementation's cap on the header size. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

interface Entry {
  name: string;
  type: ElementType;
  shape: number[];
  begin: number;
  end: number;
}

/** Parse a safetensors image; source names the file in errors. */
export function parseSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  const fail = (msg: string): never => {
    throw new CheckpointError(`safetensors ${source}: ${msg}`);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  if (8 + n > bytes.length) fail(`header length ${n} runs past the end of the ${bytes.length}-byte file (truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value of '${k}' is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const t = (msg: string): never => fail(`tensor '${name}': ${msg}`);
    if (name === '__proto__') t('this name is not allowed');
    if (typeof info !== 'object' || info === null || Array.isArray(info)) t('entry is not an object');
    const { dtype, shape, data_offsets: offs } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype)) t(`unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPES).join(', ')})`);
    const type = DTYPES[dtype as string];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) t(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      t(`data_offsets ${JSON.stringify(offs)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end || end > dataLen) t(`data_offsets [${begin}, ${end}] are outside the ${dataLen}-byte data section`);
    let count = 1;
    for (const d of shape as number[]) count *= d;
    if (!Number.isSafeInteger(count) || count * ELEMENT_SIZE[type] !== end - begin) {
      t(`shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${count * ELEMENT_SIZE[type]} bytes but data_offsets span ${end - begin}`);
    }
    entries.push({ name, type, shape: shape as number[], begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      fail(`tensors '${sorted[i - 1].name}' [${sorted[i - 1].begin}, ${sorted[i - 1].end}] and '${sorted[i].name}' [${sorted[i].begin}, ${sorted[i].end}] overlap`);
    }
  }
  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    const count = (e.end - e.begin) / ELEMENT_SIZE[e.type];
    const data = decodeElements(bytes.subarray(dataStart + e.begin, dataStart + e.end), e.type, count);
    if (typeof data === 'string') fail(`tensor '${e.name}': ${data}`);
    tensors[e.name] = new Tensor(data as Float32Array | Float64Array, e.shape);
  }
  return { tensors, metadata };
}

/** Read a .safetensors file: its tensors (float32, or float64 for F64 and integer types) and its metadata. */
export function loadSafetensors(path: string): Record<string, Tensor> {
  return readSafetensors(path).tensors;
}

export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(`safetensors ${path}: cannot read (${(e as Error).message})`);
  }
  return parseSafetensors(bytes, path);
}

export type SaveDType = 'F32' | 'F64' | 'I64';

export interface SaveSafetensorsOptions {
  /** Element type per key; default F32, and I64 for keys ending in num_batches_tracked. */
  dtypes?: Record<string, SaveDType>;
}

const SAVE_SIZE: Record<SaveDType, number> = { F32: 4, F64: 8, I64: 8 };

/** Serialise a record to the safetensors format (tensors in the record's order). */
export function serializeSafetensors(record: Record<string, Tensor>, metadata?: Record<string, string>, o: SaveSafetensorsOptions = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const plan: Array<{ name: string; t: Tensor; dtype: SaveDType; begin: number }> = [];
  let offset = 0;
  for (const [name, t] of Object.entries(record)) {
    if (!(t instanceof Tensor)) throw new CheckpointError(`saveSafetensors: '${name}' is not a Tensor`);
    const dtype = o.dtypes?.[name] ?? (name.endsWith('num_batches_tracked') ? 'I64' : 'F32');
    const bytes = t.size * SAVE_SIZE[dtype];
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    plan.push({ name, t, dtype, begin: offset });
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const headerBytes = new Uint8Array(padded).fill(0x20);
  headerBytes.set(json);
  json = headerBytes;
  const out = new Uint8Array(8 + json.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  const base = 8 + json.length;
  for (const { name, t, dtype, begin } of plan) {
    const src = t.toArray();
    const at = base + begin;
    for (let i = 0; i < src.length; i++) {
      if (dtype === 'F32') dv.setFloat32(at + 4 * i, src[i], true);
      else if (dtype === 'F64') dv.setFloat64(at + 8 * i, src[i], true);
      else {
        if (!Number.isSafeInteger(src[i])) throw new CheckpointError(`saveSafetensors: '${name}' element ${i} is ${src[i]}, not an integer, so it cannot be written as I64`);
        dv.setBigInt64(at + 8 * i, BigInt(src[i]), true);
      }
    }
  }
  return out;
}

/** Write a record as a .safetensors file, with optional string metadata. */
export function saveSafetensors(path: string, record: Record<string, Tensor>, metadata?: Record<string, string>, o: SaveSafetensorsOptions = {}): void {
  writeFileSync(path, serializeSafetensors(record, metadata, o));
}
