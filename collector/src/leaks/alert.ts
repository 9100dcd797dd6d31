/**
 * Alert hysteresis: a key (a site, or a process gauge) is flagged after
 * `flagAfter` consecutive positive evaluations and cleared after `clearAfter`
 * consecutive non-positive ones. The state travels inside the stored report
 * (findings table), so any collector instance continues where the last
 * evaluation, on whichever instance, left off. The counters count
 * profiles: each new profile since the last evaluation is one step, so
 * asking twice a second does not make a leak, and evaluating every 30 s at a
 * 500 ms profile interval does not slow detection down.
 */

export interface AlertEntry {
  /** Consecutive positive profiles. */
  positive: number;
  /** Consecutive non-positive profiles. */
  flat: number;
  flagged: boolean;
  /** ISO time the key was first flagged (kept while flagged). */
  firstFlaggedAt: string | null;
  /** What the key is, as last flagged: what a "cleared" notification names. */
  subject?: AlertSubject;
}

/** A flagged site or process gauge, as notifications describe it (leaks/transitions.ts). */
export interface AlertSubject {
  kind: 'site' | 'heap' | 'external';
  function?: string;
  file?: string;
  line?: number;
  instance?: string;
  growthBytesPerHour: number;
  timeToLimitSeconds: number | null;
}

export interface AlertState {
  /** Newest profile time (ms) seen by the evaluation that wrote this state. */
  latestProfileMs: number;
  entries: Record<string, AlertEntry>;
}

export interface AlertOptions {
  flagAfter: number;
  clearAfter: number;
}

export const DEFAULT_ALERT: AlertOptions = { flagAfter: 3, clearAfter: 3 };

export function emptyAlertState(): AlertState {
  return { latestProfileMs: 0, entries: {} };
}

/**
 * Next state from the previous one and, per key, the verdicts of the
 * profiles that arrived since (oldest first): the counters are in profiles,
 * not evaluations, so the alert does not depend on how often anyone asks.
 * A key with no verdicts this time (its site vanished) counts as one flat
 * step. Keys neither positive nor flagged are dropped, which bounds the state.
 */
export function advanceAlerts(
  prev: AlertState,
  steps: ReadonlyMap<string, readonly boolean[]>,
  latestProfileMs: number,
  nowIso: string,
  opts: AlertOptions = DEFAULT_ALERT,
): AlertState {
  if (latestProfileMs <= prev.latestProfileMs) return prev; // no new data: nothing to count
  const entries: Record<string, AlertEntry> = {};
  const keys = new Set([...Object.keys(prev.entries), ...steps.keys()]);
  for (const key of keys) {
    const e: AlertEntry = { ...(prev.entries[key] ?? { positive: 0, flat: 0, flagged: false, firstFlaggedAt: null }) };
    const verdicts = steps.get(key);
    for (const positive of verdicts && verdicts.length ? verdicts : [false]) {
      if (positive) {
        e.positive++;
        e.flat = 0;
      } else {
        e.positive = 0;
        e.flat++;
      }
      if (!e.flagged && e.positive >= opts.flagAfter) {
        e.flagged = true;
        e.firstFlaggedAt = nowIso;
      } else if (e.flagged && e.flat >= opts.clearAfter) {
        e.flagged = false;
        e.firstFlaggedAt = null;
      }
    }
    if (e.flagged || e.positive > 0) entries[key] = e;
  }
  return { latestProfileMs, entries };
}
