// Helpers shared by the kernel families (imported, never re-exported by index.as, so they are no wasm exports).

/**
 * a * b + c on 4 float32 lanes, the multiply-add of every hot loop. The SIMD128 build (kernels.wasm) rounds twice
 * (mul, then add); the relaxed-SIMD build (kernels-fma.wasm, compiled with ASC_FEATURE_RELAXED_SIMD) emits
 * f32x4.relaxed_madd, which the engine may fuse (one rounding) or not: wasm.ts loads that build only where a probe
 * shows it fused, so one machine gives the same bits on every thread and every call.
 */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
