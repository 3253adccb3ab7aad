// Element decoding shared by the checkpoint readers: raw bytes of one element type (float32/64, float16, bfloat16,
// integers, bool; little- or big-endian) to the Float32Array or Float64Array a Tensor holds. Float64 and 64/32-bit
// integers become Float64Array (int64 values must be exact in a double); the rest become Float32Array.

export type ElementType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const ELEMENT_SIZE: Record<ElementType, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

const F16_EXP = new Float64Array(32).map((_, e) => 2 ** (e - 15));

/** IEEE half precision bits to a number (subnormals, infinities, NaN included). */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * F16_EXP[e];
}

/**
 * Decode count elements starting at bytes[0]. Returns an error message (for the caller to wrap with file and tensor)
 * when an int64 value is not exactly representable as a double.
 */
export function decodeElements(bytes: Uint8Array, type: ElementType, count: number, littleEndian = true): Float32Array | Float64Array | string {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = littleEndian;
  switch (type) {
    case 'float32': {
      const out = new Float32Array(count);
      if (le && (bytes.byteOffset & 3) === 0 && isLittleEndianHost) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
      else if (le && isLittleEndianHost) new Uint8Array(out.buffer).set(bytes.subarray(0, count * 4));
      else for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, le);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      if (le && isLittleEndianHost) new Uint8Array(out.buffer).set(bytes.subarray(0, count * 8));
      else for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, le);
      return out;
    }
    case 'float16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToNumber(dv.getUint16(i * 2, le));
      return out;
    }
    case 'bfloat16': {
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = dv.getUint16(i * 2, le) << 16;
      return out;
    }
    case 'int64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const v = dv.getBigInt64(i * 8, le);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
          return `int64 element ${i} (${v}) is not exactly representable as a double`;
        }
        out[i] = Number(v);
      }
      return out;
    }
    case 'int32': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(i * 4, le);
      return out;
    }
    case 'int16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(i * 2, le);
      return out;
    }
    case 'int8': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getInt8(i);
      return out;
    }
    case 'uint8':
    case 'bool': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = bytes[i];
      return out;
    }
  }
}

const isLittleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
