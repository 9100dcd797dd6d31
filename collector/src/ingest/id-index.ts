/**
 * pprof ids (of functions, locations) to their position in the profile.
 *
 * Every frame of every sample is looked up once (~180k lookups in a
 * 5,000-stack heap profile). Profilers number ids 1..n, so a typed array
 * indexed by id answers with no hashing and no allocation; ids that are
 * sparse, huge or 64-bit fall back to a Map. A repeated id maps to its last
 * definition, as Map.set would.
 */
import type { Int } from './pprof-reader';

/** Dense ids may leave this many unused slots per defined id (and a little more). */
const MAX_SLOTS_PER_ID = 4;
const MIN_DENSE_SLOTS = 1024;

export class IdIndex {
  private readonly dense: Int32Array | undefined;
  private readonly sparse: Map<Int, number> | undefined;

  constructor(ids: readonly Int[]) {
    let max = 0;
    let numeric = true;
    for (const id of ids) {
      if (typeof id !== 'number' || id < 0) {
        numeric = false;
        break;
      }
      if (id > max) max = id;
    }
    if (numeric && max < MIN_DENSE_SLOTS + MAX_SLOTS_PER_ID * ids.length) {
      const dense = new Int32Array(max + 1).fill(-1);
      for (let i = 0; i < ids.length; i++) dense[ids[i] as number] = i;
      this.dense = dense;
    } else {
      const sparse = new Map<Int, number>();
      for (let i = 0; i < ids.length; i++) sparse.set(ids[i]!, i);
      this.sparse = sparse;
    }
  }

  /** The position of the last definition of `id`, or -1. */
  get(id: Int): number {
    const dense = this.dense;
    if (dense !== undefined) {
      return typeof id === 'number' && id >= 0 && id < dense.length ? dense[id]! : -1;
    }
    return this.sparse!.get(id) ?? -1;
  }
}
