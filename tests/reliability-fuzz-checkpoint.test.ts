// Fuzzing the checkpoint readers from disk (nn/io: loadCheckpoint over safetensors and torch.save .pth), on top of the
// byte-level fuzzing in nn-safetensors.test.ts: here every case is a file, and a rejection must be a CheckpointError
// whose message names that file. .pth cases open the zip fixtures and damage the pickle or a storage entry *inside*
// (then re-zip, so the unpickler, not the zip CRC, meets the damage), damage the zip or legacy bytes directly, or swap
// an allow-listed global for a forbidden one (os.system, builtins.eval, subprocess.Popen, ...), which must always be
// refused. Safetensors cases are generated files of every dtype with lying shapes, dtypes, offsets and header sizes.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync, zipSync } from 'fflate';
import type { Tensor } from '../core/index.js';
import { CheckpointError, loadCheckpoint } from '../nn/index.js';
import { FUZZ_RUNS, fuzz, mutate, mutationsArb, outcome, Tally, tmp } from './reliability-common.js';

const FIX = fileURLToPath(new URL('../../tests/fixtures/torch/', import.meta.url));
const enc = (s: string) => new TextEncoder().encode(s);

/** Every tensor's element count agrees with its shape. */
const consistent = (r: Record<string, Tensor>) => Object.values(r).every((t) => t.toArray().length === t.shape.reduce((a, b) => a * b, 1));

function replaceBytes(hay: Uint8Array, needle: Uint8Array, by: Uint8Array): Uint8Array | null {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return Uint8Array.from([...hay.subarray(0, i), ...by, ...hay.subarray(i + needle.length)]);
  }
  return null;
}

const EVIL = ['os\nsystem', 'posix\nsystem', 'nt\nsystem', 'builtins\neval', 'builtins\nexec', '__builtin__\neval', 'builtins\ngetattr', 'builtins\n__import__', 'subprocess\nPopen', 'subprocess\ncheck_output', 'torch\nload', 'torch._utils\n__class__', 'collections\n__proto__', 'collections\nOrderedDict.__init__', 'torch\nFloatStorage\nx'];
const ALLOWED = ['collections\nOrderedDict\n', 'torch._utils\n_rebuild_tensor_v2\n', 'torch\nFloatStorage\n'];

type PthCase =
  | { kind: 'inner'; fixture: string; entry: number }
  | { kind: 'outer'; fixture: string }
  | { kind: 'evil'; fixture: string; target: number; evil: string };
const zips = ['tiny.pth', 'tiny-wrapped.pth', 'tiny-module-prefix.pth', 'dtypes.pth'];
const pthCaseArb: fc.Arbitrary<PthCase> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('inner' as const), fixture: fc.constantFrom(...zips), entry: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('outer' as const), fixture: fc.constantFrom(...zips, 'tiny-legacy.pth') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('evil' as const), fixture: fc.constantFrom(...zips), target: fc.nat(ALLOWED.length - 1), evil: fc.oneof(fc.constantFrom(...EVIL), fc.tuple(fc.stringMatching(/^[a-z_.]{1,12}$/), fc.stringMatching(/^[a-z_]{1,12}$/)).map(([m, n]) => `${m}\n${n}`)) }) },
);

test(`.pth (torch.save zip and legacy): ${FUZZ_RUNS} fuzzed files through loadCheckpoint; forbidden globals always refused`, () => {
  const dir = tmp('pth');
  const tally = new Tally('.pth (loadCheckpoint)');
  const fixtures = new Map([...zips, 'tiny-legacy.pth'].map((f) => [f, new Uint8Array(readFileSync(FIX + f))]));
  const reference = new Map([...fixtures.keys()].map((f) => [f, loadCheckpoint(FIX + f)]));
  let n = 0;
  let evilRefused = 0;
  fuzz([pthCaseArb, mutationsArb], (c, ms) => {
    const src = fixtures.get(c.fixture)!;
    let bytes: Uint8Array<ArrayBufferLike> = src;
    let mustRefuse = false;
    if (c.kind === 'outer') bytes = mutate(src, ms);
    else {
      const entries: Record<string, Uint8Array<ArrayBufferLike>> = unzipSync(src);
      const names = Object.keys(entries);
      if (c.kind === 'inner') {
        // Half the time the pickle itself, else any entry (storages, version, byteorder).
        const name = c.entry % 2 === 0 ? names.find((k) => k.endsWith('data.pkl'))! : names[c.entry % names.length];
        entries[name] = mutate(entries[name], ms);
      } else {
        const pkl = names.find((k) => k.endsWith('data.pkl'))!;
        const swapped = replaceBytes(entries[pkl], enc(ALLOWED[c.target]), enc(`${c.evil}\n`));
        if (swapped) {
          entries[pkl] = swapped;
          mustRefuse = true;
        }
      }
      bytes = zipSync(entries, { level: 0 });
    }
    const file = join(dir, `case-${n++}.pth`);
    writeFileSync(file, bytes);
    const intact = c.kind !== 'evil' && ms.length === 0;
    const ok = outcome(tally, file, () => loadCheckpoint(file), (r) => {
      if (mustRefuse) throw new Error(`${file}: a pickle naming ${JSON.stringify(c.kind === 'evil' && c.evil)} was loaded`);
      if (!consistent(r)) return false;
      if (intact) {
        const ref = reference.get(c.fixture)!;
        assert.equal(Object.keys(r), Object.keys(ref));
        for (const k of Object.keys(ref)) assert.equal(r[k].toArray(), ref[k].toArray(), k);
      }
    }, CheckpointError);
    if (mustRefuse) evilRefused++;
    rmSync(file);
    return ok;
  });
  rmSync(dir, { recursive: true, force: true });
  assert.not.ok(existsSync('/tmp/ptslab-pwned'));
  console.log(`  of which ${evilRefused} files naming a forbidden global, all refused`);
  assert.ok(evilRefused > 50, `only ${evilRefused} forbidden-global cases`);
  tally.done(100, 100);
});

const DTYPES = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1 } as const;
type DT = keyof typeof DTYPES;

interface StEntry {
  dtype: DT;
  shape: number[];
}

/** A safetensors file of the given entries (zero-filled data; BOOL as 0/1), with optional lies in its header. */
function safetensors(entries: StEntry[], lie: { shapeOf?: number; dtypeOf?: number; dtype?: string; offsetDelta?: number; headerLen?: bigint }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  entries.forEach((e, i) => {
    const bytes = e.shape.reduce((a, b) => a * b, 1) * DTYPES[e.dtype];
    const shape = lie.shapeOf === i ? [...e.shape, 2] : e.shape;
    const dtype = lie.dtypeOf === i ? lie.dtype : e.dtype;
    const end = off + bytes + (lie.offsetDelta !== undefined && i === entries.length - 1 ? lie.offsetDelta : 0);
    header[`t${i}.weight`] = { dtype, shape, data_offsets: [off, end] };
    off += bytes;
  });
  const h = enc(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + off);
  new DataView(out.buffer).setBigUint64(0, lie.headerLen ?? BigInt(h.length), true);
  out.set(h, 8);
  for (let k = 8 + h.length; k < out.length; k++) out[k] = (k * 37) & 1;
  return out;
}

const stEntryArb = fc.record({ dtype: fc.constantFrom(...(Object.keys(DTYPES) as DT[])), shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }) });
const lieArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant({}) },
  fc.record({ shapeOf: fc.nat(3) }),
  fc.record({ dtypeOf: fc.nat(3), dtype: fc.constantFrom('F32', 'U8', 'F8', 'I16', 'float32', 'constructor', '') }),
  fc.record({ offsetDelta: fc.integer({ min: -8, max: 8 }) }),
  fc.record({ headerLen: fc.constantFrom(0n, 1n, 2n ** 60n, 2n ** 64n - 1n, 100_000_001n, 7n) }),
);

test(`safetensors: ${FUZZ_RUNS} generated files with lying headers through loadCheckpoint name the file`, () => {
  const dir = tmp('st');
  const tally = new Tally('safetensors (loadCheckpoint)');
  let n = 0;
  fuzz([fc.array(stEntryArb, { minLength: 1, maxLength: 4 }), lieArb, mutationsArb], (entries, lie, ms) => {
    const file = join(dir, `case-${n++}.safetensors`);
    writeFileSync(file, mutate(safetensors(entries, lie), ms));
    const intact = Object.keys(lie).length === 0 && ms.length === 0;
    const ok = outcome(tally, file, () => loadCheckpoint(file), (r) => {
      if (!consistent(r)) return false;
      if (intact) {
        assert.is(Object.keys(r).length, entries.length);
        entries.forEach((e, i) => assert.equal([...r[`t${i}.weight`].shape], e.shape));
      }
    }, CheckpointError);
    rmSync(file);
    return ok;
  });
  rmSync(dir, { recursive: true, force: true });
  tally.done(100, 100);
});

test.run();
