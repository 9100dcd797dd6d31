/**
 * Which instance is asked for a holder capture: one per service, the same
 * request until it is answered or times out, none during the cool-down.
 */
import { describe, expect, it } from 'vitest';
import { HolderRequests } from '../../collector/src/leaks/holder-requests';

function setup(maxServices = 10) {
  let now = 1_000;
  const r = new HolderRequests({ cooldownMs: 60_000, answerTimeoutMs: 10_000, maxServices, now: () => now });
  return { r, advance: (ms: number) => (now += ms) };
}

describe('HolderRequests', () => {
  it('asks nothing without a confirmed finding', () => {
    const { r } = setup();
    expect(r.requestFor('svc', 'a', false)).toBeUndefined();
    expect(r.counters.asked).toBe(0);
  });

  it('asks the first instance only, with the same id until it answers, then none during the cool-down', () => {
    const { r, advance } = setup();
    const first = r.requestFor('svc', 'a', true)!;
    expect(first.captureId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.requestFor('svc', 'b', true)).toBeUndefined();
    expect(r.requestFor('svc', 'a', true)).toEqual(first);
    r.answered('svc', 'someone-elses-id');
    expect(r.requestFor('svc', 'a', true)).toEqual(first);
    r.answered('svc', first.captureId);
    expect(r.counters.answered).toBe(1);
    advance(59_000);
    expect(r.requestFor('svc', 'a', true)).toBeUndefined();
    expect(r.requestFor('svc', 'b', true)).toBeUndefined();
    advance(1_000);
    const second = r.requestFor('svc', 'b', true)!;
    expect(second.captureId).not.toBe(first.captureId);
    // Another service is asked on its own.
    expect(r.requestFor('other', 'x', true)).toBeDefined();
  });

  it('an unanswered request times out and counts as the cool-down start', () => {
    const { r, advance } = setup();
    const first = r.requestFor('svc', 'a', true)!;
    advance(10_000);
    expect(r.requestFor('svc', 'a', true)).toBeUndefined();
    expect(r.counters.timedOut).toBe(1);
    r.answered('svc', first.captureId); // too late: ignored
    expect(r.counters.answered).toBe(0);
    advance(60_000);
    expect(r.requestFor('svc', 'b', true)).toBeDefined();
  });

  it('remembers at most maxServices services and counts the evicted', () => {
    const { r } = setup(2);
    for (const s of ['a', 'b', 'c']) r.requestFor(s, 'i', true);
    expect(r.counters.evicted).toBe(1);
    // 'a' was forgotten: it may be asked again.
    expect(r.requestFor('a', 'j', true)).toBeDefined();
  });
});
