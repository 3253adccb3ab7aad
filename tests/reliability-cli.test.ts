// The command line's error contract, checked on the built CLI (dist/scripts/cli.js) in child processes: a bad command
// line (unknown command or flag, a value outside a choice flag's set, a number out of range, a missing argument)
// exits 2 with one stderr line, and for choice flags that line lists every accepted value; a failure (missing or
// corrupt file) exits 1 with one line naming the file and no stack trace; --verbose adds the stack. Every command:
// info, convert, train, eval, models, prune, run, merge. Children run at most three at a time.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ARCHS, DATASETS } from '../nn/train/index.js';
import { PRUNE_METHODS } from '../sparsity/index.js';
import { BUNDLED_MODELS } from '../experiments/models/index.js';
import { cli, limited, tmp, writeRandomResnet20, writeTinyMnist } from './reliability-common.js';

const dir = tmp('cli');
const data = writeTinyMnist(join(dir, 'mnist'), 16, 8);
const weights = writeRandomResnet20(join(dir, 'w.safetensors'));
const corrupt = join(dir, 'corrupt.safetensors');
writeFileSync(corrupt, Buffer.concat([Buffer.from([40, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"w": {"dtype": "F32", "shape": [9], "data')]));
const corruptPth = join(dir, 'corrupt.pth');
writeFileSync(corruptPth, Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]));
const ckptDir = join(dir, 'train-out');
mkdirSync(ckptDir);
writeFileSync(join(ckptDir, 'checkpoint.safetensors'), 'torn');
const config = join(dir, 'grid.yaml');
writeFileSync(config, `model: { arch: resnet20, weights: ${corrupt}, dataset: mnist, dataDir: ${data} }\nmethods: [uniform]\nsparsities: [0.5]\noptions: { calib: 8, batchSize: 8 }\neval: { images: 8 }\n`);

// run folders as a bad copy or merge conflict leaves them: a torn cell result, a torn run.json
const tornCell = join(dir, 'torn-run', 'cells', 'uniform-s0.5-seed0');
mkdirSync(tornCell, { recursive: true });
writeFileSync(join(tornCell, 'result.json'), '{"method": "uniform", "top1": 9');
const tornMeta = join(dir, 'torn-meta');
mkdirSync(join(tornMeta, 'cells'), { recursive: true });
writeFileSync(join(tornMeta, 'run.json'), '<<<<<<< HEAD');

const BACKENDS = ['reference', 'cpu', 'auto'];
const MODELS = BUNDLED_MODELS.map((m) => m.name);
const train = ['train', '--arch', 'resnet20', '--dataset', 'mnist', '--data-dir', data, '--epochs', '1', '--batch', '8', '--out', join(dir, 'never')];
const evalW = ['eval', '--arch', 'resnet20', '--dataset', 'mnist', '--data-dir', data, '--weights', weights, '--eval-images', '4'];
const prune = ['prune', '--arch', 'resnet20', '--dataset', 'mnist', '--data-dir', data, '--weights', weights, '--method', 'uniform', '--sparsity', '0.5', '--calib', '8', '--eval-images', '8', '--out', join(dir, 'never')];

/** Replace (or add) one flag's value in an argument list. */
function withFlag(args: string[], flag: string, value: string | null): string[] {
  const i = args.indexOf(flag);
  const out = args.slice();
  if (i >= 0) value === null ? out.splice(i, 2) : (out[i + 1] = value);
  else if (value !== null) out.push(flag, value);
  return out;
}

interface Usage {
  args: string[];
  /** Text stderr must contain (the accepted values of a choice flag, the flag's name). */
  expect: string[];
}

const usage: Usage[] = [
  { args: [], expect: ['command'] },
  { args: ['frobnicate'], expect: ['frobnicate'] },
  { args: ['info', '--bogus'], expect: ['bogus'] },
  { args: ['models', '--bogus'], expect: ['bogus'] },
  { args: ['convert'], expect: ['arguments'] },
  { args: ['run'], expect: ['arguments'] },
  { args: ['run', config, '--shard', '3/2'], expect: ['shard'] },
  { args: ['run', join(dir, 'no-such.yaml')], expect: ['no-such.yaml'] },
  { args: ['merge'], expect: ['arguments'] },
  { args: ['merge', dir, '--bogus'], expect: ['bogus'] },
  // Choice flags list what they accept.
  { args: withFlag(train, '--arch', 'resnet7'), expect: [...ARCHS] },
  { args: withFlag(train, '--dataset', 'svhn'), expect: [...DATASETS] },
  { args: withFlag(train, '--backend', 'tpu'), expect: BACKENDS },
  { args: withFlag(evalW, '--backend', 'tpu'), expect: BACKENDS },
  { args: ['eval', '--model', 'resnet9000'], expect: MODELS },
  { args: withFlag(evalW, '--dataset', 'svhn'), expect: [...DATASETS] },
  { args: withFlag(prune, '--method', 'magic'), expect: [...PRUNE_METHODS] },
  { args: withFlag(prune, '--estimator', 'guess'), expect: ['histogram', 'kde'] },
  { args: withFlag(prune, '--grad-mode', 'x'), expect: ['detached', 'ste'] },
  { args: withFlag(prune, '--threshold-mode', 'x'), expect: ['absolute', 'relative'] },
  { args: withFlag(prune, '--teacher-mode', 'x'), expect: ['eval', 'train'] },
  { args: withFlag(prune, '--control', 'x'), expect: ['abs', 'pow2'] },
  { args: withFlag(prune, '--reconstruction', 'x'), expect: ['kl', 'mse', 'mse-features'] },
  { args: withFlag(prune, '--arch', 'vgg'), expect: [...ARCHS] },
  { args: withFlag(prune, '--backend', 'tpu'), expect: BACKENDS },
  // Numbers out of range, not numbers, given twice; missing required flags.
  { args: withFlag(train, '--epochs', 'abc'), expect: ['--epochs', 'positive integer'] },
  { args: withFlag(train, '--label-smoothing', '1'), expect: ['--label-smoothing', '[0, 1)'] },
  { args: [...train, '--epochs', '2'], expect: ['--epochs'] },
  { args: withFlag(train, '--arch', null), expect: ['arch'] },
  { args: withFlag(evalW, '--eval-images', '0'), expect: ['--eval-images'] },
  { args: withFlag(prune, '--sparsity', '1'), expect: ['--sparsity'] },
  { args: withFlag(prune, '--temperature', '0'), expect: ['--temperature'] },
  { args: withFlag(prune, '--model', MODELS[0]), expect: ['--model', '--arch'] },
];

const oneLine = (s: string) => s.trim().split('\n').length === 1;
const hasStack = (s: string) => /\n\s+at /.test(s);

test(`usage errors: ${usage.length} bad command lines over every command exit 2 with one line (choices listed)`, async () => {
  const results = await limited(3, usage.map((u) => () => cli(u.args)));
  const bad: string[] = [];
  usage.forEach((u, i) => {
    const r = results[i];
    const missing = u.expect.filter((e) => !r.stderr.includes(e));
    if (r.status !== 2 || !oneLine(r.stderr) || hasStack(r.stderr) || missing.length) {
      bad.push(`ptslab ${u.args.join(' ')}: exit ${r.status}, missing ${JSON.stringify(missing)}, stderr:\n${r.stderr}`);
    }
  });
  console.log(`  usage errors checked: ${usage.length}, wrong: ${bad.length}`);
  assert.equal(bad, []);
});

interface Failure {
  args: string[];
  /** The file the one-line message must name. */
  names: string;
  /** Only the last stderr line is the error (commands that log progress on stderr). */
  lastLine?: boolean;
  /** Also run with --verbose and expect the stack. */
  verbose?: boolean;
}

const failures: Failure[] = [
  { args: ['convert', join(dir, 'missing.pth'), join(dir, 'x.safetensors')], names: 'missing.pth' },
  { args: ['convert', corruptPth, join(dir, 'x.safetensors')], names: corruptPth, verbose: true },
  { args: ['convert', weights, join(dir, 'no-dir', 'x.safetensors')], names: join(dir, 'no-dir', 'x.safetensors') },
  { args: withFlag(evalW, '--weights', join(dir, 'missing.safetensors')), names: 'missing.safetensors' },
  { args: withFlag(evalW, '--weights', corrupt), names: corrupt, verbose: true },
  { args: withFlag(train, '--data-dir', join(dir, 'no-data')), names: join(dir, 'no-data'), verbose: true },
  { args: [...withFlag(train, '--out', ckptDir), '--resume'], names: join(ckptDir, 'checkpoint.safetensors') },
  { args: withFlag(prune, '--weights', corrupt), names: corrupt, verbose: true },
  { args: [...withFlag(prune, '--method', 'given'), '--allocation', join(dir, 'no-allocation.json')], names: join(dir, 'no-allocation.json') },
  { args: [...withFlag(prune, '--method', 'given'), '--allocation', corrupt], names: corrupt },
  { args: ['run', config, '--out', join(dir, 'run-out')], names: corrupt, lastLine: true },
  { args: ['merge', join(dir, 'torn-run')], names: join(tornCell, 'result.json') },
  { args: ['merge', tornMeta], names: join(tornMeta, 'run.json'), verbose: true },
];

test(`failures: ${failures.length} missing/corrupt files exit 1 with one line naming the file, no stack; --verbose shows it`, async () => {
  const jobs = failures.flatMap((f) => [() => cli(f.args), ...(f.verbose ? [() => cli([...f.args, '--verbose'])] : [])]);
  const results = await limited(3, jobs);
  const bad: string[] = [];
  let k = 0;
  for (const f of failures) {
    const plain = results[k++];
    const err = f.lastLine ? plain.stderr.trim().split('\n').pop()! : plain.stderr;
    if (plain.status !== 1 || !oneLine(err) || hasStack(plain.stderr) || !err.includes(f.names)) bad.push(`ptslab ${f.args.join(' ')}: exit ${plain.status}, stderr:\n${plain.stderr}`);
    if (!f.verbose) continue;
    const verbose = results[k++];
    if (verbose.status !== 1 || !hasStack(verbose.stderr)) bad.push(`ptslab ${f.args.join(' ')} --verbose: exit ${verbose.status}, no stack:\n${verbose.stderr}`);
  }
  console.log(`  failures checked: ${failures.length} (${failures.filter((f) => f.verbose).length} also with --verbose), wrong: ${bad.length}`);
  assert.equal(bad, []);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
