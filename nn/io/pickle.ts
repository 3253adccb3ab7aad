// A small, safe unpickler for PyTorch state_dicts: the opcodes of pickle protocols 2 to 5 that torch.save emits for
// dicts of tensors, and nothing that runs code. GLOBAL may only name an entry of an explicit allow-list (the
// OrderedDict type, torch's tensor-rebuild functions and storage types); anything else (os.system, builtins.eval,
// ...) is rejected when it is referenced, before any REDUCE. REDUCE "calls" only the allow-listed builders here,
// which build plain descriptions (TensorRef), never executing anything from the file. Python values map to: None ->
// null, bool, int -> number (bigint when beyond 2^53), float -> number, str, bytes -> Uint8Array, list and tuple ->
// arrays, dict and OrderedDict -> Map.

import { CheckpointError } from '../errors.js';

/** A storage named by a persistent id: its element type, its key in the archive and its number of elements. */
export interface StorageRef {
  readonly kind: 'storage';
  readonly dtype: StorageDType;
  readonly key: string;
  readonly numel: number;
  /** Legacy files only: where a storage view starts inside its root storage. */
  readonly elementOffset?: number;
}

/** A tensor description from _rebuild_tensor_v2: a strided view into a storage. */
export interface TensorRef {
  readonly kind: 'tensor';
  readonly storage: StorageRef;
  readonly offset: number;
  readonly shape: number[];
  readonly stride: number[];
}

/** A reference to an allow-listed Python global. */
export interface GlobalRef {
  readonly kind: 'global';
  readonly name: string;
}

export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | Map<PyValue, PyValue> | StorageRef | TensorRef | GlobalRef;

export type StorageDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** Storage classes torch.save names, with their element type. */
export const STORAGE_TYPES: Record<string, StorageDType> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};

export const ITEM_SIZE: Record<StorageDType, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

type Builder = (args: PyValue[], fail: (msg: string) => never) => PyValue;

const isInt = (v: PyValue): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const intList = (v: PyValue, what: string, fail: (m: string) => never): number[] => {
  if (!Array.isArray(v) || !v.every((d) => isInt(d) && d >= 0)) fail(`${what} must be a tuple of non-negative integers`);
  return v as number[];
};

function rebuildTensor(args: PyValue[], fail: (m: string) => never): TensorRef {
  const [storage, offset, size, stride] = args;
  if (typeof storage !== 'object' || storage === null || !('kind' in storage) || storage.kind !== 'storage') fail('_rebuild_tensor_v2: first argument is not a storage');
  if (!isInt(offset) || offset < 0) fail('_rebuild_tensor_v2: storage offset must be a non-negative integer');
  const shape = intList(size, '_rebuild_tensor_v2: size', fail);
  const strides = intList(stride, '_rebuild_tensor_v2: stride', fail);
  if (shape.length !== strides.length) fail(`_rebuild_tensor_v2: size has ${shape.length} dims but stride ${strides.length}`);
  return { kind: 'tensor', storage: storage as StorageRef, offset, shape, stride: strides };
}

const isTensorRef = (v: PyValue): v is TensorRef => typeof v === 'object' && v !== null && 'kind' in v && v.kind === 'tensor';

/** The only callables a pickle may name. Storage classes and tensor types are allowed as values, never called. */
const BUILDERS: Record<string, Builder> = {
  'collections.OrderedDict': () => new Map(),
  'torch._utils._rebuild_tensor_v2': rebuildTensor,
  'torch._utils._rebuild_tensor': rebuildTensor,
  'torch._utils._rebuild_parameter': (a, fail) => (isTensorRef(a[0]) ? a[0] : fail('_rebuild_parameter: data is not a tensor')),
  'torch._utils._rebuild_parameter_with_state': (a, fail) => (isTensorRef(a[0]) ? a[0] : fail('_rebuild_parameter_with_state: data is not a tensor')),
  'torch._tensor._rebuild_from_type_v2': (a, fail) => {
    const [fn, , args] = a;
    const b = typeof fn === 'object' && fn !== null && 'kind' in fn && fn.kind === 'global' ? BUILDERS[fn.name] : undefined;
    if (!b || !Array.isArray(args)) fail('_rebuild_from_type_v2: expected an allow-listed function and an argument tuple');
    return b!(args as PyValue[], fail);
  },
};
const VALUE_GLOBALS = new Set<string>([
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
  'torch.Tensor', 'torch.nn.parameter.Parameter',
]);

/** The allow-list, for messages and tests. */
export const ALLOWED_GLOBALS: readonly string[] = [...Object.keys(BUILDERS), ...VALUE_GLOBALS];

export interface UnpickleOptions {
  /** Name of the file (and archive entry) for error messages. */
  source: string;
  /** Resolves a persistent id (torch's storage tuples). */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Start reading here (legacy torch files hold several pickles back to back). */
  start?: number;
}

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

/** Unpickle one object; returns it and the position just after its STOP opcode. */
export function unpickle(bytes: Uint8Array, o: UnpickleOptions): { value: PyValue; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = o.start ?? 0;
  const stack: Slot[] = [];
  const memo = new Map<number, PyValue>();
  const fail = (msg: string): never => {
    throw new CheckpointError(`${o.source}: pickle at byte ${pos}: ${msg}`);
  };
  const need = (n: number) => {
    if (n < 0 || pos + n > bytes.length) fail(`truncated: needs ${n} more bytes, ${bytes.length - pos} left`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(`length ${v} exceeds the ${bytes.length}-byte input`);
    return Number(v);
  };
  const raw = (n: number) => (need(n), (pos += n), bytes.subarray(pos - n, pos));
  const text = (n: number) => new TextDecoder('utf-8').decode(raw(n));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: unterminated text line');
    const s = new TextDecoder('latin1').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PyValue;
  };
  const popMark = (): PyValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('MARK expected on the stack');
    const items = stack.splice(i) as PyValue[];
    items.shift();
    return items;
  };
  const global = (module: string, name: string): PyValue => {
    const full = `${module}.${name}`;
    if (!Object.hasOwn(BUILDERS, full) && !VALUE_GLOBALS.has(full)) {
      fail(`refuses global '${full}': only ${ALLOWED_GLOBALS.join(', ')} may appear in a state_dict checkpoint`);
    }
    return { kind: 'global', name: full };
  };
  const long = (b: Uint8Array): number | bigint => {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (d: PyValue, kv: PyValue[]) => {
    if (!(d instanceof Map)) fail('SETITEM(S) on a non-dict');
    if (kv.length % 2) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < kv.length; i += 2) (d as Map<PyValue, PyValue>).set(kv[i], kv[i + 1]);
  };
  const appendTo = (l: PyValue, items: PyValue[]) => {
    if (!Array.isArray(l)) fail('APPEND(S) on a non-list');
    (l as PyValue[]).push(...items);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: { const p = u8(); if (p > 5) fail(`unsupported pickle protocol ${p}`); break; } // PROTO
      case 0x95: raw(8); break; // FRAME: framing is transparent
      case 0x2e: return { value: pop(), end: pos }; // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(raw(u8()))); break; // LONG1
      case 0x8b: { const n = i32(); if (n < 0) fail('negative LONG4 size'); stack.push(long(raw(n))); break; } // LONG4
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x49: { const s = line(); stack.push(s === '01' ? true : s === '00' ? false : Number.parseInt(s, 10)); break; } // INT
      case 0x58: stack.push(text(u32())); break; // BINUNICODE
      case 0x8c: stack.push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(text(u64())); break; // BINUNICODE8
      case 0x55: stack.push(new TextDecoder('latin1').decode(raw(u8()))); break; // SHORT_BINSTRING
      case 0x54: { const n = i32(); if (n < 0) fail('negative BINSTRING size'); stack.push(new TextDecoder('latin1').decode(raw(n))); break; } // BINSTRING
      case 0x43: stack.push(raw(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: stack.push(raw(u32()).slice()); break; // BINBYTES
      case 0x8e: stack.push(raw(u64()).slice()); break; // BINBYTES8
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x64: { const d = new Map<PyValue, PyValue>(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x61: { const v = pop(); appendTo(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendTo(top(), items); break; } // APPENDS
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x70: memo.set(Number.parseInt(line(), 10), top()); break; // PUT
      case 0x68: case 0x6a: case 0x67: { // BINGET, LONG_BINGET, GET
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : Number.parseInt(line(), 10);
        if (!memo.has(k)) fail(`memo key ${k} was never stored`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x63: { const m = line(); stack.push(global(m, line())); break; } // GLOBAL
      case 0x93: { const n = pop(); const m = pop(); if (typeof m !== 'string' || typeof n !== 'string') fail('STACK_GLOBAL needs two strings'); stack.push(global(m as string, n as string)); break; }
      case 0x52: { // REDUCE: only allow-listed builders
        const args = pop();
        const fn = pop();
        const name = typeof fn === 'object' && fn !== null && 'kind' in fn && fn.kind === 'global' ? fn.name : undefined;
        const b = name && Object.hasOwn(BUILDERS, name) ? BUILDERS[name] : undefined;
        if (!b || !Array.isArray(args)) fail(`REDUCE of ${name ?? 'a non-callable'} is not allowed`);
        stack.push(b!(args as PyValue[], fail));
        break;
      }
      case 0x62: { // BUILD: object state (OrderedDict _metadata, tensor hooks) is ignored, only on known objects
        pop();
        const obj = top();
        if (!(obj instanceof Map) && !isTensorRef(obj)) fail('BUILD on an object other than a dict or tensor');
        break;
      }
      case 0x51: { // BINPERSID
        if (!o.persistentLoad) fail('persistent id without a loader');
        stack.push(o.persistentLoad!(pop()));
        break;
      }
      default:
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')} (${JSON.stringify(String.fromCharCode(op))})`);
    }
  }
}
