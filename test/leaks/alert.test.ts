import { describe, expect, it } from 'vitest';
import { advanceAlerts, emptyAlertState, isPending, type Step, type Trend } from '../../collector/src/leaks/alert';

const opts = { flagAfter: 3, clearAfter: 3, rememberProfiles: 10, minGrowthMs: 0 };
const R: Trend = 'rising';
const G: Trend = 'growing';
const F: Trend = 'flat';

/** Steps one profile (1 s) apart from `t0` s, each rising one judged from profile 0 on. */
const at = (trends: readonly Trend[], t0 = 0): Step[] =>
  trends.map((trend, i) => ({ trend, atMs: (t0 + i) * 1000, sinceMs: 0, timeToLimitMs: null }));

describe('alert hysteresis', () => {
  it('flags after 3 consecutive rising profiles, even when they arrive in one evaluation', () => {
    const a = advanceAlerts(emptyAlertState(), new Map([['site:1', at([R, R])]]), 2, 't1', opts);
    expect(a.entries['site:1']).toMatchObject({ positive: 2, flagged: false });
    const b = advanceAlerts(a, new Map([['site:1', at([R], 2)]]), 3, 't2', opts);
    expect(b.entries['site:1']).toMatchObject({ positive: 3, flagged: true, firstFlaggedAt: 't2' });
    const c = advanceAlerts(emptyAlertState(), new Map([['site:1', at([R, F, R, R, R])]]), 5, 't3', opts);
    expect(c.entries['site:1']?.flagged).toBe(true);
    // Growing is not rising: it breaks the streak.
    const d = advanceAlerts(emptyAlertState(), new Map([['site:1', at([R, R, G, R, R])]]), 5, 't3', opts);
    expect(d.entries['site:1']?.flagged).toBe(false);
  });

  it('does not count an evaluation without a new profile', () => {
    const a = advanceAlerts(emptyAlertState(), new Map([['k', at([R, R])]]), 10, '2026-01-01T00:00:00.000Z', opts);
    expect(advanceAlerts(a, new Map([['k', at([R], 2)]]), 10, '2026-01-01T00:01:00.000Z', opts)).toBe(a);
    expect(a.advancedAtMs).toBe(Date.parse('2026-01-01T00:00:00.000Z'));
  });

  it('clears only after 3 consecutive flat profiles: a growing profile in between (a blip) resets the count', () => {
    let s = advanceAlerts(emptyAlertState(), new Map([['k', at([R, R, R])]]), 1, 't1', opts);
    s = advanceAlerts(s, new Map([['k', at([F, F, G, F, F, G, G], 3)]]), 2, 't2', opts);
    expect(s.entries['k']).toMatchObject({ flagged: true, firstFlaggedAt: 't1', flat: 0 });
    s = advanceAlerts(s, new Map([['k', at([F, F], 10)]]), 3, 't3', opts);
    expect(s.entries['k']).toMatchObject({ flagged: true, flat: 2 });
    // The key vanished from the data: one flat step.
    s = advanceAlerts(s, new Map(), 4, 't4', opts);
    expect(s.entries['k']).toMatchObject({ flagged: false, sinceCleared: 0 });
  });

  it('keeps firstFlaggedAt across a short clear, forgets it after rememberProfiles', () => {
    let s = advanceAlerts(emptyAlertState(), new Map([['k', at([R, R, R, F, F, F])]]), 1, 't1', opts);
    expect(s.entries['k']).toMatchObject({ flagged: false, firstFlaggedAt: 't1' });
    s = advanceAlerts(s, new Map([['k', at([R, R, R], 6)]]), 2, 't2', opts);
    expect(s.entries['k']).toMatchObject({ flagged: true, firstFlaggedAt: 't1' });
    s = advanceAlerts(s, new Map([['k', at([F, F, F], 9)]]), 3, 't3', opts);
    s = advanceAlerts(s, new Map([['k', at(Array<Trend>(10).fill(F), 12)]]), 4, 't4', opts);
    // Remembered no longer, and neither flagged nor positive: dropped (the state stays bounded).
    expect(s.entries['k']).toBeUndefined();
    s = advanceAlerts(s, new Map([['k', at([R, R, R], 22)]]), 5, 't5', opts);
    expect(s.entries['k']).toMatchObject({ flagged: true, firstFlaggedAt: 't5' });
  });
});

describe('minimum growth time', () => {
  const wait = { ...opts, minGrowthMs: 60_000 };
  const step = (trend: Trend, atS: number, sinceS = 0, timeToLimitMs: number | null = null): Step => ({ trend, atMs: atS * 1000, sinceMs: sinceS * 1000, timeToLimitMs });

  it('a rising key is pending, not flagged, until its growth has lasted minGrowthMs from the start of its first rising window', () => {
    // Judged rising from the 20th second on, on windows that start at 0.
    const rising = Array.from({ length: 40 }, (_, i) => step(R, 20 + i));
    let s = advanceAlerts(emptyAlertState(), new Map([['k', rising]]), 1, 't1', wait);
    expect(s.entries['k']).toMatchObject({ flagged: false, positive: 40, growingSinceMs: 0 });
    expect(isPending(s.entries['k']!)).toBe(true);
    s = advanceAlerts(s, new Map([['k', [step(R, 60)]]]), 2, 't2', wait);
    expect(s.entries['k']).toMatchObject({ flagged: true, firstFlaggedAt: 't2' });
    expect(s.entries['k']!.growingSinceMs).toBeUndefined();
  });

  it('the start of growth survives steps that are not rising, and a later window that starts later', () => {
    let s = advanceAlerts(emptyAlertState(), new Map([['k', [step(R, 20), step(G, 21), step(F, 22), step(R, 40, 30), step(R, 50, 40)]]]), 1, 't1', wait);
    expect(s.entries['k']).toMatchObject({ flagged: false, growingSinceMs: 0 });
    s = advanceAlerts(s, new Map([['k', [step(R, 60, 50)]]]), 2, 't2', wait);
    expect(s.entries['k']?.flagged).toBe(true);
  });

  it('a cache that filled and went flat starts again: its old growth does not count', () => {
    let s = advanceAlerts(emptyAlertState(), new Map([['k', [step(R, 20), step(R, 21), step(R, 22), step(F, 23), step(F, 24), step(F, 25)]]]), 1, 't1', wait);
    // Flat for clearAfter profiles: the growth stopped, and a pending key without it is dropped.
    expect(s.entries['k']).toBeUndefined();
    s = advanceAlerts(s, new Map([['k', [step(R, 70, 30), step(R, 71, 30), step(R, 72, 30)]]]), 2, 't2', wait);
    expect(s.entries['k']).toMatchObject({ flagged: false, growingSinceMs: 30_000 });
  });

  it('does not wait when the growth would reach the heap limit within twice the minimum growth time', () => {
    const s = advanceAlerts(emptyAlertState(), new Map([['k', [step(R, 20, 0, 100_000), step(R, 21, 0, 100_000), step(R, 22, 0, 100_000)]]]), 1, 't1', wait);
    expect(s.entries['k']?.flagged).toBe(true);
    const later = advanceAlerts(emptyAlertState(), new Map([['k', [step(R, 20, 0, 130_000), step(R, 21, 0, 130_000), step(R, 22, 0, 130_000)]]]), 1, 't1', wait);
    expect(later.entries['k']?.flagged).toBe(false);
  });

  it('a key flagged not long ago is flagged again without waiting (its growth proved itself)', () => {
    let s = advanceAlerts(emptyAlertState(), new Map([['k', Array.from({ length: 70 }, (_, i) => step(R, i))]]), 1, 't1', wait);
    expect(s.entries['k']?.flagged).toBe(true);
    s = advanceAlerts(s, new Map([['k', [step(F, 70), step(F, 71), step(F, 72)]]]), 2, 't2', wait);
    expect(s.entries['k']?.flagged).toBe(false);
    s = advanceAlerts(s, new Map([['k', [step(R, 73, 60), step(R, 74, 60), step(R, 75, 60)]]]), 3, 't3', wait);
    expect(s.entries['k']).toMatchObject({ flagged: true, firstFlaggedAt: 't1' });
  });
});
