/**
 * One evaluator at a time: a lease in the store, held by whichever
 * collector claimed it first and keeps renewing it.
 *
 * ClickHouse has no compare-and-set, so the lease is insert-then-read-back:
 * a collector that sees no live claim of someone else inserts its own
 * (acquired now, expiring `ttlMs` later), reads the live claims back, and
 * holds the lease if its claim is the earliest (ties broken by holder id,
 * so every reader picks the same one). The holder renews by inserting a
 * claim with its original acquisition time; a collector that sees another's
 * live claim does not claim at all, and a holder that stops renewing loses
 * the lease `ttlMs` after its last renewal.
 *
 * Two claimants racing both insert; any reader that sees both picks the
 * same winner, and the loser, seeing the winner's claim on its next try,
 * stands down. Where a read can miss a fresh insert (a replica behind, in a
 * cluster), two holders can overlap for at most one period
 * (deploy/README.md says what that costs).
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import type { ProfileStore } from '../store/store';

export interface LeaseOptions {
  /** How long a claim lasts without renewal. */
  ttlMs: number;
  now: () => number;
}

export function newHolderId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

export class LeaseKeeper {
  private readonly opts: LeaseOptions;
  /** The acquisition time of the claim this keeper holds, if it holds one. */
  private acquiredAtMs: number | undefined;

  constructor(
    private readonly store: ProfileStore,
    readonly name: string,
    readonly holder: string,
    opts: Partial<LeaseOptions> = {},
  ) {
    this.opts = { ttlMs: 90_000, now: Date.now, ...opts };
  }

  /** Whether this keeper held the lease at its last `tryHold`. */
  get held(): boolean {
    return this.acquiredAtMs !== undefined;
  }

  /** Claims or renews the lease; true when this keeper holds it now. */
  async tryHold(): Promise<boolean> {
    const now = this.opts.now();
    const before = await this.store.liveLeaseClaims(this.name, now);
    const leader = before[0];
    if (leader && leader.holder !== this.holder) {
      this.acquiredAtMs = undefined;
      return false;
    }
    const acquiredAtMs = before.find((c) => c.holder === this.holder)?.acquiredAtMs ?? now;
    await this.store.writeLeaseClaim(this.name, { holder: this.holder, acquiredAtMs, renewedAtMs: now, expiresAtMs: now + this.opts.ttlMs });
    const after = await this.store.liveLeaseClaims(this.name, now);
    this.acquiredAtMs = after[0]?.holder === this.holder ? acquiredAtMs : undefined;
    return this.held;
  }

  /** Gives the lease up at once (a claim that expires now), so another collector need not wait out the TTL. */
  async release(): Promise<void> {
    if (this.acquiredAtMs === undefined) return;
    const now = this.opts.now();
    await this.store.writeLeaseClaim(this.name, { holder: this.holder, acquiredAtMs: this.acquiredAtMs, renewedAtMs: now, expiresAtMs: now });
    this.acquiredAtMs = undefined;
  }
}
