// Element types and the arrays that hold a tensor's elements. float32 is the default; float64 exists for gradient
// checks and as an oracle.
//
// A tensor's elements live where its backend keeps them (TensorData): a host typed array (Storage) on the reference
// and cpu backends, or a DeviceArray that a device backend owns (a texture on gpujs). JavaScript reads numbers only
// from host arrays; hostData() reads a device array back (the owning backend counts each readback).

export type DType = 'float32' | 'float64';
/** A host array of elements. */
export type Storage = Float32Array | Float64Array;

/**
 * An array a backend keeps on its device. Its values reach JavaScript only through read(), a readback that the owner
 * counts; kernels of the owner take it as it is, other backends read it back first.
 */
export interface DeviceArray {
  /** Name of the backend that owns it. */
  readonly device: string;
  readonly dtype: DType;
  readonly length: number;
  /** A fresh host copy of the values (one readback). */
  read(): Storage;
}

/** Where a tensor's elements live: a host array or a backend's device array. */
export type TensorData = Storage | DeviceArray;

export const isHost = (d: TensorData): d is Storage => d instanceof Float32Array || d instanceof Float64Array;

/** The elements as a host array: d itself when it is one, else a readback of the device array. */
export const hostData = (d: TensorData): Storage => (isHost(d) ? d : d.read());

export function allocate(dtype: DType, n: number): Storage {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

export function dtypeOf(data: TensorData): DType {
  return data instanceof Float64Array ? 'float64' : data instanceof Float32Array ? 'float32' : data.dtype;
}

/** Result type of a binary op: float64 wins. */
export function promote(a: DType, b: DType): DType {
  return a === 'float64' || b === 'float64' ? 'float64' : 'float32';
}
