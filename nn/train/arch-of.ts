// Which known architecture a set of state_dict keys looks like, for messages such as "this checkpoint looks like a
// resnet56, not a resnet20". Each architecture of ARCHS is built once with buildModel (tiny head and input, the same
// keys as any size), its key set cached, and the keys are compared by Jaccard overlap: |keys ∩ arch| / |keys ∪ arch|.
// Only names are compared, never shapes, so a checkpoint whose keys carry a prefix ('module.') matches nothing.
// The CIFAR ResNets are candidates with both shortcuts: option B's keys are option A's plus the downsample entries of
// layer2.0 and layer3.0, so an option-A checkpoint matches A exactly and B only in part; the answer names the shortcut.

import { ARCHS, CIFAR_RESNETS, buildModel, type Arch } from './setup.js';

/** An architecture is named only when its overlap with the keys is above this. */
const MIN_JACCARD = 0.5;

const keySets = new Map<string, ReadonlySet<string>>();

/** One candidate: an architecture, with its shortcut for the CIFAR ResNets. */
interface Candidate {
  arch: Arch;
  shortcut?: 'A' | 'B';
}

/** ARCHS in order, each CIFAR ResNet twice (option B first, then A). */
const CANDIDATES: readonly Candidate[] = ARCHS.flatMap((arch): Candidate[] =>
  CIFAR_RESNETS.includes(arch) ? [{ arch, shortcut: 'B' }, { arch, shortcut: 'A' }] : [{ arch }],
);

/**
 * The key set of a candidate's stateDict, built on first use. Building draws its initial weights from the global
 * generator (buildModel has no other), so the first call for a candidate advances it; later calls are free.
 */
function keysOf(c: Candidate): ReadonlySet<string> {
  const id = `${c.arch}/${c.shortcut ?? ''}`;
  let s = keySets.get(id);
  if (!s) {
    const o = { numClasses: 2, inChannels: 3, inputSize: 32, ...(c.shortcut ? { shortcut: c.shortcut } : {}) };
    s = new Set(Object.keys(buildModel(c.arch, o).stateDict()));
    keySets.set(id, s);
  }
  return s;
}

/** What architectureOf found: shortcut is there for the CIFAR ResNets only. */
export interface ArchitectureMatch {
  arch: Arch;
  matched: number;
  total: number;
  shortcut?: 'A' | 'B';
}

/**
 * The architecture of ARCHS whose state_dict keys overlap `keys` best (Jaccard overlap above 0.5), or null when none
 * does. matched is how many of the architecture's keys are in `keys`, total how many keys the architecture has;
 * shortcut ('A' or 'B') is given when the architecture is a CIFAR ResNet.
 */
export function architectureOf(keys: readonly string[]): ArchitectureMatch | null {
  const given = new Set(keys);
  if (given.size === 0) return null;
  let best: { c: Candidate; matched: number; total: number; jaccard: number } | null = null;
  for (const c of CANDIDATES) {
    const own = keysOf(c);
    let matched = 0;
    for (const k of given) if (own.has(k)) matched++;
    const jaccard = matched / (given.size + own.size - matched);
    if (jaccard > MIN_JACCARD && (!best || jaccard > best.jaccard)) best = { c, matched, total: own.size, jaccard };
    // Key sets of different candidates differ, so an exact match cannot be beaten (and the rest need not be built).
    if (jaccard === 1) break;
  }
  if (!best) return null;
  const { c, matched, total } = best;
  return c.shortcut ? { arch: c.arch, matched, total, shortcut: c.shortcut } : { arch: c.arch, matched, total };
}
