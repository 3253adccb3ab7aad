// Reading torch.save files without Python. The zip format (PyTorch >= 1.6): <name>/data.pkl is a pickle whose
// tensors point by persistent id ('storage', torch.FloatStorage, key, location, numel) at raw storages
// <name>/data/<key> (byte order from <name>/byteorder, little-endian by default). The legacy format: pickles of the
// magic number, protocol version and sys_info, the object, the storage key list, then each storage as an 8-byte
// little-endian element count and its raw little-endian bytes. Both are unpickled by the allow-listing unpickler in pickle.ts; tensors are
// built from storage, offset, size and stride, as float32 (float64 for double and 32/64-bit integer storages).

import { unzipSync } from 'fflate';
import { Tensor } from '../tensor-utils.js';
import { CheckpointError } from '../errors.js';
import { decodeElements } from './decode.js';
import { ITEM_SIZE, STORAGE_TYPES, unpickle, type PyValue, type StorageRef, type TensorRef } from './pickle.js';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

interface StorageSource {
  /** Raw bytes of a storage by key, or an error message. */
  bytesOf(ref: StorageRef): Uint8Array | string;
  littleEndian: boolean;
}

export interface TorchFile {
  /** The unpickled object: Maps, arrays, numbers, strings and TensorRefs. */
  root: PyValue;
  /** Build a tensor (contiguous copy) from a TensorRef; key names it in errors. */
  materialize(ref: TensorRef, key: string): Tensor;
}

const isZip = (b: Uint8Array) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

function storageRef(pid: PyValue, fail: (m: string) => never, legacy: boolean): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) fail(`persistent id ${JSON.stringify(String(pid))} is not a storage tuple`);
  const [, type, key, , numel, view] = pid as PyValue[];
  const name = typeof type === 'object' && type !== null && 'kind' in type && type.kind === 'global' ? type.name : '';
  const dtype = STORAGE_TYPES[name.replace(/^torch\./, '')];
  if (!dtype || !Object.hasOwn(STORAGE_TYPES, name.replace(/^torch\./, ''))) fail(`persistent id names storage type '${name}', not a known torch storage`);
  if (typeof key !== 'string' || !Number.isSafeInteger(numel) || (numel as number) < 0) fail('storage persistent id needs a string key and an element count');
  if (legacy && view !== null && view !== undefined) {
    if (!Array.isArray(view) || !Number.isSafeInteger(view[1])) fail('legacy storage view metadata is malformed');
    return { kind: 'storage', dtype, key, numel: numel as number, elementOffset: (view as number[])[1] };
  }
  return { kind: 'storage', dtype, key, numel: numel as number };
}

function makeFile(root: PyValue, src: StorageSource, source: string): TorchFile {
  const cache = new Map<string, Float32Array | Float64Array>();
  const decoded = (ref: StorageRef, key: string): Float32Array | Float64Array => {
    const hit = cache.get(ref.key);
    if (hit) return hit;
    const bytes = src.bytesOf(ref);
    const fail = (m: string): never => {
      throw new CheckpointError(`${source}: tensor '${key}' (storage ${ref.key}, ${ref.dtype}): ${m}`);
    };
    if (typeof bytes === 'string') fail(bytes);
    const size = ITEM_SIZE[ref.dtype];
    const have = Math.floor((bytes as Uint8Array).length / size);
    const data = decodeElements(bytes as Uint8Array, ref.dtype, have, src.littleEndian);
    if (typeof data === 'string') fail(data);
    cache.set(ref.key, data as Float32Array | Float64Array);
    return data as Float32Array | Float64Array;
  };
  const materialize = (ref: TensorRef, key: string): Tensor => {
    const data = decoded(ref.storage, key);
    const fail = (m: string): never => {
      throw new CheckpointError(`${source}: tensor '${key}' shape [${ref.shape.join(', ')}] stride [${ref.stride.join(', ')}] offset ${ref.offset}: ${m}`);
    };
    const count = ref.shape.reduce((a, b) => a * b, 1);
    const base = ref.offset + (ref.storage.elementOffset ?? 0);
    const last = count === 0 ? base - 1 : base + ref.shape.reduce((s, d, i) => s + (d - 1) * ref.stride[i], 0);
    if (last >= data.length || last >= ref.storage.numel + (ref.storage.elementOffset ?? 0)) {
      fail(`reaches element ${last} of a storage with ${Math.min(data.length, ref.storage.numel)} elements`);
    }
    // Zero strides may repeat elements, but never so far that a hostile file could make us allocate gigabytes.
    if (count > Math.max(1024 * data.length, 1 << 20) || count > 2 ** 30) fail(`${count} elements from a storage of ${data.length} is not plausible`);
    const out = data instanceof Float64Array ? new Float64Array(count) : new Float32Array(count);
    const nd = ref.shape.length;
    const idx = new Array<number>(nd).fill(0);
    let at = base;
    for (let i = 0; i < count; i++) {
      out[i] = data[at];
      for (let d = nd - 1; d >= 0; d--) {
        if (++idx[d] < ref.shape[d]) {
          at += ref.stride[d];
          break;
        }
        at -= (ref.shape[d] - 1) * ref.stride[d];
        idx[d] = 0;
      }
    }
    return new Tensor(out, ref.shape);
  };
  return { root, materialize };
}

function readZip(bytes: Uint8Array, source: string): TorchFile {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new CheckpointError(`${source}: not a readable zip archive (${(e as Error).message})`);
  }
  const pkls = Object.keys(entries).filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pkls.length !== 1) throw new CheckpointError(`${source}: expected one <name>/data.pkl in the zip archive, found ${pkls.length}`);
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const order = entries[`${prefix}byteorder`];
  const byteorder = order ? new TextDecoder().decode(order).trim() : 'little';
  if (byteorder !== 'little' && byteorder !== 'big') throw new CheckpointError(`${source}: unknown byteorder '${byteorder}'`);
  const fail = (m: string): never => {
    throw new CheckpointError(`${source}: ${m}`);
  };
  const refs = new Map<string, StorageRef>();
  const { value } = unpickle(entries[pkls[0]], {
    source: `${source} (${pkls[0]})`,
    persistentLoad: (pid) => {
      const ref = storageRef(pid, fail, false);
      const seen = refs.get(ref.key);
      if (seen) return seen;
      refs.set(ref.key, ref);
      return ref;
    },
  });
  return makeFile(value, {
    littleEndian: byteorder === 'little',
    bytesOf: (ref) => {
      const b = entries[`${prefix}data/${ref.key}`];
      if (!b) return `archive entry ${prefix}data/${ref.key} is missing`;
      if (b.length < ref.numel * ITEM_SIZE[ref.dtype]) return `archive entry holds ${b.length} bytes, fewer than ${ref.numel} elements need`;
      return b;
    },
  }, source);
}

function readLegacy(bytes: Uint8Array, source: string): TorchFile {
  const fail = (m: string): never => {
    throw new CheckpointError(`${source}: legacy torch.save file: ${m}`);
  };
  const magic = unpickle(bytes, { source });
  if (magic.value !== LEGACY_MAGIC) fail('does not start with the torch.save magic number');
  const protocol = unpickle(bytes, { source, start: magic.end });
  if (protocol.value !== 1001) fail(`protocol version ${String(protocol.value)} is not 1001`);
  const sysInfo = unpickle(bytes, { source, start: protocol.end });
  // Storage sizes and data are always written little-endian (sys_info only records the saving host).
  const little = true;
  const refs = new Map<string, StorageRef>();
  const main = unpickle(bytes, {
    source,
    start: sysInfo.end,
    persistentLoad: (pid) => {
      const ref = storageRef(pid, fail, true);
      if (!refs.has(ref.key)) refs.set(ref.key, { ...ref, elementOffset: undefined });
      return ref;
    },
  });
  const keys = unpickle(bytes, { source, start: main.end });
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) fail('storage key list is malformed');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storages = new Map<string, Uint8Array>();
  let pos = keys.end;
  for (const key of keys.value as string[]) {
    const ref = refs.get(key);
    if (!ref) fail(`storage '${key}' is listed but never referenced`);
    if (pos + 8 > bytes.length) fail(`truncated before storage '${key}'`);
    const n = dv.getBigInt64(pos, little);
    const size = ITEM_SIZE[ref!.dtype];
    if (n < 0n || n * BigInt(size) > BigInt(bytes.length - pos - 8)) fail(`storage '${key}' claims ${n} elements, more than the file holds`);
    pos += 8;
    storages.set(key, bytes.subarray(pos, pos + Number(n) * size));
    pos += Number(n) * size;
  }
  return makeFile(main.value, {
    littleEndian: little,
    bytesOf: (ref) => storages.get(ref.key) ?? `storage '${ref.key}' has no data in the file`,
  }, source);
}

/** Parse a torch.save image (zip or legacy), deciding by its first bytes. */
export function parseTorchFile(bytes: Uint8Array, source = '<buffer>'): TorchFile {
  if (isZip(bytes)) return readZip(bytes, source);
  if (bytes.length >= 2 && bytes[0] === 0x80) return readLegacy(bytes, source);
  throw new CheckpointError(`${source}: neither a torch.save zip archive nor a legacy torch.save pickle`);
}

/** Common wrappers around a state_dict. */
const WRAPPER_KEYS = ['state_dict', 'model', 'model_state_dict', 'net', 'module'];

const isTensorRef = (v: PyValue): v is TensorRef => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && !(v instanceof Uint8Array) && v.kind === 'tensor';

/**
 * The state_dict in a torch.save file: the top-level dict of tensors, or the one under 'state_dict' / 'model' /
 * 'model_state_dict' / 'net' / 'module', with a 'module.' prefix (DataParallel) stripped when every key has it.
 */
export function torchStateDict(file: TorchFile, source = '<buffer>'): Record<string, Tensor> {
  let dict = file.root;
  let path = '';
  for (let depth = 0; depth < 3 && dict instanceof Map; depth++) {
    const values = [...dict.values()];
    if (values.length > 0 && values.every(isTensorRef)) break;
    const key = WRAPPER_KEYS.find((k) => dict instanceof Map && dict.get(k) instanceof Map);
    if (!key) break;
    dict = dict.get(key)!;
    path += `${key}.`;
  }
  if (!(dict instanceof Map)) throw new CheckpointError(`${source}: the checkpoint is not a dict of tensors`);
  const entries = [...dict.entries()];
  const bad = entries.find(([k, v]) => typeof k !== 'string' || !isTensorRef(v));
  if (bad) {
    throw new CheckpointError(`${source}: entry '${path}${String(bad[0])}' is not a tensor; expected a state_dict (optionally under ${WRAPPER_KEYS.join(' / ')})`);
  }
  const strip = entries.length > 0 && entries.every(([k]) => (k as string).startsWith('module.'));
  const out: Record<string, Tensor> = {};
  for (const [k, v] of entries) {
    const name = strip ? (k as string).slice('module.'.length) : (k as string);
    if (name === '__proto__') throw new CheckpointError(`${source}: key '__proto__' is not allowed`);
    out[name] = file.materialize(v as TensorRef, path + (k as string));
  }
  return out;
}
