// Writing .pth files that PyTorch's torch.load reads (also with weights_only=True): the zip format of torch.save
// (PyTorch >= 1.6), for a state_dict of tensors. The archive holds <name>/data.pkl, a pickle (protocol 2) of an
// OrderedDict whose values are torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()), each
// storage a persistent id ('storage', torch.FloatStorage | DoubleStorage | LongStorage, key, 'cpu', numel); the
// raw little-endian storages <name>/data/<key>, each starting on a 64-byte boundary of the file (as torch pads them,
// with an 'FB' extra field); <name>/byteorder = 'little' and <name>/version = '3'. Entries are stored, not deflated
// (fflate's zipSync at level 0), with a fixed timestamp, so the same state_dict always gives the same bytes.
// Element types: float32 tensors as FloatStorage, float64 as DoubleStorage, and int64 (LongStorage, values must be
// integers) for keys ending in num_batches_tracked or on request.

import { writeFileSync } from 'node:fs';
import { zipSync, type Zippable } from 'fflate';
import { hostData } from '../../core/index.js';
import { Tensor } from '../tensor-utils.js';
import { CheckpointError } from '../errors.js';

export type TorchSaveDType = 'float32' | 'float64' | 'int64';

export interface SaveTorchOptions {
  /** Element type per key; default: int64 for keys ending in num_batches_tracked, else the tensor's dtype. */
  dtypes?: Record<string, TorchSaveDType>;
  /** The archive's top-level folder (torch names it after the file; any name loads). Default 'archive'. */
  archiveName?: string;
}

const STORAGE: Record<TorchSaveDType, { cls: string; size: number }> = {
  float32: { cls: 'FloatStorage', size: 4 },
  float64: { cls: 'DoubleStorage', size: 8 },
  int64: { cls: 'LongStorage', size: 8 },
};

/** The alignment torch.save gives every storage inside the file. */
export const TORCH_STORAGE_ALIGNMENT = 64;
/** Extra-field id torch's zip writer pads local headers with ("FB"). */
const PAD_FIELD = 0x4246;
/** A fixed modification time (DOS dates start in 1980), so output bytes depend on the state_dict only. */
const MTIME = new Date(1980, 0, 1, 0, 0, 0);

/** A minimal protocol-2 pickler: just the opcodes a state_dict of tensors needs, with memoised globals. */
class Pickler {
  private buf = new Uint8Array(1024);
  private len = 0;
  private readonly memo = new Map<string, number>();

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  op(...bytes: number[]): void {
    this.ensure(bytes.length);
    for (const b of bytes) this.buf[this.len++] = b;
  }
  private u32(v: number): void {
    this.op(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** BINUNICODE: 'X', u32 byte length, UTF-8. */
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.op(0x58);
    this.u32(b.length);
    this.raw(b);
  }
  /** BININT1 / BININT2 / BININT, or LONG1 beyond 32 bits. */
  int(v: number): void {
    if (!Number.isSafeInteger(v)) throw new CheckpointError(`torch-save pickler: ${v} is not a safe integer`);
    if (v >= 0 && v < 256) this.op(0x4b, v);
    else if (v >= 0 && v < 65536) this.op(0x4d, v & 0xff, v >> 8);
    else if (v >= -(2 ** 31) && v < 2 ** 31) {
      this.op(0x4a);
      this.u32(v >>> 0);
    } else {
      // LONG1: little-endian two's complement, as few bytes as keep the sign.
      let x = BigInt(v);
      const bytes: number[] = [];
      do {
        bytes.push(Number(x & 0xffn));
        x >>= 8n;
      } while (!((x === 0n && (bytes[bytes.length - 1] & 0x80) === 0) || (x === -1n && (bytes[bytes.length - 1] & 0x80) !== 0)));
      this.op(0x8a, bytes.length, ...bytes);
    }
  }
  /** GLOBAL 'module\nname\n' the first time (then BINPUT), BINGET after. */
  global(module: string, name: string): void {
    const full = `${module}\n${name}\n`;
    const at = this.memo.get(full);
    if (at !== undefined) {
      if (at < 256) this.op(0x68, at); // BINGET
      else {
        this.op(0x6a); // LONG_BINGET
        this.u32(at);
      }
      return;
    }
    this.op(0x63);
    this.raw(new TextEncoder().encode(full));
    const id = this.memo.size;
    this.memo.set(full, id);
    if (id < 256) this.op(0x71, id); // BINPUT
    else {
      this.op(0x72); // LONG_BINPUT
      this.u32(id);
    }
  }
  /** A tuple of integers. */
  intTuple(xs: readonly number[]): void {
    if (xs.length === 0) return this.op(0x29); // EMPTY_TUPLE
    if (xs.length > 3) this.op(0x28); // MARK
    for (const x of xs) this.int(x);
    this.op(xs.length === 1 ? 0x85 : xs.length === 2 ? 0x86 : xs.length === 3 ? 0x87 : 0x74); // TUPLE1/2/3, TUPLE
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const OP = { MARK: 0x28, EMPTY_TUPLE: 0x29, REDUCE: 0x52, TUPLE: 0x74, SETITEMS: 0x75, BINPERSID: 0x51, NEWFALSE: 0x89, STOP: 0x2e } as const;
const isLittleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The raw little-endian bytes of a tensor's elements (row-major) as dtype; throws for non-integers in int64. */
function storageBytes(key: string, t: Tensor, dtype: TorchSaveDType): Uint8Array {
  const src = t.isContiguous && t.isHost ? hostData(t.data).subarray(t.offset, t.offset + t.size) : t.toArray();
  if (dtype === 'float32' && src instanceof Float32Array && isLittleEndianHost) return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  if (dtype === 'float64' && src instanceof Float64Array && isLittleEndianHost) return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  const out = new Uint8Array(src.length * STORAGE[dtype].size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < src.length; i++) {
    if (dtype === 'float32') dv.setFloat32(4 * i, src[i], true);
    else if (dtype === 'float64') dv.setFloat64(8 * i, src[i], true);
    else {
      if (!Number.isSafeInteger(src[i])) throw new CheckpointError(`serializeTorchZip: '${key}' element ${i} is ${src[i]}, not an integer, so it cannot be written as int64`);
      dv.setBigInt64(8 * i, BigInt(src[i]), true);
    }
  }
  return out;
}

/** The element type a key is written as (see SaveTorchOptions.dtypes). */
export function torchSaveDType(key: string, t: Tensor, o: SaveTorchOptions = {}): TorchSaveDType {
  const d = o.dtypes?.[key];
  if (d !== undefined) {
    if (!Object.hasOwn(STORAGE, d)) throw new CheckpointError(`serializeTorchZip: '${key}': dtype '${d}' is not one of ${Object.keys(STORAGE).join(', ')}`);
    return d;
  }
  return key.endsWith('num_batches_tracked') ? 'int64' : t.dtype;
}

/** A state_dict as the bytes of a torch.save zip file (see the file comment for the layout). */
export function serializeTorchZip(stateDict: Record<string, Tensor>, o: SaveTorchOptions = {}): Uint8Array {
  const name = o.archiveName ?? 'archive';
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name === '.' || name === '..') {
    throw new CheckpointError(`serializeTorchZip: archive name '${name}' must be one path segment of letters, digits, '_', '.' or '-'`);
  }
  for (const k of Object.keys(o.dtypes ?? {})) {
    if (!Object.hasOwn(stateDict, k)) throw new CheckpointError(`serializeTorchZip: dtypes names '${k}', which is not in the state_dict`);
  }
  const p = new Pickler();
  p.op(0x80, 2); // PROTO 2
  p.global('collections', 'OrderedDict');
  p.op(OP.EMPTY_TUPLE, OP.REDUCE);
  const storages: Uint8Array[] = [];
  const entries = Object.entries(stateDict);
  // SETITEMS in batches of 1000, as Python's pickler does.
  for (let start = 0; start < entries.length; start += 1000) {
    p.op(OP.MARK);
    for (const [key, t] of entries.slice(start, start + 1000)) {
      if (!(t instanceof Tensor)) throw new CheckpointError(`serializeTorchZip: '${key}' is not a Tensor`);
      const dtype = torchSaveDType(key, t, o);
      const storageKey = String(storages.length);
      storages.push(storageBytes(key, t, dtype));
      p.str(key);
      p.global('torch._utils', '_rebuild_tensor_v2');
      p.op(OP.MARK);
      p.op(OP.MARK);
      p.str('storage');
      p.global('torch', STORAGE[dtype].cls);
      p.str(storageKey);
      p.str('cpu');
      p.int(t.size);
      p.op(OP.TUPLE, OP.BINPERSID);
      p.int(0); // storage offset
      p.intTuple(t.shape);
      let stride = 1;
      const strides = t.shape.map(() => 0);
      for (let d = t.shape.length - 1; d >= 0; d--) {
        strides[d] = stride;
        stride *= t.shape[d];
      }
      p.intTuple(strides);
      p.op(OP.NEWFALSE); // requires_grad
      p.global('collections', 'OrderedDict'); // backward_hooks
      p.op(OP.EMPTY_TUPLE, OP.REDUCE);
      p.op(OP.TUPLE, OP.REDUCE);
    }
    p.op(OP.SETITEMS);
  }
  p.op(OP.STOP);

  // Pad each storage's local header (extra field 'FB') so its data starts on a 64-byte boundary of the file.
  const files: Zippable = {};
  let offset = 0;
  const add = (entry: string, data: Uint8Array, align: boolean) => {
    const nameLen = new TextEncoder().encode(entry).length;
    let pad = align ? (TORCH_STORAGE_ALIGNMENT - ((offset + 30 + nameLen) % TORCH_STORAGE_ALIGNMENT)) % TORCH_STORAGE_ALIGNMENT : 0;
    if (pad > 0 && pad < 4) pad += TORCH_STORAGE_ALIGNMENT; // an extra field takes at least its 4-byte header
    const extra = pad > 0 ? { [PAD_FIELD]: new Uint8Array(pad - 4) } : undefined;
    files[entry] = [data, { level: 0, mtime: MTIME, ...(extra ? { extra } : {}) }];
    offset += 30 + nameLen + pad + data.length;
  };
  add(`${name}/data.pkl`, p.bytes(), false);
  add(`${name}/byteorder`, new TextEncoder().encode('little'), false);
  storages.forEach((b, i) => add(`${name}/data/${i}`, b, true));
  add(`${name}/version`, new TextEncoder().encode('3\n'), false);
  return zipSync(files, { level: 0, mtime: MTIME });
}

/** Write a state_dict as a .pth file (torch.save's zip format). */
export function saveTorch(path: string, stateDict: Record<string, Tensor>, o: SaveTorchOptions = {}): void {
  const bytes = serializeTorchZip(stateDict, o);
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new CheckpointError(`saveTorch ${path}: cannot write (${(e as Error).message})`);
  }
}
