// One-shot magnitude methods: an allocation rule says how many weights each layer loses, the smallest |w| of each
// layer go. `oneShotMethod` turns any allocation rule into a registered method (the built-in rules of
// sparsity/allocate.ts below; a plugin's new rule the same way). A rule returns integer counts or per-layer
// sparsities; sparsities are rounded (largest remainder) so that exactly round(S* N) weights are pruned, and counts
// must already sum to that.

import { z } from 'zod';
import { ArgumentError } from '../../core/index.js';
import { allocateLayers, roundCounts, type AllocationMethod } from '../allocate.js';
import { targetCount } from '../layers.js';
import { masksFromCounts } from '../masks.js';
import type { ModuleLayer } from '../prunable.js';
import { allocationSchema, defineMethod, erkPower, type MethodSpec } from './types.js';

export type AllocationRule<O extends z.ZodObject> = (
  layers: readonly ModuleLayer[],
  sparsity: number,
  o: z.output<O>,
) => { counts: number[] } | { sparsities: number[] };

/** Per-layer prune counts from a rule's answer, checked: one per layer, within the layer, summing to round(S* N). */
export function countsOf(name: string, layers: readonly ModuleLayer[], sparsity: number, a: { counts: number[] } | { sparsities: number[] }): number[] {
  const sizes = layers.map((l) => l.weight.size);
  const K = targetCount(layers, sparsity);
  const got = 'counts' in a ? a.counts : 'sparsities' in a ? a.sparsities : null;
  if (!Array.isArray(got) || got.length !== layers.length) {
    throw new ArgumentError(`method ${name}: the allocation rule must return { counts } or { sparsities } with one number per prunable layer (${layers.length}), got ${Array.isArray(got) ? got.length : typeof got}`);
  }
  const bad = got.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new ArgumentError(`method ${name}: the allocation rule gave ${got[bad]} for layer ${layers[bad].name}`);
  if ('sparsities' in a) {
    const out = got.findIndex((v) => v < 0 || v > 1);
    if (out >= 0) throw new ArgumentError(`method ${name}: sparsity ${got[out]} for layer ${layers[out].name} is outside [0, 1]`);
    return roundCounts(got.map((s, i) => s * sizes[i]), sizes, K);
  }
  const off = got.findIndex((c, i) => !Number.isInteger(c) || c < 0 || c > sizes[i]);
  if (off >= 0) throw new ArgumentError(`method ${name}: count ${got[off]} for layer ${layers[off].name} is not an integer in [0, ${sizes[off]}]`);
  const sum = got.reduce((s, c) => s + c, 0);
  if (sum !== K) throw new ArgumentError(`method ${name}: the counts prune ${sum} weights, the target needs exactly round(S* N) = ${K}`);
  return got;
}

/** A one-shot method from an allocation rule: BN re-calibration applies and adds a `+bnrecal` row. */
export function oneShotMethod<O extends z.ZodObject>(m: { name: string; description: string; options: O; allocate: AllocationRule<O> }): MethodSpec<O> {
  return defineMethod({
    name: m.name,
    description: m.description,
    options: m.options,
    bnRecal: 'one-shot',
    calibration: false,
    run: (ctx, o) => ({ masks: masksFromCounts(ctx.layers, countsOf(m.name, ctx.layers, ctx.sparsity, m.allocate(ctx.layers, ctx.sparsity, o))) }),
  });
}

const builtin = <O extends z.ZodObject>(method: AllocationMethod, description: string, options: O) =>
  oneShotMethod({ name: method, description, options, allocate: (layers, sparsity, o) => ({ counts: allocateLayers(layers, { method, sparsity, ...o }).counts }) });

const none = z.strictObject({});
export const uniform = builtin('uniform', 'every layer at the target sparsity', none);
export const global = builtin('global', 'one threshold on |w| over all layers', none);
export const globalL1 = builtin('global-l1', 'one threshold on |w| / ||W_l||_1', none);
export const globalL2 = builtin('global-l2', 'one threshold on |w| / ||W_l||_2', none);
export const erk = builtin('erk', 'Erdos-Renyi-kernel densities (dense layers capped)', z.strictObject({ erkPower }).partial());
export const lamp = builtin('lamp', 'LAMP scores w_u^2 / sum_{v >= u} w_v^2, globally smallest pruned', none);
export const given = builtin('given', "each layer at the sparsity --allocation names (e.g. another run's learned allocation)", z
  .strictObject({ allocation: allocationSchema.describe('per-layer sparsities by weight name (a result.json or { name: sparsity })').optional() })
  .refine((o) => o.allocation !== undefined, { message: 'method given needs an allocation (--allocation FILE, or allocation: in the config)', path: ['allocation'] }));
