/**
 * Stack ids a collector has already written to `stacks`, per tenant and service,
 * bounded. A cache that only saves work: a stack it forgets (or never
 * learns) is written again, which the ReplacingMergeTree absorbs.
 *
 * Why not a set of `${service}\0${id}` strings: every stack of every
 * profile is looked up (500k lookups/s at the ingest target), and building
 * and hashing a fresh string for each was a tenth of the main thread. Ids
 * arrive as two uint32 halves; the key is a number made of the high half
 * and the top 21 bits of the low half (53 bits, exact as a double), and the
 * entry holds the low half, so a lookup is exact.
 */
const LOW_BITS_IN_KEY = 21;

export class KnownStacks {
  private readonly services = new Map<string, Map<number, number>>();
  private total = 0;
  /** Entries forgotten to stay within capacity. */
  evicted = 0;

  constructor(readonly capacity: number) {}

  /** The set of one service of one tenant, for many lookups in a row. */
  of(tenant: string, service: string): ServiceStacks {
    // Tenant names cannot hold \0 (auth/tokens.ts).
    const name = `${tenant}\0${service}`;
    let ids = this.services.get(name);
    if (ids === undefined) {
      ids = new Map();
      this.services.set(name, ids);
    }
    return new ServiceStacks(ids, this);
  }

  get size(): number {
    return this.total;
  }

  /** @internal */
  added(ids: Map<number, number>): void {
    this.total++;
    if (this.total > this.capacity) {
      // The oldest entry of the service that grew: Maps iterate in insertion order.
      ids.delete(ids.keys().next().value!);
      this.total--;
      this.evicted++;
    }
  }
}

export class ServiceStacks {
  constructor(
    private readonly ids: Map<number, number>,
    private readonly owner: KnownStacks,
  ) {}

  has(hi: number, lo: number): boolean {
    return this.ids.get(key(hi, lo)) === lo;
  }

  add(hi: number, lo: number): void {
    const k = key(hi, lo);
    const had = this.ids.get(k);
    if (had === lo) return;
    this.ids.set(k, lo);
    // A different id with the same key replaces it: the count is unchanged.
    if (had === undefined) this.owner.added(this.ids);
  }
}

function key(hi: number, lo: number): number {
  return hi * 2 ** LOW_BITS_IN_KEY + (lo >>> (32 - LOW_BITS_IN_KEY));
}
