// Elementwise unary and binary ops on gpu.js, for dense (contiguous, same-shape, no broadcast) float32 inputs. Each
// op's expression is baked into its own kernel, one per (op, length). pow is left to the reference backend: GLSL's
// pow is undefined for a negative base, which JavaScript's Math.pow answers for integer exponents.
// NaN: relu, maximum and minimum propagate NaN as the reference does, through explicit x !== x tests (which a GPU
// driver's compiler could still fold away: Mesa's folds `v <= 0.0 ? 0.0 : v` to 0 for NaN). Comparisons with a NaN
// operand give 0 as in the reference on llvmpipe, webasm and cpu (tested), but GLSL does not promise it.

import type { BinaryOp, UnaryOp } from '../types.js';
import { readFlat, type KernelCache } from './kernels.js';

const unaryExpr: Record<UnaryOp, string> = {
  neg: '-v',
  exp: 'Math.exp(v)',
  log: 'Math.log(v)',
  sqrt: 'Math.sqrt(v)',
  abs: 'Math.abs(v)',
  sign: 'v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0)',
  // 1 / (1 + e^-v): e^-v overflows to +inf for v << 0, giving 0, as it should.
  sigmoid: '1.0 / (1.0 + Math.exp(-v))',
  // tanh v = sign(v) (1 - e^-2|v|) / (1 + e^-2|v|): no overflow for any v.
  tanh: '(v < 0.0 ? -1.0 : 1.0) * (1.0 - Math.exp(-2.0 * Math.abs(v))) / (1.0 + Math.exp(-2.0 * Math.abs(v)))',
  // NaN stays NaN, as in the reference and PyTorch. The explicit v !== v test is needed: Mesa's GLSL compiler
  // folds v <= 0.0 (and v * 0.0) as if v were never NaN.
  relu: '(v > 0.0 || v !== v) ? v : 0.0',
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

export function gpuUnary(cache: KernelCache, op: UnaryOp, x: Float32Array): Float32Array {
  const key = `unary:${op}:${x.length}`;
  const k = cache.get(key, () => `function(a) {\n  const v = a[this.thread.x];\n  return ${unaryExpr[op]};\n}`, {
    output: [x.length],
  });
  return readFlat(cache.run(key, k, x), x.length);
}

export function gpuBinary(cache: KernelCache, op: Exclude<BinaryOp, 'pow'>, a: Float32Array, b: Float32Array): Float32Array {
  const key = `binary:${op}:${a.length}`;
  const k = cache.get(
    key,
    () => `function(a, b) {\n  const u = a[this.thread.x];\n  const v = b[this.thread.x];\n  return ${binaryExpr[op]};\n}`,
    { output: [a.length] },
  );
  return readFlat(cache.run(key, k, a, b), a.length);
}
