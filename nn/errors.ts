// Errors raised by nn/: a state_dict that does not fit a model, and a checkpoint file that cannot be read. Both are
// PtslabErrors whose message names the file or module and every key involved.

import { PtslabError } from '../core/index.js';

/** A checkpoint file (safetensors, torch.save zip or legacy pickle) that is malformed, unsafe or unsupported. */
export class CheckpointError extends PtslabError {}

/** loadStateDict: missing or unexpected keys, or shapes that differ; every problem is listed in one message. */
export class StateDictError extends PtslabError {
  constructor(
    message: string,
    readonly missingKeys: readonly string[] = [],
    readonly unexpectedKeys: readonly string[] = [],
    readonly shapeMismatches: readonly string[] = [],
  ) {
    super(message);
  }
}
