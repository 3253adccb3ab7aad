// Which known architecture a set of state_dict keys looks like, for messages such as "this checkpoint looks like a
// resnet56, not a resnet20". Each architecture of ARCHS is built once with buildModel (tiny head and input, the same
// keys as any size), its key set cached, and the keys are compared by Jaccard overlap: |keys ∩ arch| / |keys ∪ arch|.
// Only names are compared, never shapes, so a checkpoint whose keys carry a prefix ('module.') matches nothing.

import { ARCHS, buildModel, type Arch } from './setup.js';

/** An architecture is named only when its overlap with the keys is above this. */
const MIN_JACCARD = 0.5;

const keySets = new Map<Arch, ReadonlySet<string>>();

/**
 * The key set of arch's stateDict, built on first use. Building draws its initial weights from the global generator
 * (buildModel has no other), so the first call for an arch advances it; later calls are free.
 */
function keysOf(arch: Arch): ReadonlySet<string> {
  let s = keySets.get(arch);
  if (!s) {
    s = new Set(Object.keys(buildModel(arch, { numClasses: 2, inChannels: 3, inputSize: 32 }).stateDict()));
    keySets.set(arch, s);
  }
  return s;
}

/**
 * The architecture of ARCHS whose state_dict keys overlap `keys` best (Jaccard overlap above 0.5), or null when none
 * does. matched is how many of the architecture's keys are in `keys`, total how many keys the architecture has.
 */
export function architectureOf(keys: readonly string[]): { arch: Arch; matched: number; total: number } | null {
  const given = new Set(keys);
  if (given.size === 0) return null;
  let best: { arch: Arch; matched: number; total: number; jaccard: number } | null = null;
  for (const arch of ARCHS) {
    const own = keysOf(arch);
    let matched = 0;
    for (const k of given) if (own.has(k)) matched++;
    const jaccard = matched / (given.size + own.size - matched);
    if (jaccard > MIN_JACCARD && (!best || jaccard > best.jaccard)) best = { arch, matched, total: own.size, jaccard };
    // Key sets of different architectures differ, so an exact match cannot be beaten (and the rest need not be built).
    if (jaccard === 1) break;
  }
  return best && { arch: best.arch, matched: best.matched, total: best.total };
}
