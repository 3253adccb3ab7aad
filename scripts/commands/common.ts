// Helpers every CLI command shares: usage errors exit 2, failures exit 1 with one line (the stack only with
// --verbose), numeric flag checks that name the rule, the accepted --backend values, and the git commit for records.

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { listBackends } from '../../core/index.js';
import { PtslabError } from '../../core/errors.js';

/** A bad command line: exits with status 2. */
export class UsageError extends PtslabError {}

/** The repository's HEAD commit, or null outside a git checkout. */
export function gitCommit(): string | null {
  try {
    const cwd = fileURLToPath(new URL('../../..', import.meta.url));
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch {
    return null;
  }
}

/** Run a handler body: UsageError -> exit 2, other errors -> exit 1, one line unless verbose. */
export async function runCommand(verbose: boolean | undefined, body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`${verbose ? (err.stack ?? err.message) : `${err.name === 'Error' ? 'error' : err.name}: ${err.message.split('\n')[0]}`}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  }
}

/** yargs validation failures (unknown choice, missing option, a failed .check) exit 2 with one line. */
export function usageFailures<T>(y: Argv<T>): Argv<T> {
  return y.fail((msg, err) => {
    const text = err ? err.message : msg;
    process.stderr.write(`${(text ?? 'bad command line').replace(/\s*\n\s*/g, ' ').trim()} (see --help)\n`);
    process.exit(2);
  });
}

/** Values `--backend` accepts: the registered backends and `auto`. */
export const backendChoices = (): string[] => [...listBackends(), 'auto'];

const RULES = { 'int>0': 'a positive integer', 'int>=0': 'a non-negative integer', '>0': 'a positive number', '>=0': 'a number >= 0', '[0,1)': 'a number in [0, 1)' } as const;

/** Check numeric flags (absent ones are skipped); NaN, arrays and out-of-range values are usage errors naming the rule. */
export function checkNumbers(a: Record<string, unknown>, rules: Record<string, keyof typeof RULES>): true {
  for (const [k, rule] of Object.entries(rules)) {
    const x = a[k];
    if (x === undefined) continue;
    const ok = typeof x === 'number' && Number.isFinite(x) && (rule === 'int>0' || rule === 'int>=0' ? Number.isInteger(x) : true) && (rule === 'int>0' || rule === '>0' ? x > 0 : x >= 0) && (rule !== '[0,1)' || x < 1);
    if (!ok) throw new UsageError(`--${k} must be ${RULES[rule]}, got ${Array.isArray(x) ? `several values (${x.join(', ')})` : String(x)}`);
  }
  return true;
}


/** The flags that pick a model: a bundled one, or an architecture with a checkpoint and a dataset. */
export interface ModelArgs {
  model?: string;
  arch?: string;
  weights?: string;
  dataset?: string;
  'data-dir'?: string;
  'width-mult'?: number;
  shortcut?: 'A' | 'B';
}

/** Comma-separated numbers (--mean 0.5,0.5,0.5); a usage error naming the flag otherwise. */
export function numberList(flag: string, text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const xs = String(text).split(',').map((t) => Number(t.trim()));
  if (!xs.length || xs.some((x) => !Number.isFinite(x))) throw new UsageError(`--${flag} must be comma-separated numbers, one per channel (0-1 scale), got '${text}'`);
  return xs;
}

/** The image-folder flags of eval and prune. */
export const FOLDER_OPTIONS = {
  mean: { type: 'string', describe: 'image-folder: per-channel mean, comma-separated, 0-1 scale (with --std)' },
  std: { type: 'string', describe: 'image-folder: per-channel std, comma-separated, 0-1 scale (with --mean)' },
  augment: { choices: ['none', 'cifar', 'imagenet'], describe: 'image-folder: calibration augmentation (cifar: pad 4, random crop, flip; imagenet: RandomResizedCrop + flip; default none)' },
} as const;

/** The --rename flag of every command that loads --weights. */
export const RENAME_OPTION = {
  type: 'array',
  string: true,
  describe: "rename checkpoint keys by prefix, FROM=TO, in order (repeatable): e.g. 'linear.=fc.' for the common CIFAR ResNets; a 'module.' prefix on every key is stripped anyway",
} as const;

/** The --shortcut flag of every command that takes --arch (CIFAR ResNets). */
export const SHORTCUT_OPTION = {
  choices: ['A', 'B'],
  describe: "CIFAR ResNets' shortcuts: A (parameter-free: subsample + zero-pad channels, He et al.) or B (1x1 conv + BN; default)",
} as const;
