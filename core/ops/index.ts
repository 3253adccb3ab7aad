// The op table: every op, by name. OpName is derived from it, so a test table typed over OpName fails to compile
// when an op is added without a case.

import { elementwiseOps } from './elementwise.js';
import { reduceOps } from './reduce.js';
import { shapeOps } from './shape.js';
import { matmulOps } from './matmul.js';
import { convOps } from './conv.js';
import { poolOps } from './pool.js';
import { normOps } from './norm.js';

export const ops = { ...elementwiseOps, ...reduceOps, ...shapeOps, ...matmulOps, ...convOps, ...poolOps, ...normOps };
export type OpName = keyof typeof ops;
