// nn/io/atomic.ts, the one writer of result files, plots, tables and checkpoints: the bytes land whole, the file is
// fsynced before the rename and the folder after it, a failed write leaves the old file and no temporary file, and
// the writers in experiments/ and nn/train/checkpoint.ts go through it (none calls writeFileSync/renameSync itself).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyFileAtomic, writeAtomic, writeJsonAtomic } from '../nn/io/atomic.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = fs.mkdtempSync(join(tmpdir(), 'ptslab-atomic-'));

test('text and bytes land whole, a missing folder is created, an old file is replaced, no temporary file is left', () => {
  const f = join(dir, 'a', 'b', 'x.json');
  writeAtomic(f, 'first');
  writeAtomic(f, Uint8Array.of(104, 105));
  assert.is(fs.readFileSync(f, 'utf8'), 'hi');
  writeJsonAtomic(join(dir, 'a', 'v.json'), { k: [1, 2] });
  assert.is(fs.readFileSync(join(dir, 'a', 'v.json'), 'utf8'), '{\n  "k": [\n    1,\n    2\n  ]\n}\n');
  copyFileAtomic(f, join(dir, 'a', 'copy'));
  assert.is(fs.readFileSync(join(dir, 'a', 'copy'), 'utf8'), 'hi');
  assert.equal(fs.readdirSync(join(dir, 'a')).sort(), ['b', 'copy', 'v.json']);
  assert.equal(fs.readdirSync(join(dir, 'a', 'b')), ['x.json']);
});

test('the temporary file is fsynced before the rename and the folder after it', () => {
  const calls: string[] = [];
  const { fsyncSync, renameSync } = fs;
  fs.fsyncSync = (fd: number) => {
    calls.push(fs.fstatSync(fd).isDirectory() ? 'fsync dir' : `fsync file of ${fs.fstatSync(fd).size} bytes`);
    fsyncSync(fd);
  };
  fs.renameSync = (a: fs.PathLike, b: fs.PathLike) => {
    calls.push(`rename ${String(a).includes('.tmp-') ? 'tmp' : a} -> ${b === join(dir, 'd.txt') ? 'target' : b}`);
    renameSync(a, b);
  };
  try {
    writeAtomic(join(dir, 'd.txt'), 'durable');
  } finally {
    fs.fsyncSync = fsyncSync;
    fs.renameSync = renameSync;
  }
  assert.equal(calls, ['fsync file of 7 bytes', 'rename tmp -> target', 'fsync dir']);
});

test('a failed write leaves the old file as it was and removes its temporary file', () => {
  const f = join(dir, 'keep.txt');
  writeAtomic(f, 'old');
  const { renameSync } = fs;
  fs.renameSync = () => {
    throw Object.assign(new Error('EIO: simulated failure, rename'), { code: 'EIO' });
  };
  try {
    assert.throws(() => writeAtomic(f, 'new'), /simulated failure/);
  } finally {
    fs.renameSync = renameSync;
  }
  assert.is(fs.readFileSync(f, 'utf8'), 'old');
  assert.equal(fs.readdirSync(dir).filter((n) => n.startsWith('keep')), ['keep.txt']);
  // a target that is a folder: the rename fails, nothing is left behind
  fs.mkdirSync(join(dir, 'folder', 'inside'), { recursive: true });
  assert.throws(() => writeAtomic(join(dir, 'folder'), 'x'));
  assert.equal(fs.readdirSync(dir).filter((n) => n.startsWith('folder')), ['folder']);
});

test('the result, plot, table and checkpoint writers use the helper (no writeFileSync / renameSync / copyFileSync of their own)', () => {
  const files = ['experiments/prune-cell.ts', 'nn/train/checkpoint.ts', ...fs.readdirSync(join(ROOT, 'experiments/runner')).map((f) => `experiments/runner/${f}`)].filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 8, files.join(', '));
  for (const f of files) {
    const src = fs.readFileSync(join(ROOT, f), 'utf8');
    const own = src.match(/\b(writeFileSync|renameSync|copyFileSync|saveSafetensors)\s*\(/g);
    assert.is(own, null, `${f} writes files itself: ${own?.join(', ')}`);
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
