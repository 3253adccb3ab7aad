// The Tensor: a strided view (data, shape, strides, offset: the ndarray model) over its elements (TensorData: a
// Float32Array or Float64Array on the host, or a device array the backend that made it owns), plus autograd state (requiresGrad, grad, and the node that produced it). Methods are thin aliases of the op
// functions in core/ops, so `x.add(y)` and `add(x, y)` are the same code. Creation functions live here too.

import { runBackward, type BackwardOptions, type Node } from './autograd.js';
import { backend } from './backend/index.js';
import type { Backend, View } from './backend/types.js';
import { allocate, dtypeOf, hostData, isHost, type DType, type Storage, type TensorData } from './dtype.js';
import { ArgumentError, AutogradError, ShapeError, fmtShape } from './errors.js';
import { globalGenerator, type Generator } from './random.js';
import { checkShape, contiguousStrides, numel, type Shape } from './shape.js';
import * as ew from './ops/elementwise.js';
import * as red from './ops/reduce.js';
import * as sh from './ops/shape.js';
import { matmul } from './ops/matmul.js';

export type Scalar = number;
export type TensorLike = Tensor | Scalar;
export type NestedArray = number | readonly NestedArray[];

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

export class Tensor implements View {
  /**
   * The elements, where the backend that made them keeps them. Read numbers with toArray()/item(); host code that
   * writes elements in place uses hostData (core/dtype.ts) on host tensors only. Replaced only by moveTo.
   */
  data: TensorData;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  /** The op that produced this tensor, when it was recorded for autograd; null for leaves. */
  node: Node | null = null;

  constructor(data: TensorData, shape: Shape, strides?: Shape, offset = 0, requiresGrad = false) {
    this.data = data;
    this.shape = [...shape];
    this.strides = strides ? [...strides] : contiguousStrides(shape);
    this.offset = offset;
    this.requiresGrad = requiresGrad;
  }

  get dtype(): DType {
    return dtypeOf(this.data);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  numel(): number {
    return numel(this.shape);
  }
  /** True when the elements are laid out row-major from offset with no gaps. */
  get isContiguous(): boolean {
    const s = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || s[i] === this.strides[i]);
  }
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** Contiguous row-major copy of the elements, on the host (a readback when they live on a device). */
  toArray(): Storage {
    // a device array this tensor covers in order: one readback, no copy on the device first
    if (!isHost(this.data) && this.offset === 0 && this.data.length === this.size && this.isContiguous) return this.data.read();
    return hostData(backend().contiguous(this));
  }
  /** True when the elements are a host typed array (false: a device array some backend owns). */
  get isHost(): boolean {
    return isHost(this.data);
  }
  /**
   * Move the elements, in place, to where `b` keeps arrays: uploaded to b's device when b has one (Backend.upload),
   * else read back to the host. PyTorch's param.data = param.data.to(device): views made before keep the old array.
   * Returns this.
   */
  moveTo(b: Backend): this {
    if (!isHost(this.data) && this.data.device === b.name) return this;
    const host = hostData(this.data);
    this.data = b.upload ? b.upload(host) : host;
    return this;
  }
  /** Nested JavaScript arrays (a number for a 0-d tensor). */
  toList(): NestedArray {
    const flat = Array.from(this.toArray());
    const build = (dim: number, start: number): NestedArray => {
      if (dim === this.ndim) return flat[start];
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, start + i * step));
    };
    return build(0, 0);
  }
  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ShapeError(`item: tensor of shape ${fmtShape(this.shape)} has ${this.size} elements, not 1`);
    return hostData(this.data)[this.offset];
  }

  /**
   * Backpropagate from this tensor. Without an argument it must hold one element (a loss); otherwise pass the
   * upstream gradient, of this tensor's shape.
   */
  backward(grad?: Tensor, opts?: BackwardOptions): void {
    if (grad === undefined) {
      if (this.size !== 1) {
        throw new AutogradError(
          `backward: called on a tensor of shape ${fmtShape(this.shape)} without a gradient; only one-element tensors get an implicit gradient of 1`,
        );
      }
      grad = full(this.shape, 1, { dtype: this.dtype });
    }
    runBackward(this, grad, opts);
  }

  /** A tensor sharing this one's data with no graph and requiresGrad = false. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, this.strides, this.offset);
  }
  /** Set requiresGrad in place (leaves only), PyTorch's requires_grad_(). */
  requiresGrad_(on = true): this {
    if (!this.isLeaf) throw new AutogradError('requiresGrad_: only leaf tensors can change requiresGrad');
    this.requiresGrad = on;
    return this;
  }
  /** Copy src's values into this tensor in place (broadcast to this shape); never recorded. */
  copy_(src: TensorLike): this {
    const s = typeof src === 'number' ? full([], src, { dtype: this.dtype }) : src;
    const v = sh.expandView('copy_', s.dtype === this.dtype ? s : s.detach().to(this.dtype), this.shape);
    backend().assign(this, v);
    return this;
  }

  // Elementwise (NumPy broadcasting; a number is a scalar).
  add(y: TensorLike) { return ew.add(this, y); }
  sub(y: TensorLike) { return ew.sub(this, y); }
  mul(y: TensorLike) { return ew.mul(this, y); }
  div(y: TensorLike) { return ew.div(this, y); }
  pow(y: TensorLike) { return ew.pow(this, y); }
  maximum(y: TensorLike) { return ew.maximum(this, y); }
  minimum(y: TensorLike) { return ew.minimum(this, y); }
  gt(y: TensorLike) { return ew.gt(this, y); }
  ge(y: TensorLike) { return ew.ge(this, y); }
  lt(y: TensorLike) { return ew.lt(this, y); }
  le(y: TensorLike) { return ew.le(this, y); }
  eq(y: TensorLike) { return ew.eq(this, y); }
  neg() { return ew.neg(this); }
  exp() { return ew.exp(this); }
  log() { return ew.log(this); }
  sqrt() { return ew.sqrt(this); }
  abs() { return ew.abs(this); }
  sign() { return ew.sign(this); }
  sigmoid() { return ew.sigmoid(this); }
  tanh() { return ew.tanh(this); }
  relu() { return ew.relu(this); }
  relu6() { return ew.relu6(this); }
  clamp(min?: number, max?: number) { return ew.clamp(this, min, max); }
  /** PyTorch's x.where(cond, y): cond ? x : y. */
  where(cond: Tensor, y: TensorLike) { return ew.where(cond, this, y); }

  // Reductions (axis: one axis, a list, or all when omitted).
  sum(axis?: number | readonly number[], keepDim = false) { return red.sum(this, axis, keepDim); }
  mean(axis?: number | readonly number[], keepDim = false) { return red.mean(this, axis, keepDim); }
  max(axis?: number | readonly number[], keepDim = false) { return red.max(this, axis, keepDim); }
  min(axis?: number | readonly number[], keepDim = false) { return red.min(this, axis, keepDim); }
  var(axis?: number | readonly number[], keepDim = false, correction = 1) { return red.variance(this, axis, keepDim, correction); }
  argmax(axis: number) { return red.argmax(this, axis); }

  // Shape.
  reshape(...shape: number[] | [readonly number[]]) { return sh.reshape(this, shapeArg(shape)); }
  view(...shape: number[] | [readonly number[]]) { return sh.reshape(this, shapeArg(shape)); }
  permute(...dims: number[] | [readonly number[]]) { return sh.permute(this, shapeArg(dims)); }
  transpose(dim0: number, dim1: number) { return sh.transpose(this, dim0, dim1); }
  get T() { return sh.permute(this, this.shape.map((_, i) => this.ndim - 1 - i)); }
  expand(...shape: number[] | [readonly number[]]) { return sh.expand(this, shapeArg(shape)); }
  slice(dim: number, start?: number, end?: number, step = 1) { return sh.slice(this, dim, start, end, step); }
  pad(pads: readonly number[], value = 0) { return sh.pad(this, pads, value); }
  flatten(startDim = 0, endDim = -1) { return sh.flatten(this, startDim, endDim); }
  squeeze(dim?: number) { return sh.squeeze(this, dim); }
  unsqueeze(dim: number) { return sh.unsqueeze(this, dim); }
  contiguous() { return sh.contiguous(this); }
  clone() { return sh.clone(this); }
  to(dtype: DType) { return sh.cast(this, dtype); }
  matmul(y: Tensor) { return matmul(this, y); }

  toString(): string {
    return `Tensor(shape=${fmtShape(this.shape)}, dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

function shapeArg(args: number[] | [readonly number[]]): number[] {
  return Array.isArray(args[0]) ? [...(args[0] as readonly number[])] : (args as number[]);
}

/**
 * The host array of t's elements, for host code that reads or writes them in place (optimizers, gradcheck's
 * perturbations). A tensor on a device has none: the error names op and the device (moveTo a host backend first).
 */
export function hostElements(t: Tensor, op: string): Storage {
  if (!isHost(t.data)) {
    throw new ArgumentError(`${op}: needs a tensor on the host, got ${t} on device '${t.data.device}'; move it with t.moveTo(backend) to a host backend (cpu, reference) first`);
  }
  return t.data;
}

/** A fresh contiguous tensor over elements the caller hands over (a host array, or a kernel's output). */
export function fromStorage(data: TensorData, shape: Shape): Tensor {
  if (data.length !== numel(shape)) {
    throw new ShapeError(`fromStorage: ${data.length} elements do not fill shape ${fmtShape(shape)}`);
  }
  return new Tensor(data, shape);
}

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let d: NestedArray = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    d = (d as readonly NestedArray[])[0];
  }
  return shape;
}

/**
 * Create a tensor from a number, nested arrays, or a flat array/typed array (then shape is required unless it is
 * 1-D). The data is always copied.
 */
export function tensor(data: NestedArray | ArrayLike<number>, shape?: Shape, opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? 'float32';
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (typeof data === 'number') {
    flat = [data];
    inferred = [];
  } else if (Array.isArray(data) && data.some((d) => Array.isArray(d))) {
    inferred = inferShape(data as NestedArray);
    flat = (data as unknown[]).flat(Infinity) as number[];
    if (flat.length !== numel(inferred)) {
      throw new ShapeError(`tensor: nested array is ragged (expected ${numel(inferred)} elements for ${fmtShape(inferred)}, found ${flat.length})`);
    }
  } else {
    flat = data as ArrayLike<number>;
    inferred = [flat.length];
  }
  const s = shape ? [...shape] : inferred;
  checkShape('tensor', s);
  if (numel(s) !== flat.length) {
    throw new ShapeError(`tensor: ${flat.length} values do not fill shape ${fmtShape(s)} (${numel(s)} elements)`);
  }
  const store = allocate(dtype, flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number') throw new ArgumentError(`tensor: element ${i} is ${typeof v}, not a number`);
    store[i] = v;
  }
  return new Tensor(store, s, undefined, 0, opts.requiresGrad ?? false);
}

export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  checkShape('full', shape);
  const data = allocate(opts.dtype ?? 'float32', numel(shape));
  if (value !== 0) data.fill(value);
  return new Tensor(data, shape, undefined, 0, opts.requiresGrad ?? false);
}

export const zeros = (shape: Shape, opts?: TensorOptions): Tensor => full(shape, 0, opts);
export const ones = (shape: Shape, opts?: TensorOptions): Tensor => full(shape, 1, opts);
export const zerosLike = (t: Tensor, opts?: TensorOptions): Tensor => full(t.shape, 0, { dtype: t.dtype, ...opts });
export const onesLike = (t: Tensor, opts?: TensorOptions): Tensor => full(t.shape, 1, { dtype: t.dtype, ...opts });

/** Values start, start + step, ... below end (PyTorch's arange; arange(n) = 0..n-1). */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(step)) throw new ArgumentError(`arange: step must be a non-zero finite number, got ${step}`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const data = allocate(opts.dtype ?? 'float32', n);
  for (let i = 0; i < n; i++) data[i] = start + i * step;
  return new Tensor(data, [n], undefined, 0, opts.requiresGrad ?? false);
}

export interface RandomOptions extends TensorOptions {
  /** Draw from this generator instead of the global one (manualSeed). */
  generator?: Generator;
}

/** Uniform in [low, high), default [0, 1). */
export function rand(shape: Shape, opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  const data = allocate(opts.dtype ?? 'float32', numel(shape));
  const g = opts.generator ?? globalGenerator();
  const lo = opts.low ?? 0;
  const span = (opts.high ?? 1) - lo;
  for (let i = 0; i < data.length; i++) data[i] = lo + span * g.uniform();
  return new Tensor(data, shape, undefined, 0, opts.requiresGrad ?? false);
}

/** Normal with the given mean and std, default standard normal. */
export function randn(shape: Shape, opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  const data = allocate(opts.dtype ?? 'float32', numel(shape));
  const g = opts.generator ?? globalGenerator();
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  for (let i = 0; i < data.length; i++) data[i] = mean + std * g.normal();
  return new Tensor(data, shape, undefined, 0, opts.requiresGrad ?? false);
}

/** A number becomes a 0-d tensor of the given dtype; a tensor passes through. */
export function asTensor(x: TensorLike, dtype: DType): Tensor {
  return typeof x === 'number' ? full([], x, { dtype }) : x;
}
