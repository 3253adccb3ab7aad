// The on-disk cache for parsed datasets: one compact binary file per dataset version, found under $PTSLAB_CACHE or
// <repo>/.cache/. Layout: "PTSLABDS", uint32 LE format version, uint32 LE header length, a JSON header (metadata and
// the byte offset and length of each named section), then the sections (raw bytes, each 8-byte aligned). Reading is
// one readFileSync and zero-copy views; writing goes to a temporary file renamed into place, so two processes that
// build the same cache at once never see a half-written file.

import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError } from './types.js';

const MAGIC = 'PTSLABDS';
const VERSION = 1;

/** $PTSLAB_CACHE, else <repo>/.cache (this file is dist/nn/data/cache.js). */
export function cacheDir(): string {
  return process.env.PTSLAB_CACHE || fileURLToPath(new URL('../../../.cache/', import.meta.url));
}

export interface CacheContents {
  meta: Record<string, unknown>;
  sections: Record<string, Uint8Array>;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

export function writeCache(file: string, meta: Record<string, unknown>, sections: Record<string, Uint8Array>): void {
  const table: Record<string, { offset: number; length: number }> = {};
  let offset = 0;
  for (const [name, bytes] of Object.entries(sections)) {
    table[name] = { offset, length: bytes.length };
    offset = align8(offset + bytes.length);
  }
  const header = Buffer.from(JSON.stringify({ meta, sections: table }), 'utf8');
  const start = align8(16 + header.length);
  const out = Buffer.alloc(start + offset);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(header.length, 12);
  header.copy(out, 16);
  for (const [name, bytes] of Object.entries(sections)) out.set(bytes, start + table[name].offset);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, out);
  renameSync(tmp, file);
}

/** The cache file's contents, or null when it does not exist. A damaged file is a DataError naming it. */
export function readCache(file: string): CacheContents | null {
  if (!existsSync(file)) return null;
  const buf = readFileSync(file);
  const bad = (why: string) => new DataError(`cache file ${file}: ${why}; delete it to rebuild`);
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) throw bad('not a ptslab dataset cache (bad magic)');
  if (buf.readUInt32LE(8) !== VERSION) throw bad(`format version ${buf.readUInt32LE(8)}, expected ${VERSION}`);
  const hlen = buf.readUInt32LE(12);
  if (16 + hlen > buf.length) throw bad(`header of ${hlen} bytes runs past the end (${buf.length} bytes)`);
  let parsed: { meta: Record<string, unknown>; sections: Record<string, { offset: number; length: number }> };
  try {
    parsed = JSON.parse(buf.toString('utf8', 16, 16 + hlen));
  } catch {
    throw bad('header is not valid JSON');
  }
  const start = align8(16 + hlen);
  const sections: Record<string, Uint8Array> = {};
  for (const [name, { offset, length }] of Object.entries(parsed.sections)) {
    if (start + offset + length > buf.length) throw bad(`section ${name} (${length} bytes at ${start + offset}) is truncated, file has ${buf.length} bytes`);
    sections[name] = new Uint8Array(buf.buffer, buf.byteOffset + start + offset, length);
  }
  return { meta: parsed.meta, sections };
}

/** View of a uint8 section as Uint32 (copied when the section is not 4-byte aligned in memory). */
export function asUint32(bytes: Uint8Array): Uint32Array {
  if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return new Uint32Array(bytes.slice().buffer);
}

export const cachePath = (name: string, dir = cacheDir()): string => join(dir, name);
