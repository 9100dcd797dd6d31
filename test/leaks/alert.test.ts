import { describe, expect, it } from 'vitest';
import { advanceAlerts, emptyAlertState } from '../../collector/src/leaks/alert';

const opts = { flagAfter: 3, clearAfter: 3 };

describe('alert hysteresis', () => {
  it('flags after 3 consecutive positive profiles, even when they arrive in one evaluation', () => {
    const a = advanceAlerts(emptyAlertState(), new Map([['site:1', [true, true]]]), 2, 't1', opts);
    expect(a.entries['site:1']).toMatchObject({ positive: 2, flagged: false });
    const b = advanceAlerts(a, new Map([['site:1', [true]]]), 3, 't2', opts);
    expect(b.entries['site:1']).toMatchObject({ positive: 3, flagged: true, firstFlaggedAt: 't2' });
    const c = advanceAlerts(emptyAlertState(), new Map([['site:1', [true, false, true, true, true]]]), 5, 't3', opts);
    expect(c.entries['site:1']?.flagged).toBe(true);
  });

  it('does not count an evaluation without a new profile', () => {
    const a = advanceAlerts(emptyAlertState(), new Map([['k', [true, true]]]), 10, 't1', opts);
    expect(advanceAlerts(a, new Map([['k', [true]]]), 10, 't2', opts)).toBe(a);
  });

  it('keeps firstFlaggedAt while flagged and clears after 3 flat profiles', () => {
    let s = advanceAlerts(emptyAlertState(), new Map([['k', [true, true, true]]]), 1, 't1', opts);
    s = advanceAlerts(s, new Map([['k', [true, false, false]]]), 2, 't2', opts);
    expect(s.entries['k']).toMatchObject({ flagged: true, firstFlaggedAt: 't1', flat: 2 });
    // The key vanished from the data: one flat step.
    s = advanceAlerts(s, new Map(), 3, 't3', opts);
    expect(s.entries['k']).toBeUndefined();
  });
});
