/** First retry waits up to this long (before the cap below applies). */
export const INITIAL_BACKOFF_MS = 500;
/** Upper bound on any retry delay, whatever the interval. */
export const MAX_BACKOFF_MS = 30_000;

/**
 * The delay cap for a given profile interval: never more than two intervals,
 * so that when the collector comes back the agent notices within about two
 * snapshots (and the bounded queue has not turned over many times meanwhile),
 * and never more than MAX_BACKOFF_MS.
 */
export function backoffCapMs(intervalMs: number): number {
  return Math.max(1, Math.min(MAX_BACKOFF_MS, 2 * intervalMs));
}

/**
 * Exponential backoff with "full jitter" (AWS architecture blog): the delay is
 * uniform in [0, min(cap, initial * 2^attempt)). Jitter keeps a fleet of
 * workers from reconnecting in lockstep when a collector restarts. The random
 * source is injectable for testing.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly capMs: number,
    private readonly random: () => number = Math.random,
    private readonly initialMs: number = Math.min(INITIAL_BACKOFF_MS, capMs),
  ) {}

  /** Delay before the next retry; each call doubles the window, up to the cap. */
  nextDelayMs(): number {
    const ceiling = Math.min(this.capMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    let r = this.random();
    if (!(r >= 0 && r < 1)) r = 0.5; // a broken random source must not break the bound
    return Math.floor(r * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
