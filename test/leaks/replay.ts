/**
 * Replays a synthetic site series through the rule and the alert one
 * profile at a time, as the collector does for a site whose every profile is
 * post-GC (precise mode with GC assist, detect.ts decideSite): each profile
 * is one alert step, taken `intervalMs` after the previous one, whose growth
 * is measured from the first profile of the window the rule judged.
 */
import { advanceAlerts, DEFAULT_ALERT, emptyAlertState, type AlertOptions } from '../../collector/src/leaks/alert';
import { trendOf } from '../../collector/src/leaks/detect';
import { decimate, DEFAULT_RULE, decideSeries, sustainedOverHistory, type RuleOptions } from '../../collector/src/leaks/rule';

/** The history a rising site is judged over besides its window: two hours, the window at the default 60 s interval. */
const HISTORY_MS = 2 * 3600_000;

export interface Replay {
  /** Profile (1-based) at which the key was first flagged, or null. */
  flaggedAt: number | null;
  /** Profiles during which it was flagged. */
  flaggedProfiles: number;
  /** Times it was cleared after a flag. */
  clears: number;
  /** Profile (1-based) of the first rising verdict, or null. */
  firstRising: number | null;
}

export function replay(
  series: readonly number[],
  intervalMs: number,
  o: { rule?: RuleOptions; alert?: AlertOptions; untilFlagged?: boolean; historyProfiles?: number } = {},
): Replay {
  const rule = o.rule ?? DEFAULT_RULE;
  const alert = o.alert ?? DEFAULT_ALERT;
  let state = emptyAlertState();
  const r: Replay = { flaggedAt: null, flaggedProfiles: 0, clears: 0, firstRising: null };
  for (let n = 1; n <= series.length; n++) {
    const v = decideSeries(series.slice(Math.max(0, n - rule.maxProfiles), n), rule);
    if (v.rising) r.firstRising ??= n;
    const history = o.historyProfiles ?? Math.ceil(HISTORY_MS / intervalMs);
    let sustained: boolean | undefined;
    if (v.rising) {
      const h = series.slice(Math.max(0, n - history), n);
      sustained = sustainedOverHistory(decimate(h.length).map((i) => h[i]!), rule);
    }
    const step = { trend: trendOf(v), atMs: (n - 1) * intervalMs, sinceMs: (n - v.profiles) * intervalMs, timeToLimitMs: null, sustained };
    const was = state.entries['k']?.flagged ?? false;
    state = advanceAlerts(state, new Map([['k', [step]]]), n, new Date(n * intervalMs).toISOString(), alert);
    const now = state.entries['k']?.flagged ?? false;
    if (now) {
      r.flaggedAt ??= n;
      r.flaggedProfiles++;
      if (o.untilFlagged) return r;
    }
    if (was && !now) r.clears++;
  }
  return r;
}
