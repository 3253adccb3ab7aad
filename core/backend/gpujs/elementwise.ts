// Elementwise ops, where, clamp and reductions on gpu.js, over flat float32 operands (the backend gathers strided and
// broadcast views first; a broadcast scalar is passed as a number). Each op's expression is baked into its own
// kernel, one per (op, length, scalar pattern). pow is left to the reference backend: GLSL's
// pow is undefined for a negative base, which JavaScript's Math.pow answers for integer exponents.
// NaN: relu, maximum and minimum propagate NaN as the reference does, through explicit x !== x tests (which a GPU
// driver's compiler could still fold away: Mesa's folds `v <= 0.0 ? 0.0 : v` to 0 for NaN). Comparisons with a NaN
// operand give 0 as in the reference on llvmpipe, webasm and cpu (tested), but GLSL does not promise it.

import type { BinaryOp, UnaryOp } from '../types.js';
import { OWNED, type Flat, type KernelCache } from './kernels.js';
import type { KernelResult } from './loader.js';

const unaryExpr: Record<UnaryOp, string> = {
  neg: '-u',
  exp: 'Math.exp(u)',
  log: 'Math.log(u)',
  sqrt: 'Math.sqrt(u)',
  abs: 'Math.abs(u)',
  sign: 'u > 0.0 ? 1.0 : (u < 0.0 ? -1.0 : 0.0)',
  // 1 / (1 + e^-v): e^-v overflows to +inf for v << 0, giving 0, as it should.
  sigmoid: '1.0 / (1.0 + Math.exp(-u))',
  // tanh v = sign(v) (1 - e^-2|v|) / (1 + e^-2|v|): no overflow for any v.
  tanh: '(u < 0.0 ? -1.0 : 1.0) * (1.0 - Math.exp(-2.0 * Math.abs(u))) / (1.0 + Math.exp(-2.0 * Math.abs(u)))',
  // NaN stays NaN, as in the reference and PyTorch. The explicit u !== u test is needed: Mesa's GLSL compiler
  // folds u <= 0.0 (and u * 0.0) as if u were never NaN.
  relu: '(u > 0.0 || u !== u) ? u : 0.0',
};

const binaryExpr: Record<Exclude<BinaryOp, 'pow'>, string> = {
  add: 'u + v',
  sub: 'u - v',
  mul: 'u * v',
  div: 'u / v',
  // NaN in either operand gives NaN (u + v), as in the reference.
  maximum: '(u !== u || v !== v) ? u + v : (u > v ? u : v)',
  minimum: '(u !== u || v !== v) ? u + v : (u < v ? u : v)',
  gt: 'u > v ? 1.0 : 0.0',
  ge: 'u >= v ? 1.0 : 0.0',
  lt: 'u < v ? 1.0 : 0.0',
  le: 'u <= v ? 1.0 : 0.0',
  eq: 'u === v ? 1.0 : 0.0',
};

export const gpuBinaryOps = new Set<BinaryOp>(Object.keys(binaryExpr) as BinaryOp[]);

/** op(x) over n flat values; the result is the caller's (an owned texture on WebGL). */
/**
 * An elementwise kernel over n flat values: expr reads the operands as u, v, w (in order); each operand is a flat
 * array (read at the thread's index) or a number (a uniform: a scalar operand costs no upload and no texture).
 * One kernel per (name, n, which operands are numbers).
 */
function elementwise(cache: KernelCache, name: string, expr: string, args: readonly (Flat | number)[], n: number): KernelResult {
  const names = ['u', 'v', 'w'];
  const pattern = args.map((a) => (typeof a === 'number' ? 's' : 'a')).join('');
  const key = `${name}:${n}:${pattern}`;
  const source = () => `function(${args.map((_, i) => `p${i}`).join(', ')}) {
${args.map((a, i) => `  const ${names[i]} = ${typeof a === 'number' ? `p${i}` : `p${i}[this.thread.x]`};`).join('\n')}
  return ${expr};
}`;
  return cache.run(key, cache.get(key, source, { output: [n], ...OWNED }), ...args);
}

/** op(x) over n flat values; the result is the caller's (an owned texture on WebGL). */
export const gpuUnary = (cache: KernelCache, op: UnaryOp, x: Flat, n: number): KernelResult =>
  elementwise(cache, `unary:${op}`, unaryExpr[op], [x], n);

/** op(a, b) over n flat values of each; either may be a number (a broadcast scalar). */
export const gpuBinary = (cache: KernelCache, op: Exclude<BinaryOp, 'pow'>, a: Flat | number, b: Flat | number, n: number): KernelResult =>
  elementwise(cache, `binary:${op}`, binaryExpr[op], [a, b], n);

/** cond != 0 ? a : b over n flat values; a NaN condition picks a, as in the reference (Mesa folds NaN != 0 to false). */
export const gpuWhere = (cache: KernelCache, cond: Flat | number, a: Flat | number, b: Flat | number, n: number): KernelResult =>
  elementwise(cache, 'where', '(u !== 0.0 || u !== u) ? v : w', [cond, a, b], n);

/** min(max(x, lo), hi) over n flat values, lo and hi finite (baked into the kernel); NaN stays NaN. */
export function gpuClamp(cache: KernelCache, x: Flat, lo: number, hi: number, n: number): KernelResult {
  const [l, h] = [lo, hi].map((v) => (Number.isInteger(v) ? `${v}.0` : `${v}`));
  return elementwise(cache, `clamp:${lo}:${hi}`, `u !== u ? u : (u < ${l} ? ${l} : (u > ${h} ? ${h} : u))`, [x], n);
}

/**
 * Reduce a dense [..shape] operand over the sorted axes, one thread per output element looping over the reduced
 * elements in row-major order (the reference's order: the same float32 rounding for sums up to the last ulp of each
 * add). Output and reduced indices are peeled into coordinates with floor((r + 0.5) / d): the caller keeps both
 * counts below MAX_QUOTIENT. max/min propagate NaN as the reference does.
 */
export function gpuReduce(cache: KernelCache, op: 'sum' | 'max' | 'min', x: Flat, shape: readonly number[], axes: readonly number[]): KernelResult {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const R = axes.reduce((a, i) => a * shape[i], 1);
  const n = kept.reduce((a, i) => a * shape[i], 1);
  const peel = (dims: number[], v: string, at: string) =>
    [...dims].reverse().map((d) => `    { const q = Math.floor((${v} + 0.5) / ${shape[d]}.0); ${at} += (${v} - q * ${shape[d]}.0) * ${strides[d]}.0; ${v} = q; }`).join('\n');
  const combine = op === 'sum' ? 'acc + v' : `(acc !== acc || v !== v) ? acc + v : (v ${op === 'max' ? '>' : '<'} acc ? v : acc)`;
  const source = `function(x) {
  let o = this.thread.x;
  let base = 0.0;
${peel(kept, 'o', 'base')}
  let acc = x[base];
  for (let r = 1; r < ${R}; r++) {
    let rr = r;
    let at = base;
${peel([...axes], 'rr', 'at')}
    const v = x[at];
    acc = ${combine};
  }
  return acc;
}`;
  const key = `reduce:${op}:${shape}:${axes}`;
  return cache.run(key, cache.get(key, () => source, { output: [n], ...OWNED }), x);
}
