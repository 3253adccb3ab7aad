// Durable, atomic file writes: the one helper every result file, plot, table and checkpoint goes through. The bytes go
// to a temporary file beside the target, which is fsynced, renamed over the target and then the folder is fsynced,
// so a reader sees the old file or the whole new one, never a torn one, and a power cut after the call returns
// cannot lose the rename. A failed write removes its temporary file and leaves the old target as it was.

import fs from 'node:fs';
import { dirname } from 'node:path';
import { threadId } from 'node:worker_threads';

let counter = 0;

/** fsync the folder `dir` (makes a rename in it durable); platforms that cannot open a folder for it are skipped. */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (e) {
    // Windows cannot open a directory this way; the rename is as durable as that platform makes it
    if ((e as NodeJS.ErrnoException).code === 'EISDIR' || (e as NodeJS.ErrnoException).code === 'EPERM') return;
    throw e;
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    // some file systems refuse fsync on a folder (EINVAL) though the rename already happened
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    fs.closeSync(fd);
  }
}

/** Write bytes or text (UTF-8) to `file` atomically and durably; creates the folder when missing. */
export function writeAtomic(file: string, data: Uint8Array | string): void {
  const dir = dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${threadId}-${counter++}`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** `value` as pretty-printed JSON (two-space indent, final newline), written with writeAtomic. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Copy `from` to `to` atomically and durably (read whole, then writeAtomic). */
export function copyFileAtomic(from: string, to: string): void {
  writeAtomic(to, fs.readFileSync(from));
}
