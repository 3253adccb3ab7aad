// The built-in pruning methods, one module each, in one table typed over their names: the registry starts from
// it, and `BuiltinMethodName` is its key type. The order is the order of `--help` and of the quickstart table.

import type { MethodSpec } from './types.js';
import { fcpts } from './fcpts.js';
import { erk, given, global, globalL1, globalL2, lamp, uniform } from './one-shot.js';
import { pot } from './pot.js';
import { erkKd } from './erk-kd.js';

export const BUILTIN_METHODS = {
  fcpts,
  uniform,
  global,
  'global-l1': globalL1,
  'global-l2': globalL2,
  erk,
  lamp,
  given,
  pot,
  'erk-kd': erkKd,
} satisfies Record<string, MethodSpec>;
export type BuiltinMethodName = keyof typeof BUILTIN_METHODS;

export { defineMethod, commonOptions, distillOptions, allocationSchema, RESERVED_KEYS, type BnRecal, type CommonOptions, type MethodContext, type MethodResult, type MethodSpec } from './types.js';
export { oneShotMethod, countsOf, type AllocationRule } from './one-shot.js';
