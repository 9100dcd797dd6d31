/**
 * Which services the collector asks for precise mode: the suspicion read
 * from a stored report, and the bounded, non-blocking cache in front of the
 * store (the store itself is exercised in test/e2e/precise-directive.test.ts;
 * here a reader function stands in for it, so the cache's timing is exact).
 */
import { describe, expect, it } from 'vitest';
import { SuspectDirectives, suspicionOf } from '../../collector/src/leaks/suspects';

const entry = (positive: number, flagged = false) => ({ positive, flat: 0, flagged, firstFlaggedAt: flagged ? '2026-12-02T00:00:00Z' : null });
const report = (entries: Record<string, ReturnType<typeof entry>>, leaks: Array<{ function: string }> = []) =>
  JSON.stringify({ service: 's', evaluatedAt: '2026-12-02T00:00:00Z', leaks, process: [], alertState: { latestProfileMs: 1, entries } });

describe('suspicionOf', () => {
  it('a site or heap with a positive step, or flagged, makes the service suspect', () => {
    expect(suspicionOf(report({ 'site:42': entry(1) }))).toEqual({ suspect: true, reason: '1 site(s) rising', confirmed: false });
    expect(suspicionOf(report({ 'site:42': entry(5, true) }, [{ function: 'recordFailure' }]))).toEqual({ suspect: true, reason: 'leak flagged at recordFailure', confirmed: true });
    expect(suspicionOf(report({ 'heap:h/1/0': entry(2) })).reason).toBe('heap not returning to its baseline');
  });

  it('a site rising before any major GC could confirm it (the report\'s suspects) makes the service suspect', () => {
    const raw = JSON.stringify({ ...JSON.parse(report({})), suspects: ['42', '43'] });
    expect(suspicionOf(raw)).toEqual({ suspect: true, reason: '2 site(s) rising before any major GC confirms it', confirmed: false });
    expect(suspicionOf(JSON.stringify({ ...JSON.parse(report({})), suspects: [] })).suspect).toBe(false);
  });

  it('off-heap growth makes the service suspect: precise mode\'s GC assist gives its gauge the post-GC points it is judged on', () => {
    // Rising before any major GC could confirm it (the report's processSuspects).
    const early = JSON.stringify({ ...JSON.parse(report({})), processSuspects: ['external:h/1/0'] });
    expect(suspicionOf(early)).toEqual({ suspect: true, reason: 'external rising before any major GC confirms it', confirmed: false });
    // Flagged: a confirmed finding (what a holder capture is asked on), and precise mode stays on to keep judging it.
    const flagged = JSON.stringify({ ...JSON.parse(report({ 'external:h/1/0': entry(4, true) })), process: [{ kind: 'external', instance: 'h/1/0' }] });
    expect(suspicionOf(flagged)).toEqual({ suspect: true, reason: 'off-heap memory not returning to its baseline', confirmed: true });
  });

  it('no report, no rising entry, or an unreadable report: not suspect', () => {
    expect(suspicionOf(null).suspect).toBe(false);
    expect(suspicionOf(report({})).suspect).toBe(false);
    expect(suspicionOf(JSON.stringify({ ...JSON.parse(report({})), processSuspects: [] })).suspect).toBe(false);
    expect(suspicionOf('{not json').suspect).toBe(false);
    // A report from before the alert state was stored.
    expect(suspicionOf(JSON.stringify({ service: 's', leaks: [] })).suspect).toBe(false);
  });
});

describe('SuspectDirectives', () => {
  function setup(opts: { ttlMs?: number; maxServices?: number; maxLookups?: number } = {}) {
    let now = 1_000;
    const reports = new Map<string, string | null>();
    const pending: Array<() => void> = [];
    const reads: string[] = [];
    const s = new SuspectDirectives({
      ...opts,
      preciseForMs: 600_000,
      now: () => now,
      read: (service) => {
        reads.push(service);
        return new Promise((resolve, reject) => pending.push(() => (reports.get(service) === undefined ? reject(new Error('store down')) : resolve(reports.get(service)!))));
      },
    });
    const settle = async () => {
      for (const p of pending.splice(0)) p();
      await new Promise((r) => setImmediate(r));
    };
    return { s, reports, reads, settle, advance: (ms: number) => (now += ms) };
  }

  it('answers nothing until the first lookup is done, then the cached directive; refreshes after the TTL without blocking', async () => {
    const { s, reports, reads, settle, advance } = setup({ ttlMs: 30_000 });
    reports.set('a', report({ 'site:1': entry(1) }));
    expect(s.directiveFor('a')).toBeUndefined();
    expect(s.directiveFor('a')).toBeUndefined(); // one lookup in flight per service
    expect(reads).toEqual(['a']);
    await settle();
    expect(s.directiveFor('a')).toEqual({ precise: true, preciseForMs: 600_000, reason: '1 site(s) rising' });
    expect(reads).toEqual(['a']);
    reports.set('a', report({}));
    advance(30_000);
    // Stale: the old answer now, the new one once the lookup is back.
    expect(s.directiveFor('a')?.precise).toBe(true);
    await settle();
    expect(s.directiveFor('a')).toEqual({ precise: false, preciseForMs: 0, reason: 'nothing rising' });
  });

  it('keeps the last answer when the store fails, and counts the failure', async () => {
    const { s, reports, settle, advance } = setup({ ttlMs: 10 });
    reports.set('a', report({ 'site:1': entry(3, true) }, [{ function: 'f' }]));
    s.directiveFor('a');
    await settle();
    reports.delete('a'); // the reader now rejects
    advance(10);
    s.directiveFor('a');
    await settle();
    expect(s.directiveFor('a')?.precise).toBe(true);
    expect(s.counters.lookupFailures).toBe(1);
  });

  it('is bounded: the least recently refreshed services go first, and lookups beyond the limit are skipped', async () => {
    const { s, reports, settle } = setup({ maxServices: 2, maxLookups: 2 });
    for (const x of ['a', 'b', 'c']) reports.set(x, null);
    s.directiveFor('a');
    s.directiveFor('b');
    s.directiveFor('c'); // a third lookup in flight: skipped
    expect(s.counters.lookupsSkipped).toBe(1);
    await settle();
    s.directiveFor('c');
    await settle();
    expect(s.size).toBe(2);
    expect(s.counters.evicted).toBe(1);
    expect(s.directiveFor('c')).toEqual({ precise: false, preciseForMs: 0, reason: 'no leak report yet' });
  });
});
