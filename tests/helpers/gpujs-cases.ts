// What the two gpujs suites (tests/gpujs.test.ts through the backend, tests/gpujs-resident.test.ts on the kernels)
// share: seeded data, the float32 comparison, and the random conv cases.

import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { convOut } from '../../core/backend/reference.js';
import type { Conv2dParams } from '../../core/backend/types.js';
import type { Storage } from '../../core/dtype.js';

/** A seeded uniform generator in [-1, 1): data come from one fast-check integer, so shrinking acts on shapes. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

/** Every |got - want| <= atol + rtol |want|; NaN must meet NaN, infinities must be equal; same element type. */
export function close(what: string, got: Storage, want: Storage, atol: number, rtol = 1e-4): void {
  assert.is(got.length, want.length, `${what}: length`);
  assert.is(got.constructor, want.constructor, `${what}: element type`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (g === w || (Number.isNaN(w) && Number.isNaN(g))) continue;
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) {
      assert.unreachable(`${what}: element ${i} is ${g}, reference ${w} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

/** float32 tolerance for a sum of `terms` products of values in [-1, 1]. */
export const sumTol = (terms: number) => 1e-5 * (4 + Math.sqrt(terms) * 4);

export interface ConvCase {
  n: number; groups: number; cg: number; og: number; depthwise: boolean; kh: number; kw: number;
  stride: [number, number]; padding: [number, number]; dilation: [number, number]; h: number; w: number;
  bias: boolean; seed: number;
}

export function convParams(c: { stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number }): Conv2dParams {
  return { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
}

/** Random convs with at least one output pixel: groups, depthwise, stride, padding, dilation, odd sizes; extra fields merged in. */
export function convCases<X extends object>(maxN: number, extra: { [K in keyof X]: fc.Arbitrary<X[K]> } = {} as never): fc.Arbitrary<ConvCase & X> {
  return fc
    .record({
      n: fc.integer({ min: 1, max: maxN }),
      groups: fc.integer({ min: 1, max: 3 }),
      cg: fc.integer({ min: 1, max: 3 }),
      og: fc.integer({ min: 1, max: 3 }),
      depthwise: fc.boolean(),
      kh: fc.integer({ min: 1, max: 3 }),
      kw: fc.integer({ min: 1, max: 3 }),
      stride: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
      padding: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
      dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
      h: fc.integer({ min: 1, max: 9 }),
      w: fc.integer({ min: 1, max: 9 }),
      bias: fc.boolean(),
      seed: fc.integer(),
      ...extra,
    })
    .map((c) => (c.depthwise ? { ...c, cg: 1, og: 1, groups: c.groups + 1 } : c))
    .filter((c) => {
      const { OH, OW } = convOut(c.h, c.w, c.kh, c.kw, convParams(c));
      return OH >= 1 && OW >= 1;
    }) as unknown as fc.Arbitrary<ConvCase & X>;
}
