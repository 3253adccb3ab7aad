// `ptslab convert <in> <out>`: a checkpoint (torch.save .pth in either format, or safetensors; the format is read
// from the file's content) to a .safetensors file, then read back and compared value for value. Prints the number of
// tensors and elements. Writing torch.save files is not supported (it would need a pickler); PyTorch reads safetensors.

import type { CommandModule } from 'yargs';
import { CheckpointError, loadCheckpoint, loadSafetensors, saveSafetensors } from '../../nn/index.js';
import { packageVersion } from './version.js';

interface ConvertArgs {
  in: string;
  out: string;
}

export function convertCheckpoint(input: string, output: string): { tensors: number; elements: number } {
  if (!output.endsWith('.safetensors')) {
    throw new CheckpointError(`convert: the output must be a .safetensors file (writing torch.save files is not supported), got ${output}`);
  }
  const record = loadCheckpoint(input);
  saveSafetensors(output, record, { format: 'pt', converted_by: `ptslab ${packageVersion()}`, source: input });
  const back = loadSafetensors(output);
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
    y
      .positional('in', { type: 'string', demandOption: true, describe: 'input checkpoint (format detected from content)' })
      .positional('out', { type: 'string', demandOption: true, describe: 'output .safetensors file' }),
  handler: (args) => {
    try {
      const { tensors, elements } = convertCheckpoint(args.in, args.out);
      console.log(`wrote ${args.out}: ${tensors} tensors, ${elements.toLocaleString('en-US')} elements; read back and verified equal`);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 1;
    }
  },
};

// The typed module widened to the list's element type (yargs' builder makes CommandModule<object, T> invariant).
export const convertCommand = command as unknown as CommandModule;
