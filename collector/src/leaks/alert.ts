/**
 * Alert hysteresis: a key (a site, or a process gauge) is flagged after
 * `flagAfter` consecutive rising profiles, once its growth has lasted
 * `minGrowthMs` (a bounded cache filling is a leak's shape until it stops:
 * only time tells them apart), and cleared only after `clearAfter`
 * consecutive flat ones (the series stopped growing, not merely failed one
 * check: a sampling blip cannot clear a leak). A key cleared and flagged
 * again within `rememberProfiles` keeps its firstFlaggedAt and does not wait
 * `minGrowthMs` again. The state travels inside the stored report (findings
 * table), so any collector continues where the last evaluation, on whichever
 * instance, left off. The counters count profiles: each new profile since
 * the last evaluation is one step, so asking twice a second does not make a
 * leak, and evaluating every 30 s at a 500 ms profile interval does not
 * slow detection down. See docs/detector.md#alerts.
 */

import { DEFAULT_RULE } from './rule';

/** One profile's verdict on a key: all checks pass; not all, but still growing; or stopped growing. */
export type Trend = 'rising' | 'growing' | 'flat';

/** One profile's verdict on a key, with the times the minimum growth time is measured by. */
export interface Step {
  trend: Trend;
  /** Time of the profile (ms). */
  atMs: number;
  /**
   * Where the growth a rising verdict judged begins (ms): the first profile
   * of the window the rule judged (the judged window rises from its start:
   * both halves must rise). Meaningful only when `trend` is 'rising'.
   */
  sinceMs: number;
  /**
   * Projected time (ms) until the process reaches its heap limit if this
   * growth continues; null when there is no such limit (off-heap) or no
   * positive slope. A key that would reach it within URGENT_SHARE x
   * minGrowthMs does not wait for minGrowthMs.
   */
  timeToLimitMs: number | null;
  /**
   * For a rising step: whether the growth is still there when judged over
   * the longer history (rule.ts sustainedOverHistory): false blocks a flag
   * (a cache that filled and holds its bound, its count wandering as entries
   * are replaced); absent when it was not judged (the collector judges it
   * for keys about to be flagged, leaks/index.ts).
   */
  sustained?: boolean;
}

export interface AlertEntry {
  /** Consecutive rising profiles. */
  positive: number;
  /** Consecutive flat profiles. */
  flat: number;
  flagged: boolean;
  /**
   * While not flagged: where the current growth began (ms), the earliest
   * `sinceMs` of its rising steps. Kept through steps that are not rising
   * (a slow leak's verdict flickers); dropped once the key is flat for
   * clearAfter profiles. Absent when no rising step was seen since.
   */
  growingSinceMs?: number;
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
  /** Profiles after a clear during which a new flag keeps the old firstFlaggedAt (and needs no minGrowthMs again). */
  rememberProfiles: number;
  /**
   * Wall-clock time a key's growth must have lasted before it is flagged:
   * from the first profile of the window in which it was first judged
   * rising to the profile that flags it. Until then a rising key is
   * pending (it counts as suspect, suspects.ts), not flagged. A bounded cache
   * filling at a steady pace is, until it reaches its bound, the shape of a
   * leak: what tells them apart is that it stops. A cache whose fill (and
   * the few profiles the rule needs to see it level off) is shorter than
   * this is never flagged; one that fills for longer is flagged while it
   * fills. Not waited for when the growth would reach the process's heap
   * limit within URGENT_SHARE x this. 0 turns it off. In wall-clock time
   * because the tradeoff is: see docs/detector.md#minimum-growth-time.
   */
  minGrowthMs: number;
}

/**
 * A rising key whose projected time to the heap limit is under this share
 * of minGrowthMs is flagged without waiting: waiting could take the
 * process to its limit before the wait is over.
 */
export const URGENT_SHARE = 2;

/** The agent's default profile interval, which the minimum growth time is derived from. */
const DEFAULT_PROFILE_INTERVAL_MS = 60_000;

const FLAG_AFTER = 3;

// clearAfter 6 flat (was 3 non-rising): the flicker measured with each is
// in docs/detector.md#alerts (test/leaks/flicker.test.ts). minGrowthMs: the
// growth the earliest possible flag at the default 60 s interval has seen
// (the window's 12 profiles and the streak's 2 more: 13 intervals, 13
// minutes), so it adds no delay there and gives every shorter interval the
// same floor; docs/detector.md#minimum-growth-time.
export const DEFAULT_ALERT: AlertOptions = {
  flagAfter: FLAG_AFTER,
  clearAfter: 6,
  rememberProfiles: 120,
  minGrowthMs: (DEFAULT_RULE.minProfiles + FLAG_AFTER - 2) * DEFAULT_PROFILE_INTERVAL_MS,
};

export function emptyAlertState(): AlertState {
  return { latestProfileMs: 0, entries: {} };
}

/**
 * Next state from the previous one and, per key, the steps of the profiles
 * that arrived since (oldest first): the counters are in profiles, not
 * evaluations, so the alert does not depend on how often anyone asks. A key
 * with no steps this time (its site vanished, its instance stopped) counts
 * as one flat step. Keys neither positive, pending, flagged nor remembered
 * are dropped, which bounds the state.
 */
export function advanceAlerts(
  prev: AlertState,
  steps: ReadonlyMap<string, readonly Step[]>,
  latestProfileMs: number,
  nowIso: string,
  opts: AlertOptions = DEFAULT_ALERT,
): AlertState {
  if (latestProfileMs <= prev.latestProfileMs) return prev; // no new data: nothing to count
  const entries: Record<string, AlertEntry> = {};
  const keys = new Set([...Object.keys(prev.entries), ...steps.keys()]);
  for (const key of keys) {
    const e: AlertEntry = { ...(prev.entries[key] ?? { positive: 0, flat: 0, flagged: false, firstFlaggedAt: null }) };
    const given = steps.get(key);
    for (const s of given && given.length ? given : [null]) {
      const t: Trend = s?.trend ?? 'flat';
      e.positive = t === 'rising' ? e.positive + 1 : 0;
      e.flat = t === 'flat' ? e.flat + 1 : 0;
      if (e.sinceCleared !== undefined) e.sinceCleared++;
      if (e.flagged) {
        if (e.flat >= opts.clearAfter) {
          e.flagged = false;
          e.sinceCleared = 0;
        }
        continue;
      }
      if (s && t === 'rising') e.growingSinceMs = Math.min(e.growingSinceMs ?? s.sinceMs, s.sinceMs);
      else if (e.flat >= opts.clearAfter) delete e.growingSinceMs; // growth stopped: a later rise starts again
      if (s && e.positive >= opts.flagAfter && grownEnough(e, s, opts)) {
        e.flagged = true;
        e.firstFlaggedAt ??= nowIso;
        delete e.sinceCleared;
        delete e.growingSinceMs;
      }
    }
    if (e.sinceCleared !== undefined && e.sinceCleared >= opts.rememberProfiles) {
      e.firstFlaggedAt = null;
      delete e.sinceCleared;
    }
    if (e.flagged || e.positive > 0 || e.growingSinceMs !== undefined || e.firstFlaggedAt !== null) entries[key] = e;
  }
  const at = Date.parse(nowIso);
  return { latestProfileMs, advancedAtMs: Number.isFinite(at) ? at : prev.advancedAtMs, entries };
}

/**
 * Whether a key with enough rising steps may be flagged at step `s`: it
 * would reach the heap limit before the wait is over; or its growth is
 * sustained over its longer history (Step.sustained) and either has lasted
 * minGrowthMs or was flagged within rememberProfiles (it proved itself then).
 */
function grownEnough(e: AlertEntry, s: Step, opts: AlertOptions): boolean {
  if (isUrgent(s, opts)) return true;
  if (s.sustained === false) return false;
  if (e.sinceCleared !== undefined) return true;
  return e.growingSinceMs !== undefined && s.atMs - e.growingSinceMs >= opts.minGrowthMs;
}

/** Whether a step's growth would take its process to the heap limit before the minimum growth time could be waited out. */
export function isUrgent(s: Step, opts: AlertOptions = DEFAULT_ALERT): boolean {
  return s.timeToLimitMs !== null && s.timeToLimitMs < URGENT_SHARE * opts.minGrowthMs;
}

/** Whether an entry is pending: rising, or rising not long ago, but not (yet) flagged. */
export function isPending(e: AlertEntry): boolean {
  return !e.flagged && (e.positive > 0 || e.growingSinceMs !== undefined);
}
