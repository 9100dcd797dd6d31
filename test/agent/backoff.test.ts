import { describe, expect, it } from 'vitest';
import { Backoff, backoffCapMs, INITIAL_BACKOFF_MS, MAX_BACKOFF_MS } from '../../agent/src/backoff';

describe('Backoff (full jitter)', () => {
  it('doubles the window up to the cap; the delay is random * window', () => {
    const b = new Backoff(10_000, () => 0.999999);
    const delays = Array.from({ length: 8 }, () => b.nextDelayMs());
    expect(delays).toEqual([499, 999, 1999, 3999, 7999, 9999, 9999, 9999]);
  });

  it('a random source of 0 gives 0 and reset() starts over', () => {
    const b = new Backoff(10_000, () => 0);
    expect(b.nextDelayMs()).toBe(0);
    b.nextDelayMs();
    expect(b.attempts).toBe(2);
    b.reset();
    expect(b.attempts).toBe(0);
  });

  it('stays within [0, cap) for any attempt count and with a broken random source', () => {
    for (const r of [Math.random, () => NaN, () => 7, () => -1]) {
      const b = new Backoff(1_000, r);
      for (let i = 0; i < 200; i++) {
        const d = b.nextDelayMs();
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(1_000);
      }
    }
  });

  it('the cap is two intervals, at most MAX_BACKOFF_MS', () => {
    expect(backoffCapMs(500)).toBe(1_000);
    expect(backoffCapMs(60_000)).toBe(MAX_BACKOFF_MS);
    const fast = new Backoff(backoffCapMs(200), () => 0.999999);
    expect(fast.nextDelayMs()).toBeLessThan(400); // initial window clipped to the cap
    expect(INITIAL_BACKOFF_MS).toBeLessThanOrEqual(MAX_BACKOFF_MS);
  });
});
