/**
 * Leak detection: which allocation sites' retained size keeps rising.
 *
 * Exports (the HTTP route and the CLI use only these):
 *
 *   evaluateLeaks(client: ClickHouseClient, service: string, opts?: Partial<EvaluateOptions>): Promise<LeakReport>
 *     Reads the last `rule.maxProfiles` profiles of each live instance, decides,
 *     stores the report (with its alert state) in `findings`, returns it.
 *   latestLeakReport(client: ClickHouseClient, service: string): Promise<LeakReport | null>
 *     The newest stored report, as any collector instance wrote it; null if none.
 *   new LeakMonitor(client: ClickHouseClient, opts?: LeakMonitorOptions)
 *     .start(): void            evaluates every active service each `periodMs` (unref'd timer)
 *     .stop(): Promise<void>    stops and waits for a running pass
 *     .evaluateAll(): Promise<void>  one pass now; errors are logged, never thrown
 *   formatLeakTable(report: LeakReport): string   the table `heapwatch leaks` prints
 *
 * Suggested route: GET /api/v1/leaks?service=S[&evaluate=true] ->
 *   evaluate ? evaluateLeaks(client, S) : (await latestLeakReport(client, S)) ?? evaluateLeaks(client, S)
 *
 * The decision rule is documented in rule.ts (per series), detect.ts (across
 * instances) and alert.ts (consecutive evaluations).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { advanceAlerts, DEFAULT_ALERT, emptyAlertState, type AlertOptions, type AlertState } from './alert';
import { DEFAULT_DETECT, detect, type DetectOptions } from './detect';
import { listServices, readLatestFinding, readProfiles, readSiteDetails, readSitePoints, writeFinding } from './queries';
import type { LeakReport, LeakSite, ProcessFinding } from './report';

export { formatLeakTable } from './report';
export { SuspectDirectives, suspicionOf, type Directive } from './suspects';
export type { LeakReport, LeakSite, ProcessFinding } from './report';
export { DEFAULT_RULE, decideSeries, type RuleOptions, type SeriesVerdict } from './rule';
export { siteIndex, type Frame } from './site';

export interface EvaluateOptions {
  detect: DetectOptions;
  alert: AlertOptions;
  /** Ignore instances whose newest profile is older than this behind the service's newest. */
  lookbackMs: number;
  /** Clock, for tests. */
  now: () => number;
}

export const DEFAULT_EVALUATE: EvaluateOptions = {
  detect: DEFAULT_DETECT,
  alert: DEFAULT_ALERT,
  lookbackMs: 7 * 24 * 3600 * 1000,
  now: Date.now,
};

/** What `findings.report` holds: the public report plus the alert state. */
interface StoredReport extends LeakReport {
  alertState?: AlertState;
}

function publicReport(r: StoredReport): LeakReport {
  // Reports stored before `attribution` existed were all made with inlining on or unknown.
  const leaks = r.leaks.map((l) => ({ ...l, attribution: l.attribution ?? 'imprecise' }));
  return { service: r.service, evaluatedAt: r.evaluatedAt, leaks, process: r.process };
}

async function previousState(client: ClickHouseClient, service: string): Promise<AlertState> {
  const raw = await readLatestFinding(client, service);
  if (!raw) return emptyAlertState();
  try {
    const parsed = JSON.parse(raw) as StoredReport;
    return parsed.alertState ?? emptyAlertState();
  } catch {
    return emptyAlertState(); // a corrupt row must not stop detection
  }
}

function frameText(fn: string, file: string, line: number): string {
  return `${fn || '(anonymous)'} (${file}:${line})`;
}

export async function evaluateLeaks(
  client: ClickHouseClient,
  service: string,
  opts: Partial<EvaluateOptions> = {},
): Promise<LeakReport> {
  const o: EvaluateOptions = { ...DEFAULT_EVALUATE, ...opts };
  const nowMs = o.now();
  const evaluatedAt = new Date(nowMs).toISOString();
  const prev = await previousState(client, service);
  const profiles = await readProfiles(client, service, o.detect.rule.maxProfiles, o.lookbackMs);
  const points = await readSitePoints(client, service, profiles);
  const d = detect(profiles, points, o.detect, prev.latestProfileMs);

  const steps = new Map<string, boolean[]>();
  for (const s of d.sites.values()) if (s.steps.some(Boolean) || prev.entries[`site:${s.siteId}`]) steps.set(`site:${s.siteId}`, s.steps);
  for (const p of d.process) if (p.steps.some(Boolean) || prev.entries[p.key]) steps.set(p.key, p.steps);
  const state = advanceAlerts(prev, steps, d.latestProfileMs, evaluatedAt, o.alert);
  const flagged = (key: string): string | null => {
    const e = state.entries[key];
    return e?.flagged ? e.firstFlaggedAt ?? evaluatedAt : null;
  };

  const flaggedSites = [...d.sites.values()].filter((s) => flagged(`site:${s.siteId}`));
  const details = new Map(
    (await readSiteDetails(client, service, flaggedSites.map((s) => s.siteId), profiles)).map(
      (x) => [x.siteId, x],
    ),
  );
  const leaks: LeakSite[] = flaggedSites.map((s) => {
    const x = details.get(s.siteId);
    return {
      function: x?.function ?? '',
      file: x?.file ?? '',
      line: x?.line ?? 0,
      stack: x ? x.functions.map((fn, i) => frameText(fn, x.files[i] ?? '', x.lines[i] ?? 0)) : [],
      growthBytesPerHour: Math.round(s.growthBytesPerHour),
      growthBytesPerInterval: Math.round(s.growthBytesPerInterval),
      retainedBytes: Math.round(s.retainedBytes),
      instances: s.instancesRising,
      intervals: s.intervals,
      confidence: Math.round(s.confidence * 1000) / 1000,
      firstFlaggedAt: flagged(`site:${s.siteId}`)!,
      attribution: s.attribution,
    };
  });
  leaks.sort((a, b) => b.growthBytesPerHour - a.growthBytesPerHour);
  const process: ProcessFinding[] = d.process
    .filter((p) => flagged(p.key))
    .map((p) => ({
      kind: p.kind,
      instance: p.instance,
      growthBytesPerHour: Math.round(p.growthBytesPerHour),
      timeToLimitSeconds: p.timeToLimitSeconds === null ? null : Math.round(p.timeToLimitSeconds),
    }))
    .sort((a, b) => b.growthBytesPerHour - a.growthBytesPerHour);

  const report: LeakReport = { service, evaluatedAt, leaks, process };
  const stored: StoredReport = { ...report, alertState: state };
  await writeFinding(client, service, nowMs, JSON.stringify(stored));
  return report;
}

/** The newest stored report as JSON, alert state included (what suspects.ts reads); null if none. */
export function latestStoredReport(client: ClickHouseClient, service: string): Promise<string | null> {
  return readLatestFinding(client, service);
}

export async function latestLeakReport(client: ClickHouseClient, service: string): Promise<LeakReport | null> {
  const raw = await readLatestFinding(client, service);
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
  log?: { error(msg: string): void; debug?(msg: string): void };
}

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
    private readonly client: ClickHouseClient,
    private readonly opts: LeakMonitorOptions = {},
  ) {
    this.periodMs = opts.periodMs ?? 30_000;
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
  }

  async evaluateAll(): Promise<void> {
    const log = this.opts.log ?? { error: (m: string) => process.stderr.write(m + '\n') };
    const now = (this.opts.now ?? Date.now)();
    let services: string[];
    try {
      services = await listServices(this.client, now - (this.opts.activeWithinMs ?? 3_600_000), this.opts.maxServices ?? 1000);
    } catch (err) {
      log.error(`leaks: listing services failed: ${(err as Error).message}`);
      return;
    }
    for (const service of services) {
      try {
        const r = await evaluateLeaks(this.client, service, this.opts);
        log.debug?.(`leaks: ${service}: ${r.leaks.length} site(s) flagged`);
      } catch (err) {
        log.error(`leaks: evaluating ${JSON.stringify(service)} failed: ${(err as Error).message}`);
      }
    }
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.evaluateAll()
        .catch(() => {})
        .finally(() => {
          this.running = undefined;
          this.arm();
        });
    }, this.periodMs);
    this.timer.unref();
  }
}
