// Error classes. Every error ptslab throws is a PtslabError whose message names the op, file or field involved and
// the shapes or values it saw, so a researcher can tell what went wrong without a debugger.

export class PtslabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes that do not fit an op: broadcasting, matmul inner dims, concat, reshape sizes. */
export class ShapeError extends PtslabError {}

/** An argument outside what an op accepts: a negative stride, an axis out of range, groups not dividing channels. */
export class ArgumentError extends PtslabError {}

/** Misuse of the autograd engine: backward on a non-scalar without a gradient, a gradient of the wrong shape. */
export class AutogradError extends PtslabError {}

/** A NaN or Inf where a finite number is needed: a loss, a weight, a gradient. Names the tensor and the iteration. */
export class NumericError extends PtslabError {}

export const fmtShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;
