/**
 * Alert hysteresis: a key (a site, or a process gauge) is flagged after
 * `flagAfter` consecutive rising profiles and cleared only after
 * `clearAfter` consecutive flat ones (the series stopped growing, not merely
 * failed one check: a sampling blip cannot clear a leak). A key cleared and
 * flagged again within `rememberProfiles` keeps its firstFlaggedAt. The
 * state travels inside the stored report (findings table), so any collector
 * continues where the last evaluation, on whichever instance, left off. The
 * counters count profiles: each new profile since the last evaluation is one
 * step, so asking twice a second does not make a leak, and evaluating every
 * 30 s at a 500 ms profile interval does not slow detection down. See
 * docs/detector.md#alerts.
 */

/** One profile's verdict on a key: all checks pass; not all, but still growing; or stopped growing. */
export type Trend = 'rising' | 'growing' | 'flat';

export interface AlertEntry {
  /** Consecutive rising profiles. */
  positive: number;
  /** Consecutive flat profiles. */
  flat: number;
  flagged: boolean;
  /** ISO time the key was first flagged: kept while flagged, and for rememberProfiles after a clear. */
  firstFlaggedAt: string | null;
  /** Profiles since the key was cleared (absent while flagged or never flagged). */
  sinceCleared?: number;
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
  /**
   * When this flag began (ISO). Unlike firstFlaggedAt, which a flag soon
   * after a clear inherits, it is new on every flag: a flag and its clear
   * share it, and notifications are identified by it.
   */
  flaggedAt: string;
}

export interface AlertState {
  /** Newest profile time (ms) seen by the evaluation that wrote this state. */
  latestProfileMs: number;
  /** Collector time (ms) of the evaluation that last saw a new profile: how long the service has been silent. */
  advancedAtMs?: number;
  entries: Record<string, AlertEntry>;
}

export interface AlertOptions {
  flagAfter: number;
  clearAfter: number;
  /** Profiles after a clear during which a new flag keeps the old firstFlaggedAt. */
  rememberProfiles: number;
}

// clearAfter 6 flat (was 3 non-rising): the flicker measured with each is
// in docs/detector.md#alerts (test/leaks/flicker.test.ts).
export const DEFAULT_ALERT: AlertOptions = { flagAfter: 3, clearAfter: 6, rememberProfiles: 120 };

export function emptyAlertState(): AlertState {
  return { latestProfileMs: 0, entries: {} };
}

/**
 * Next state from the previous one and, per key, the trends of the profiles
 * that arrived since (oldest first): the counters are in profiles, not
 * evaluations, so the alert does not depend on how often anyone asks. A key
 * with no trends this time (its site vanished, its instance stopped) counts
 * as one flat step. Keys neither positive, flagged nor remembered are
 * dropped, which bounds the state.
 */
export function advanceAlerts(
  prev: AlertState,
  steps: ReadonlyMap<string, readonly Trend[]>,
  latestProfileMs: number,
  nowIso: string,
  opts: AlertOptions = DEFAULT_ALERT,
): AlertState {
  if (latestProfileMs <= prev.latestProfileMs) return prev; // no new data: nothing to count
  const entries: Record<string, AlertEntry> = {};
  const keys = new Set([...Object.keys(prev.entries), ...steps.keys()]);
  for (const key of keys) {
    const e: AlertEntry = { ...(prev.entries[key] ?? { positive: 0, flat: 0, flagged: false, firstFlaggedAt: null }) };
    const trends = steps.get(key);
    for (const t of trends && trends.length ? trends : (['flat'] as const)) {
      e.positive = t === 'rising' ? e.positive + 1 : 0;
      e.flat = t === 'flat' ? e.flat + 1 : 0;
      if (e.sinceCleared !== undefined) e.sinceCleared++;
      if (!e.flagged && e.positive >= opts.flagAfter) {
        e.flagged = true;
        e.firstFlaggedAt ??= nowIso;
        delete e.sinceCleared;
      } else if (e.flagged && e.flat >= opts.clearAfter) {
        e.flagged = false;
        e.sinceCleared = 0;
      }
    }
    if (e.sinceCleared !== undefined && e.sinceCleared >= opts.rememberProfiles) {
      e.firstFlaggedAt = null;
      delete e.sinceCleared;
    }
    if (e.flagged || e.positive > 0 || e.firstFlaggedAt !== null) entries[key] = e;
  }
  const at = Date.parse(nowIso);
  return { latestProfileMs, advancedAtMs: Number.isFinite(at) ? at : prev.advancedAtMs, entries };
}
