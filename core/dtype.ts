// Element types. float32 is the default; float64 exists for gradient checks and as an oracle.

export type DType = 'float32' | 'float64';
export type Storage = Float32Array | Float64Array;

export function allocate(dtype: DType, n: number): Storage {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

export function dtypeOf(data: Storage): DType {
  return data instanceof Float64Array ? 'float64' : 'float32';
}

/** Result type of a binary op: float64 wins. */
export function promote(a: DType, b: DType): DType {
  return a === 'float64' || b === 'float64' ? 'float64' : 'float32';
}
