/**
 * Leak detection: which allocation sites' retained size keeps rising.
 *
 * Exports (the HTTP route and the CLI use only these):
 *
 *   evaluateLeaks(store: TenantStore, service: string, opts?: Partial<EvaluateOptions>): Promise<LeakReport>
 *     Reads the last `rule.maxProfiles` profiles of each live instance, decides,
 *     stores the report (with its alert state) in `findings` unless
 *     `persist: false`, returns it.
 *   latestLeakReport(store: TenantStore, service: string): Promise<LeakReport | null>
 *     The newest stored report, as any collector instance wrote it; null if none.
 *   new LeakMonitor(store: ProfileStore, opts?: LeakMonitorOptions)
 *     .start(): void            evaluates every active service of every tenant each
 *                               `periodMs` (unref'd timer), while it holds the lease
 *     .stop(): Promise<void>    stops, waits for a running pass, gives the lease up
 *     .evaluateAll(): Promise<void>  one pass now; errors are logged, never thrown
 *   formatLeakTable(report: LeakReport): string   the table `heapwatch leaks` prints
 *   leakEvidence(store: TenantStore, report: LeakReport): Promise<LeakEvidence>
 *     The series behind the report's flagged sites and each instance's heap floor (evidence.ts).
 *
 * Only the collector holding the evaluator lease (lease.ts) stores reports:
 * the alert state in them is advanced by one writer. The API's
 * `evaluate=true` elsewhere evaluates without storing (collector.ts).
 *
 * The decision rule is documented in rule.ts (per series), detect.ts (across
 * instances) and alert.ts (consecutive evaluations).
 */
import { advanceAlerts, DEFAULT_ALERT, emptyAlertState, isUrgent, type AlertOptions, type AlertState, type Step } from './alert';
import { transitions, type LeakEvent } from './transitions';
import { DEFAULT_DETECT, detectInSlices, historyWindow, instanceSeries, needsLongerWindow, siteValues, sustainedOver, type DetectOptions } from './detect';
import { analyzeJobs, DEFAULT_JOBS, type JobsOptions, type SiteSeries } from './jobs';
import type { HolderCaptureRow, ProfileStore, TenantService, TenantStore } from '../store/store';
import type { LeaseKeeper } from './lease';
import { DAY_MS, HOUR_MS, SECOND_MS } from '../units';
import { readEvidence, type LeakEvidence } from './evidence';
import { processHeldBy, siteHeldBy } from './held-by';
import type { HoldersReport, LeakReport, LeakSite, ProcessFinding } from './report';
import { siteContext, type Frame } from '../model/site';

export { bytes as formatBytes, duration as formatDuration, formatLeakTable } from './report';
export type { LeakEvent } from './transitions';
export { SuspectDirectives, suspicionOf, type Directive } from './suspects';
export type { LeakEvidence } from './evidence';
export type { HolderEntry, HolderSite, HoldersReport, LeakReport, LeakSite, ProcessFinding } from './report';
export type { JobsReport, JobTypeReport } from './jobs';
export { DEFAULT_RULE, decideSeries, type RuleOptions, type SeriesVerdict } from './rule';
export { DEFAULT_ALERT, type AlertOptions } from './alert';

export interface EvaluateOptions {
  detect: DetectOptions;
  alert: AlertOptions;
  /** Memory per completed job (jobs.ts). */
  jobs: JobsOptions;
  /** Ignore instances whose newest profile is older than this behind the service's newest. */
  lookbackMs: number;
  /** Clock, for tests. */
  now: () => number;
  /** Store the report and its advanced alert state (only the lease holder does). */
  persist: boolean;
  /** Called with the keys that became flagged or cleared, once the report is stored (never when not persisted). */
  onEvents?: (events: LeakEvent[]) => void;
}

export const DEFAULT_EVALUATE: EvaluateOptions = {
  detect: DEFAULT_DETECT,
  alert: DEFAULT_ALERT,
  jobs: DEFAULT_JOBS,
  lookbackMs: 7 * DAY_MS,
  now: Date.now,
  persist: true,
};

/** What `findings.report` holds: the public report plus the alert state. */
interface StoredReport extends LeakReport {
  alertState?: AlertState;
  /** Site ids suspected but not positive (SiteDecision.suspect), at most MAX_STORED_SUSPECTS; read by suspects.ts. */
  suspects?: string[];
  /** Process gauges ('heap:<instance>', 'external:<instance>') suspected but not positive (ProcessDecision.suspect), as bounded; read by suspects.ts. */
  processSuspects?: string[];
}

/** A holder capture older than this is not reported (the holders may have changed since). */
const HOLDER_LOOKBACK_MS = DAY_MS;

function holdersReport(c: HolderCaptureRow | null): HoldersReport | null {
  if (!c) return null;
  return {
    instance: c.instance,
    capturedAt: new Date(c.takenAtMs).toISOString(),
    skipped: c.skipped || null,
    heapUsedBytes: c.heapUsedBytes,
    maxHeapBytes: c.maxHeapBytes,
    pauseMs: c.pauseMs,
    backingStores: c.leaves,
    offHeapBytes: c.offHeapBytes,
    unreachable: c.unreachable,
    holders: c.holders,
  };
}

/** Suspects kept in a stored report: enough to say why precise mode is on, bounded. */
const MAX_STORED_SUSPECTS = 20;

function publicReport(r: StoredReport): LeakReport {
  // Reports stored before `attribution` existed were all made with inlining on or unknown.
  // Reports stored before on-heap holders existed have no `heldBy`.
  const leaks = r.leaks.map((l) => ({ ...l, attribution: l.attribution ?? 'imprecise', heldBy: l.heldBy ?? null }));
  // Reports stored before job counters existed have none.
  // Reports stored before holder captures existed have none.
  return { service: r.service, evaluatedAt: r.evaluatedAt, leaks, process: r.process, jobs: r.jobs ?? null, holders: r.holders ?? null };
}

async function previousState(store: TenantStore, service: string): Promise<AlertState> {
  const raw = await store.latestFinding(service);
  if (!raw) return emptyAlertState();
  try {
    const parsed = JSON.parse(raw) as StoredReport;
    return parsed.alertState ?? emptyAlertState();
  } catch {
    return emptyAlertState(); // a corrupt row must not stop detection
  }
}

function frameText(f: Frame): string {
  return `${f.function || '(anonymous)'} (${f.file}:${f.line})`;
}

export async function evaluateLeaks(
  store: TenantStore,
  service: string,
  opts: Partial<EvaluateOptions> = {},
): Promise<LeakReport> {
  const o: EvaluateOptions = { ...DEFAULT_EVALUATE, ...opts };
  const nowMs = o.now();
  const evaluatedAt = new Date(nowMs).toISOString();
  const prev = await previousState(store, service);
  let profiles = await store.profilePoints(service, o.detect.rule.maxProfiles, o.lookbackMs);
  // Series without GC information are judged on a longer window (detect.ts,
  // ruleWithoutGc), and only once it is full: read as many more as are
  // replayed, so that each replayed profile has its full window.
  if (needsLongerWindow(profiles, o.detect)) {
    profiles = await store.profilePoints(service, o.detect.ruleWithoutGc.maxProfiles + o.detect.maxReplayProfiles, o.lookbackMs);
  }
  const points = await store.sitePoints(service, profiles);
  // Silence ages every instance (detect.ts), on the collector's clock only.
  const newest = profiles.reduce((m, p) => Math.max(m, p.timeMs), 0);
  const silentMs = newest > prev.latestProfileMs || prev.advancedAtMs === undefined ? 0 : Math.max(0, nowMs - prev.advancedAtMs);
  const d = await detectInSlices(profiles, points, o.detect, prev.latestProfileMs, silentMs);

  const steps = new Map<string, Step[]>();
  const rises = (x: readonly Step[]): boolean => x.some((t) => t.trend === 'rising');
  for (const s of d.sites.values()) if (rises(s.steps) || prev.entries[`site:${s.siteId}`]) steps.set(`site:${s.siteId}`, s.steps);
  for (const p of d.process) if (rises(p.steps) || prev.entries[p.key]) steps.set(p.key, p.steps);
  await judgeHistory(store, service, prev, steps, o);
  const state = advanceAlerts(prev, steps, d.latestProfileMs, evaluatedAt, o.alert);
  const flagged = (key: string): string | null => {
    const e = state.entries[key];
    return e?.flagged ? e.firstFlaggedAt ?? evaluatedAt : null;
  };
  /** When the current flag of `key` began: kept from the last evaluation while it stays flagged. */
  const flaggedAt = (key: string): string => {
    const before = prev.entries[key];
    return (before?.flagged && before.subject?.flaggedAt) || evaluatedAt;
  };

  const process: ProcessFinding[] = d.process
    .filter((p) => flagged(p.key))
    .map((p) => {
      const finding: ProcessFinding = {
        kind: p.kind,
        instance: p.instance,
        growthBytesPerHour: Math.round(p.growthBytesPerHour),
        timeToLimitSeconds: p.timeToLimitSeconds === null ? null : Math.round(p.timeToLimitSeconds),
      };
      state.entries[p.key]!.subject = { ...finding, flaggedAt: flaggedAt(p.key) };
      return finding;
    })
    .sort((a, b) => b.growthBytesPerHour - a.growthBytesPerHour);
  // A site's time to the heap limit is its process's: the soonest of the service's heap findings.
  const limits = process.filter((p) => p.kind === 'heap' && p.timeToLimitSeconds !== null).map((p) => p.timeToLimitSeconds!);
  const timeToLimitSeconds = limits.length ? Math.min(...limits) : null;

  // Holders: the newest capture, and who of it holds each finding (held-by.ts).
  const holders = holdersReport(await store.latestHolderCapture(service, nowMs, HOLDER_LOOKBACK_MS));
  const captured = holders?.holders ?? [];

  const flaggedSites = [...d.sites.values()].filter((s) => flagged(`site:${s.siteId}`));
  const details = new Map((await store.siteDetails(service, flaggedSites.map((s) => s.siteId), profiles)).map((x) => [x.siteId, x]));
  const leaks: LeakSite[] = flaggedSites.map((s) => {
    const x = details.get(s.siteId);
    const loc = x?.site ?? { function: '', file: '', line: 0 };
    const ctx = siteContext(x?.stack ?? [], loc);
    const stack = x ? x.stack.map(frameText) : [];
    const site: LeakSite = {
      function: loc.function,
      file: loc.file,
      line: loc.line,
      siteKind: ctx.siteKind,
      allocatedIn: ctx.allocatedIn ? frameText(ctx.allocatedIn) : null,
      stack,
      growthBytesPerHour: Math.round(s.growthBytesPerHour),
      growthBytesPerInterval: Math.round(s.growthBytesPerInterval),
      retainedBytes: Math.round(s.retainedBytes),
      instances: s.instancesRising,
      intervals: s.intervals,
      confidence: Math.round(s.confidence * 1000) / 1000,
      firstFlaggedAt: flagged(`site:${s.siteId}`)!,
      attribution: s.attribution,
      heldBy: siteHeldBy({ stack, siteKind: ctx.siteKind, retainedBytes: s.retainedBytes }, captured),
    };
    state.entries[`site:${s.siteId}`]!.subject = {
      kind: 'site',
      function: site.function,
      file: site.file,
      line: site.line,
      growthBytesPerHour: site.growthBytesPerHour,
      timeToLimitSeconds,
      flaggedAt: flaggedAt(`site:${s.siteId}`),
    };
    return site;
  });
  leaks.sort((a, b) => b.growthBytesPerHour - a.growthBytesPerHour);

  // Memory per job: the heap's and each flagged site's growth against the jobs finished.
  const series = instanceSeries(profiles, o.detect, prev.latestProfileMs, silentMs);
  const flaggedIds = new Set(flaggedSites.map((s) => s.siteId));
  const values = siteValues(points.filter((p) => flaggedIds.has(p.siteId)), series);
  const siteSeries: SiteSeries[] = flaggedSites.flatMap((s) => {
    const loc = details.get(s.siteId)?.site;
    const perInstance = values.get(s.siteId);
    return loc && perInstance ? [{ function: loc.function, file: loc.file, line: loc.line, perInstance }] : [];
  });
  const jobs = analyzeJobs(series, siteSeries, o.jobs);

  for (const p of process) p.site = processHeldBy(p.kind, captured);
  const report: LeakReport = { service, evaluatedAt, leaks, process, jobs, holders };
  const suspects = [...d.sites.values()].filter((s) => s.suspect).map((s) => s.siteId).slice(0, MAX_STORED_SUSPECTS);
  const processSuspects = d.process.filter((p) => p.suspect).map((p) => p.key).slice(0, MAX_STORED_SUSPECTS);
  const stored: StoredReport = { ...report, alertState: state, suspects, processSuspects };
  if (o.persist) {
    await store.writeFinding(service, nowMs, JSON.stringify(stored));
    if (o.onEvents) {
      const events = transitions(store.tenant, service, prev, state, evaluatedAt);
      if (events.length) o.onEvents(events);
    }
  }
  return report;
}

/**
 * Keys that this evaluation could flag (enough rising steps, growth old
 * enough, not flagged yet) are judged over their longer history too
 * (detect.ts sustainedOver): the rising steps of each get `sustained`. One
 * more read of the profiles (at most maxHistoryProfiles per instance) and,
 * for sites, of at most HISTORY_POINTS of them per instance, and only when
 * some key is about to be flagged.
 */
async function judgeHistory(store: TenantStore, service: string, prev: AlertState, steps: Map<string, Step[]>, o: EvaluateOptions): Promise<void> {
  if (!(o.detect.historyMs > 0)) return;
  const ready = [...steps].filter(([key, s]) => {
    const e = prev.entries[key];
    if (e?.flagged) return false;
    const rising = s.filter((x) => x.trend === 'rising');
    if (rising.length === 0 || (e?.positive ?? 0) + rising.length < o.alert.flagAfter) return false;
    if (rising.every((x) => isUrgent(x, o.alert))) return false;
    const since = Math.min(e?.growingSinceMs ?? Infinity, ...rising.map((x) => x.sinceMs));
    return e?.sinceCleared !== undefined || rising[rising.length - 1]!.atMs - since >= o.alert.minGrowthMs;
  });
  if (ready.length === 0) return;
  const window = historyWindow(await store.profilePoints(service, o.detect.maxHistoryProfiles, o.detect.historyMs), o.detect);
  if (window.length === 0) return;
  const points = ready.some(([key]) => key.startsWith('site:')) ? await store.sitePoints(service, window) : [];
  const sustained = sustainedOver(ready.map(([key]) => key), window, points, o.detect);
  for (const [key, s] of ready) {
    const v = sustained.get(key);
    if (v !== undefined) for (const x of s) if (x.trend === 'rising') x.sustained = v;
  }
}

/** The series behind `report`'s flagged sites and each instance's heap floor, over the window an evaluation with `opts` reads (evidence.ts). */
export function leakEvidence(store: TenantStore, report: LeakReport, opts: Partial<EvaluateOptions> = {}): Promise<LeakEvidence> {
  const o: EvaluateOptions = { ...DEFAULT_EVALUATE, ...opts };
  return readEvidence(store, report, o.detect, o.lookbackMs);
}

export async function latestLeakReport(store: TenantStore, service: string): Promise<LeakReport | null> {
  const raw = await store.latestFinding(service);
  if (!raw) return null;
  return publicReport(JSON.parse(raw) as StoredReport);
}

export interface LeakMonitorOptions extends Partial<EvaluateOptions> {
  /** Time between evaluation passes. Default 30 s. */
  periodMs?: number;
  /** Services evaluated per pass, at most (the bound on one pass's work). Default 1000. */
  maxServices?: number;
  /** Only services with a profile this recent are evaluated. Default 1 h. */
  activeWithinMs?: number;
  log?: { error(msg: string): void; info?(msg: string): void; debug?(msg: string): void };
  /** When set, a pass runs only while this keeper holds the lease (one evaluator among many collectors). */
  lease?: LeaseKeeper;
  /** Runs each evaluation (the API's evaluation limiter, so passes and requests share one cap). */
  run?: <T>(task: () => Promise<T>) => Promise<T>;
}

/**
 * The share of the collector's time the periodic passes may take. A pass
 * over a large fleet is long: 2,000 instances of 5,000-stack profiles took
 * about 5 s of the main thread every 30 s in bench/ingest-load.mjs, time
 * ingest then did not have; at 500 instances a quarter of that.
 */
const EVALUATION_SHARE = 0.15;
/** The wait between passes is at most this many periods (the lease lasts three). */
const MAX_PERIOD_STRETCH = 2;

/**
 * Evaluates every active service periodically. One pass at a time; the
 * timer is unref'd so the monitor never keeps the collector alive; a failing
 * service is logged and the others still run.
 */
export class LeakMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private readonly periodMs: number;

  constructor(
    private readonly store: ProfileStore,
    private readonly opts: LeakMonitorOptions = {},
  ) {
    this.periodMs = opts.periodMs ?? 30 * SECOND_MS;
    if (!(this.periodMs > 0)) throw new Error(`LeakMonitor: periodMs must be > 0, got ${opts.periodMs}`);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.arm();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.opts.lease?.release().catch(() => {});
  }

  /** Whether this monitor held the evaluator lease at its last try (always, without a lease). */
  get holdsLease(): boolean {
    return this.opts.lease ? this.opts.lease.held : true;
  }

  /** Holds the lease if no other collector does (an evaluation on request, before the first pass); never throws. */
  async holdLease(): Promise<boolean> {
    const lease = this.opts.lease;
    if (!lease || lease.held) return true;
    return lease.tryHold().catch(() => false);
  }

  /**
   * Passes run, passes skipped because another collector holds the lease,
   * and the wall time of the last pass run and the wait after it (pacing).
   */
  readonly counters = { passes: 0, skipped: 0, evaluations: 0, lastPassMs: 0, waitMs: 0 };

  async evaluateAll(): Promise<void> {
    const log = this.opts.log ?? { error: (m: string) => process.stderr.write(m + '\n') };
    const lease = this.opts.lease;
    if (lease) {
      const had = lease.held;
      try {
        if (!(await lease.tryHold())) {
          if (had) log.info?.(`leaks: lost the evaluator lease; another collector evaluates`);
          this.counters.skipped++;
          return;
        }
      } catch (err) {
        log.error(`leaks: the evaluator lease could not be read or renewed: ${(err as Error).message}`);
        return;
      }
      if (!had) log.info?.(`leaks: holding the evaluator lease as ${lease.holder}`);
    }
    this.counters.passes++;
    const now = (this.opts.now ?? Date.now)();
    let services: TenantService[];
    try {
      services = await this.store.activeServices(now - (this.opts.activeWithinMs ?? HOUR_MS), this.opts.maxServices ?? 1000);
    } catch (err) {
      log.error(`leaks: listing services failed: ${(err as Error).message}`);
      return;
    }
    const run = this.opts.run ?? (<T>(task: () => Promise<T>) => task());
    const startedAt = performance.now();
    for (const { tenant, service } of services) {
      try {
        const r = await run(() => evaluateLeaks(this.store.forTenant(tenant), service, { ...this.opts, persist: true }));
        this.counters.evaluations++;
        log.debug?.(`leaks: ${tenant}/${service}: ${r.leaks.length} site(s) flagged`);
      } catch (err) {
        log.error(`leaks: evaluating ${JSON.stringify(service)} of tenant ${JSON.stringify(tenant)} failed: ${(err as Error).message}`);
      }
    }
    this.counters.lastPassMs = Math.round(performance.now() - startedAt);
  }

  /**
   * The wait before the next pass: the period, or longer when the last
   * pass was long, so that passes take at most EVALUATION_SHARE of the
   * collector's time; never more than MAX_PERIOD_STRETCH periods, so the
   * lease (renewed at each pass, 3 periods long) is kept.
   */
  private nextWaitMs(): number {
    const paced = (this.counters.lastPassMs * (1 - EVALUATION_SHARE)) / EVALUATION_SHARE;
    return Math.min(MAX_PERIOD_STRETCH * this.periodMs, Math.max(this.periodMs, paced));
  }

  private arm(): void {
    if (this.stopped) return;
    this.counters.waitMs = Math.round(this.nextWaitMs());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.evaluateAll()
        .catch(() => {})
        .finally(() => {
          this.running = undefined;
          this.arm();
        });
    }, this.counters.waitMs);
    this.timer.unref();
  }
}
