/**
 * Alert hysteresis: a key (a site, or a process gauge) is flagged after
 * `flagAfter` consecutive positive evaluations and cleared after `clearAfter`
 * consecutive non-positive ones. The state travels inside the stored report
 * (findings table), so any collector instance continues where the last
 * evaluation, on whichever instance, left off. Only evaluations that saw a
 * newer profile advance the counters: asking twice a second does not make a
 * leak.
 */

export interface AlertEntry {
  positive: number;
  flat: number;
  flagged: boolean;
  /** ISO time the key was first flagged (kept while flagged). */
  firstFlaggedAt: string | null;
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
 * Next state from the previous one and this evaluation's positive keys.
 * Keys neither positive nor flagged are dropped, which bounds the state.
 */
export function advanceAlerts(
  prev: AlertState,
  positive: ReadonlySet<string>,
  latestProfileMs: number,
  nowIso: string,
  opts: AlertOptions = DEFAULT_ALERT,
): AlertState {
  if (latestProfileMs <= prev.latestProfileMs) return prev; // no new data: nothing to count
  const entries: Record<string, AlertEntry> = {};
  const keys = new Set([...Object.keys(prev.entries), ...positive]);
  for (const key of keys) {
    const old = prev.entries[key] ?? { positive: 0, flat: 0, flagged: false, firstFlaggedAt: null };
    const e: AlertEntry = positive.has(key)
      ? { ...old, positive: old.positive + 1, flat: 0 }
      : { ...old, positive: 0, flat: old.flat + 1 };
    if (!e.flagged && e.positive >= opts.flagAfter) {
      e.flagged = true;
      e.firstFlaggedAt = nowIso;
    } else if (e.flagged && e.flat >= opts.clearAfter) {
      e.flagged = false;
      e.firstFlaggedAt = null;
    }
    if (e.flagged || e.positive > 0) entries[key] = e;
  }
  return { latestProfileMs, entries };
}
