// `ptslab convert <in> <out>`: a checkpoint (torch.save .pth in either format, or safetensors; the format is read
// from the file's content) to a .safetensors file, then read back and compared value for value. Prints the number of
// tensors and elements. The output is written atomically (temporary file, verified, then renamed). Writing torch.save
// files is not supported (it would need a pickler); PyTorch reads safetensors.

import { renameSync, rmSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import type { Tensor } from '../../core/index.js';
import { CheckpointError, loadCheckpoint, loadSafetensors, saveSafetensors } from '../../nn/index.js';
import { packageVersion } from './version.js';
import { runCommand, usageFailures } from './common.js';

interface ConvertArgs {
  in: string;
  out: string;
  verbose?: boolean;
}

export function convertCheckpoint(input: string, output: string): { tensors: number; elements: number } {
  if (!output.endsWith('.safetensors')) {
    throw new CheckpointError(`convert: the output must be a .safetensors file (writing torch.save files is not supported), got ${output}`);
  }
  const record = loadCheckpoint(input);
  // Written beside the output and renamed once verified: a killed or failed convert never leaves a torn output.
  const tmp = `${output}.tmp-${process.pid}`;
  try {
    try {
      saveSafetensors(tmp, record, { format: 'pt', converted_by: `ptslab ${packageVersion()}`, source: input });
    } catch (e) {
      throw new CheckpointError(`${output}: cannot write (${(e as Error).message})`);
    }
    const n = verifyCopy(record, loadSafetensors(tmp), output);
    renameSync(tmp, output);
    return n;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The copy read back has the same keys, shapes and values (float32-rounded) as the source record. */
function verifyCopy(record: Record<string, Tensor>, back: Record<string, Tensor>, output: string): { tensors: number; elements: number } {
  const keys = Object.keys(record);
  if (Object.keys(back).join('\n') !== keys.join('\n')) throw new CheckpointError(`convert: ${output} read back with different keys`);
  let elements = 0;
  for (const k of keys) {
    const a = record[k].toArray();
    const b = back[k].toArray();
    elements += a.length;
    if (a.length !== b.length || record[k].shape.join() !== back[k].shape.join()) throw new CheckpointError(`convert: '${k}' changed shape on the way`);
    for (let i = 0; i < a.length; i++) {
      // float32 storage is exact; float64 sources (int64 buffers are exact) are rounded to float32 once.
      if (b[i] !== Math.fround(a[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
        throw new CheckpointError(`convert: '${k}' element ${i} is ${b[i]} after the round trip, ${a[i]} before`);
      }
    }
  }
  return { tensors: keys.length, elements };
}

const command: CommandModule<object, ConvertArgs> = {
  command: 'convert <in> <out>',
  describe: 'convert a .pth (torch.save) or .safetensors checkpoint to .safetensors and verify the copy',
  builder: (y) =>
    usageFailures(
      y
        .positional('in', { type: 'string', demandOption: true, describe: 'input checkpoint (format detected from content)' })
        .positional('out', { type: 'string', demandOption: true, describe: 'output .safetensors file' })
        .option('verbose', { type: 'boolean', describe: 'print stacks on errors' }),
    ),
  handler: (args) =>
    runCommand(args.verbose, () => {
      const { tensors, elements } = convertCheckpoint(args.in, args.out);
      console.log(`wrote ${args.out}: ${tensors} tensors, ${elements.toLocaleString('en-US')} elements; read back and verified equal`);
    }),
};

// The typed module widened to the list's element type (yargs' builder makes CommandModule<object, T> invariant).
export const convertCommand = command as unknown as CommandModule;
