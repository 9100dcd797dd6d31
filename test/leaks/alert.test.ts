import { describe, expect, it } from 'vitest';
import { advanceAlerts, emptyAlertState, type Trend } from '../../collector/src/leaks/alert';

const opts = { flagAfter: 3, clearAfter: 3, rememberProfiles: 10 };
const R: Trend = 'rising';
const G: Trend = 'growing';
const F: Trend = 'flat';

describe('alert hysteresis', () => {
  it('flags after 3 consecutive rising profiles, even when they arrive in one evaluation', () => {
    const a = advanceAlerts(emptyAlertState(), new Map([['site:1', [R, R]]]), 2, 't1', opts);
    expect(a.entries['site:1']).toMatchObject({ positive: 2, flagged: false });
    const b = advanceAlerts(a, new Map([['site:1', [R]]]), 3, 't2', opts);
    expect(b.entries['site:1']).toMatchObject({ positive: 3, flagged: true, firstFlaggedAt: 't2' });
    const c = advanceAlerts(emptyAlertState(), new Map([['site:1', [R, F, R, R, R]]]), 5, 't3', opts);
    expect(c.entries['site:1']?.flagged).toBe(true);
    // Growing is not rising: it breaks the streak.
    const d = advanceAlerts(emptyAlertState(), new Map([['site:1', [R, R, G, R, R]]]), 5, 't3', opts);
    expect(d.entries['site:1']?.flagged).toBe(false);
  });

  it('does not count an evaluation without a new profile', () => {
    const a = advanceAlerts(emptyAlertState(), new Map([['k', [R, R]]]), 10, '2026-01-01T00:00:00.000Z', opts);
    expect(advanceAlerts(a, new Map([['k', [R]]]), 10, '2026-01-01T00:01:00.000Z', opts)).toBe(a);
    expect(a.advancedAtMs).toBe(Date.parse('2026-01-01T00:00:00.000Z'));
  });

  it('clears only after 3 consecutive flat profiles: a growing profile in between (a blip) resets the count', () => {
    let s = advanceAlerts(emptyAlertState(), new Map([['k', [R, R, R]]]), 1, 't1', opts);
    s = advanceAlerts(s, new Map([['k', [F, F, G, F, F, G, G]]]), 2, 't2', opts);
    expect(s.entries['k']).toMatchObject({ flagged: true, firstFlaggedAt: 't1', flat: 0 });
    s = advanceAlerts(s, new Map([['k', [F, F]]]), 3, 't3', opts);
    expect(s.entries['k']).toMatchObject({ flagged: true, flat: 2 });
    // The key vanished from the data: one flat step.
    s = advanceAlerts(s, new Map(), 4, 't4', opts);
    expect(s.entries['k']).toMatchObject({ flagged: false, sinceCleared: 0 });
  });

  it('keeps firstFlaggedAt across a short clear, forgets it after rememberProfiles', () => {
    let s = advanceAlerts(emptyAlertState(), new Map([['k', [R, R, R, F, F, F]]]), 1, 't1', opts);
    expect(s.entries['k']).toMatchObject({ flagged: false, firstFlaggedAt: 't1' });
    s = advanceAlerts(s, new Map([['k', [R, R, R]]]), 2, 't2', opts);
    expect(s.entries['k']).toMatchObject({ flagged: true, firstFlaggedAt: 't1' });
    s = advanceAlerts(s, new Map([['k', [F, F, F]]]), 3, 't3', opts);
    s = advanceAlerts(s, new Map([['k', Array<Trend>(10).fill(F)]]), 4, 't4', opts);
    // Remembered no longer, and neither flagged nor positive: dropped (the state stays bounded).
    expect(s.entries['k']).toBeUndefined();
    s = advanceAlerts(s, new Map([['k', [R, R, R]]]), 5, 't5', opts);
    expect(s.entries['k']).toMatchObject({ flagged: true, firstFlaggedAt: 't5' });
  });
});
