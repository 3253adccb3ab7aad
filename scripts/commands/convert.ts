// `ptslab convert <in> <out> [--rename FROM=TO ...]`: a checkpoint (torch.save .pth / .th / .pt in either format, or
// safetensors; the input format is read from the file's content) to the format the output's extension names:
// .safetensors (float32, I64 for num_batches_tracked) or .pth / .pt / .th (torch.save's zip format, which
// torch.load reads, also with weights_only=True; float32, float64 kept, integer and bool storages as int64). The state_dict is
// found as readPublishedCheckpoint finds it (wrappers such as {'state_dict': ...} unwrapped, a 'module.' prefix
// stripped), then --rename rules (key prefixes, in order) are applied. The copy is read back and compared value for
// value before it replaces the output (written to a temporary file, verified, then renamed). Prints the number of
// tensors and elements, and what was unwrapped, stripped and renamed.

import { renameSync, rmSync, writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import type { Tensor } from '../../core/index.js';
import {
  CheckpointError, loadSafetensors, parseRename, readPublishedCheckpoint, saveSafetensors, serializeTorchZip,
  type PublishedCheckpoint, type TorchSaveDType,
} from '../../nn/index.js';
import { packageVersion } from './version.js';
import { runCommand, usageFailures } from './common.js';

interface ConvertArgs {
  in: string;
  out: string;
  rename?: string | string[];
  verbose?: boolean;
}

export interface ConvertOptions {
  /** Key prefix renames, as [from, to] pairs or 'from=to' rules (see parseRename), applied in order. */
  rename?: ReadonlyArray<readonly [string, string] | string>;
}

export type ConvertReport = { tensors: number; elements: number; output: 'safetensors' | 'pth'; read: Omit<PublishedCheckpoint, 'stateDict'> };

const TORCH_EXTENSIONS = ['.pth', '.pt', '.th'];

/** The output format an output path names by its extension, or null. */
export function outputFormat(output: string): 'safetensors' | 'pth' | null {
  if (output.endsWith('.safetensors')) return 'safetensors';
  return TORCH_EXTENSIONS.some((e) => output.endsWith(e)) ? 'pth' : null;
}

/** Convert and verify; returns the counts (see convertWithReport for what was done on the way). */
export function convertCheckpoint(input: string, output: string, o: ConvertOptions = {}): { tensors: number; elements: number } {
  const { tensors, elements } = convertWithReport(input, output, o);
  return { tensors, elements };
}

export function convertWithReport(input: string, output: string, o: ConvertOptions = {}): ConvertReport {
  const format = outputFormat(output);
  if (format === null) {
    throw new CheckpointError(`convert: the output must be a .safetensors file or a torch.save file (${TORCH_EXTENSIONS.join(', ')}); its extension picks the format, got ${output}`);
  }
  const rename = (o.rename ?? []).map((r) => (typeof r === 'string' ? parseRename(r) : r));
  const { stateDict: record, ...read } = readPublishedCheckpoint(input, { rename });
  // Written beside the output and renamed once verified: a killed or failed convert never leaves a torn output.
  const tmp = `${output}.tmp-${process.pid}`;
  try {
    let back: Record<string, Tensor>;
    if (format === 'safetensors') {
      try {
        saveSafetensors(tmp, record, { format: 'pt', converted_by: `ptslab ${packageVersion()}`, source: input });
      } catch (e) {
        throw new CheckpointError(`${output}: cannot write (${(e as Error).message})`);
      }
      back = loadSafetensors(tmp);
    } else {
      const dtypes: Record<string, TorchSaveDType> = {};
      for (const [k, d] of Object.entries(read.dtypes)) {
        dtypes[k] = d === 'float64' ? 'float64' : d.startsWith('int') || d === 'uint8' || d === 'bool' ? 'int64' : 'float32';
      }
      const bytes = serializeTorchZip(record, { dtypes });
      try {
        writeFileSync(tmp, bytes);
      } catch (e) {
        throw new CheckpointError(`${output}: cannot write (${(e as Error).message})`);
      }
      const again = readPublishedCheckpoint(tmp, { source: output });
      for (const [k, d] of Object.entries(dtypes)) {
        if (again.dtypes[k] !== d) throw new CheckpointError(`convert: '${k}' was written as ${d} but reads back as ${again.dtypes[k]}`);
      }
      back = again.stateDict;
    }
    const n = verifyCopy(record, back, output, format === 'pth');
    renameSync(tmp, output);
    return { ...n, output: format, read };
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The copy read back has the same keys, shapes and values (float32-rounded unless exact) as the source record. */
function verifyCopy(record: Record<string, Tensor>, back: Record<string, Tensor>, output: string, exact: boolean): { tensors: number; elements: number } {
  const keys = Object.keys(record);
  if (Object.keys(back).join('\n') !== keys.join('\n')) throw new CheckpointError(`convert: ${output} read back with different keys`);
  let elements = 0;
  for (const k of keys) {
    const a = record[k].toArray();
    const b = back[k].toArray();
    elements += a.length;
    if (a.length !== b.length || record[k].shape.join() !== back[k].shape.join()) throw new CheckpointError(`convert: '${k}' changed shape on the way`);
    for (let i = 0; i < a.length; i++) {
      // .pth keeps float32 / float64 / int64 exactly; safetensors rounds float64 sources to float32 once (int64 buffers are exact).
      const want = exact ? a[i] : Math.fround(a[i]);
      if (b[i] !== want && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
        throw new CheckpointError(`convert: '${k}' element ${i} is ${b[i]} after the round trip, ${a[i]} before`);
      }
    }
  }
  return { tensors: keys.length, elements };
}

/** What readPublishedCheckpoint did, as one line (empty when the input was a bare state_dict). */
function describeRead(r: ConvertReport['read']): string {
  const parts: string[] = [];
  if (r.unwrapped.length) parts.push(`unwrapped ${r.unwrapped.map((w) => `'${w}'`).join(' > ')}`);
  const extras = Object.keys(r.extras);
  if (extras.length) parts.push(`left out ${extras.map((e) => `'${e}'`).join(', ')}`);
  if (r.prefixStripped) parts.push(`stripped '${r.prefixStripped}'`);
  if (r.renamed) parts.push(`renamed ${r.renamed} keys`);
  return parts.join('; ');
}

/** --rename as given: absent, once (a string) or repeated (an array). */
const renameRules = (r: unknown): string[] => (r === undefined ? [] : (Array.isArray(r) ? r : [r]).map(String));

const command: CommandModule<object, ConvertArgs> = {
  command: 'convert <in> <out>',
  describe: 'convert a .pth (torch.save) or .safetensors checkpoint to .safetensors or .pth (by the output extension) and verify the copy',
  builder: (y) =>
    usageFailures(
      y
        .positional('in', { type: 'string', demandOption: true, describe: 'input checkpoint (format detected from content)' })
        .positional('out', { type: 'string', demandOption: true, describe: 'output .safetensors, or .pth / .pt / .th (torch.save zip format)' })
        // Not `array: true`, which would swallow the positionals after it; a repeated flag still gives an array.
        .option('rename', {
          type: 'string',
          describe: "rename a key prefix, FROM=TO (e.g. 'linear.=fc.'); repeatable, applied in order",
        })
        .option('verbose', { type: 'boolean', describe: 'print stacks on errors' })
        .check((a) => {
          for (const r of renameRules(a.rename)) parseRename(r);
          return true;
        }),
    ),
  handler: (args) =>
    runCommand(args.verbose, () => {
      const r = convertWithReport(args.in, args.out, { rename: renameRules(args.rename) });
      const how = describeRead(r.read);
      if (how) console.log(`read ${args.in}: ${how}`);
      for (const rule of r.read.unusedRenames) process.stderr.write(`warning: --rename '${rule}' matched no key\n`);
      console.log(`wrote ${args.out}: ${r.tensors} tensors, ${r.elements.toLocaleString('en-US')} elements; read back and verified equal`);
    }),
};

// The typed module widened to the list's element type (yargs' builder makes CommandModule<object, T> invariant).
export const convertCommand = command as unknown as CommandModule;
