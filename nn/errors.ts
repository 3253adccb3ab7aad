// Errors raised by nn/: a state_dict that does not fit a model, and a checkpoint file that cannot be read. Both are
// PtslabErrors whose message names the file or module and the keys involved (a StateDictError counts them and
// names the first few; its fields hold every one).

import { PtslabError } from '../core/index.js';

/** A checkpoint file (safetensors, torch.save zip or legacy pickle) that is malformed, unsafe or unsupported. */
export class CheckpointError extends PtslabError {}

/**
 * loadStateDict: missing or unexpected keys, or shapes that differ. The message gives how many of each and the
 * first 5 (then '...'), so a whole-model mismatch stays readable; the fields below are the complete lists.
 */
export class StateDictError extends PtslabError {
  constructor(
    message: string,
    /** Every key the model has and the record lacks (strict only), in the model's order. */
    readonly missingKeys: readonly string[] = [],
    /** Every key the record has and the model lacks (strict only), in the record's order. */
    readonly unexpectedKeys: readonly string[] = [],
    /** Every shape mismatch, as 'key: checkpoint [..], model [..]' (or 'key: not a tensor'). */
    readonly shapeMismatches: readonly string[] = [],
  ) {
    super(message);
  }
}
