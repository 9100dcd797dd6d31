/**
 * Throttling of failed authentication, per remote address: after
 * `maxFailures` wrong or missing tokens within `windowMs`, every request
 * from that address is refused (HTTP 429, gRPC RESOURCE_EXHAUSTED) without
 * looking at its token until the window has passed, so a token cannot be
 * guessed at more than `maxFailures` tries a window per address.
 *
 * Bounded: at most `maxAddresses` addresses are tracked; past that the
 * oldest is forgotten (and counted), which at worst gives it a fresh window.
 */
export interface ThrottleOptions {
  maxFailures: number;
  windowMs: number;
  maxAddresses: number;
  now: () => number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { maxFailures: 10, windowMs: 60_000, maxAddresses: 10_000, now: Date.now };

interface Entry {
  failures: number;
  since: number;
}

export class AuthThrottle {
  private readonly byAddress = new Map<string, Entry>();
  private readonly opts: ThrottleOptions;
  /** Failed attempts, refusals while blocked, addresses forgotten to stay bounded. */
  readonly counters = { failures: 0, blocked: 0, evicted: 0 };

  constructor(opts: Partial<ThrottleOptions> = {}) {
    this.opts = { ...DEFAULT_THROTTLE, ...opts };
  }

  /** Milliseconds until `address` may try again, 0 when it may now. */
  blockedFor(address: string): number {
    const e = this.byAddress.get(address);
    if (!e) return 0;
    const left = e.since + this.opts.windowMs - this.opts.now();
    if (left <= 0) {
      this.byAddress.delete(address);
      return 0;
    }
    if (e.failures < this.opts.maxFailures) return 0;
    this.counters.blocked++;
    return left;
  }

  failed(address: string): void {
    this.counters.failures++;
    const e = this.byAddress.get(address);
    if (e) {
      e.failures++;
      return;
    }
    this.byAddress.set(address, { failures: 1, since: this.opts.now() });
    if (this.byAddress.size > this.opts.maxAddresses) {
      this.byAddress.delete(this.byAddress.keys().next().value!);
      this.counters.evicted++;
    }
  }

  get size(): number {
    return this.byAddress.size;
  }
}
