/**
 * The one wiring point: store <- ingester <- gRPC server, and the HTTP API
 * over the read side. `startCollector` is what `heapwatch serve` runs and
 * what the tests start on port 0.
 */
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Admission, DEFAULT_ADMISSION, type AdmissionOptions } from './ingest/admission';
import { prepareDataDir } from './data-dir';
import { GrpcIngestServer } from './ingest/grpc-server';
import { Ingester, instanceKey, type IngesterOptions } from './ingest/ingester';
import { flaggedMetrics } from './alerts/flagged-metrics';
import { WebhookNotifier } from './alerts/webhook';
import { HttpApi } from './http/server';
import { postRoutes } from './http/posts';
import { Access } from './auth/access';
import type { ThrottleOptions } from './auth/throttle';
import { Tokens, type TokenSpec } from './auth/tokens';
import { Readiness, type ReadinessOptions } from './health/readiness';
import { DEFAULT_ALERT, evaluateLeaks, latestLeakReport, leakEvidence, LeakMonitor, SuspectDirectives, type LeakEvent, type LeakReport } from './leaks';
import { LeaseKeeper, newHolderId } from './leaks/lease';
import { HolderRequests } from './leaks/holder-requests';
import { Coalescer, Limiter, type LimiterOptions } from './query/limiter';
import { createLogger, type Logger, type LogLevel } from './log';
import { ClickHouseStore, type StoreTarget } from './store/clickhouse';
import type { ProfileStore, TenantStore } from './store/store';
import { MINUTE_MS, SECOND_MS } from './units';

export interface CollectorOptions {
  host: string;
  grpcPort: number;
  httpPort: number;
  /** Embedded store directory (ignored when clickhouseUrl is set). */
  dataDir: string;
  clickhouseUrl?: string;
  /** ClickHouse cluster name: Replicated tables + Distributed, DDL ON CLUSTER. */
  cluster?: string;
  retentionDays: number;
  /** Bearer tokens; with none, every endpoint is open (docs/security.md). */
  tokens: TokenSpec[];
  /** Certificate and key (PEM) to serve both ports over TLS. */
  tls?: { cert: Buffer; key: Buffer };
  /** `ingest`: no background leak evaluation; `evaluate`: no ingest; `all`: both (deploy/README.md). */
  role: Role;
  /** API reads (and, apart, leak evaluations) at once, waiting at most, and their deadline. */
  queryLimits: { reads: LimiterOptions; evaluations: LimiterOptions };
  /** Failed authentications per address and window before it is refused for the window. */
  throttle?: Partial<ThrottleOptions>;
  readiness?: Partial<ReadinessOptions>;
  /** The evaluator lease's time to live; by default three evaluation periods, at least a minute. */
  leaseTtlMs?: number;
  logLevel: LogLevel;
  maxMessageBytes: number;
  /** How often every active service is evaluated for leaks; 0 evaluates only on request. */
  leakEvaluationMs: number;
  /** How long a service's suspicion (the directive its agents get) is reused before its stored report is read again. */
  suspectTtlMs?: number;
  /** No holder capture is asked of a service sooner than this after its last (leaks/holder-requests.ts). */
  holderRequestCooldownMs?: number;
  /** How long a leak's growth must have lasted before it is flagged (leaks/alert.ts minGrowthMs); default DEFAULT_ALERT's. */
  leakMinGrowthMs?: number;
  ingest?: IngesterOptions;
  /** Ingest requests (and their bytes) worked on at once; more get RESOURCE_EXHAUSTED. */
  admission?: Partial<AdmissionOptions>;
  /** URLs that get a JSON POST when a leak is flagged or cleared. */
  alertWebhooks?: string[];
  /** The HTTP API's address as alert receivers reach it, for links (default http://host:httpPort). */
  publicUrl?: string;
}

const DAY_MS = 86_400_000;
/** How often hours that have ended are summed into the hourly rollup (store/rollup.ts). */
const ROLLUP_EVERY_MS = 5 * MINUTE_MS;
/** How far back a pass after the first looks for hours to sum: a profile later than that is read raw. */
const ROLLUP_LOOKBACK_MS = 6 * 60 * MINUTE_MS;

export const DEFAULT_OPTIONS: CollectorOptions = {
  host: '127.0.0.1',
  grpcPort: 7801,
  httpPort: 7800,
  dataDir: './data',
  retentionDays: 30,
  tokens: [],
  role: 'all',
  queryLimits: {
    reads: { concurrency: 4, maxQueued: 256, timeoutMs: 30 * SECOND_MS },
    evaluations: { concurrency: 1, maxQueued: 64, timeoutMs: 60 * SECOND_MS },
  },
  logLevel: 'info',
  maxMessageBytes: 32 << 20,
  leakEvaluationMs: 30 * SECOND_MS,
};

export type Role = 'ingest' | 'evaluate' | 'all';
export const ROLES: readonly Role[] = ['ingest', 'evaluate', 'all'];

export interface Collector {
  grpcPort: number;
  httpPort: number;
  store: ProfileStore;
  ingester: Ingester;
  monitor: LeakMonitor | undefined;
  /** Leak evaluations run, background and on request. */
  evaluations(): number;
  /** Whether the web UI's files were found (collector/ui/dist): served at / on the HTTP port. */
  webUi: boolean;
  log: Logger;
  close(): Promise<void>;
}

export async function startCollector(options: Partial<CollectorOptions> = {}): Promise<Collector> {
  const opts: CollectorOptions = { ...DEFAULT_OPTIONS, ...options };
  const log = createLogger(opts.logLevel);
  const target: StoreTarget = opts.clickhouseUrl
    ? { kind: 'server', url: opts.clickhouseUrl }
    : { kind: 'embedded', dataDir: path.resolve(opts.dataDir) };
  if (target.kind === 'embedded') prepareDataDir(target.dataDir);
  const store = await ClickHouseStore.open({ target, cluster: opts.cluster, retentionDays: opts.retentionDays });
  // The hourly rollup that long-range merges read: the hours just ended,
  // every few minutes; at start, also every hour a store written before the
  // rollup existed holds (store/rollup.ts). Reads are correct without it.
  let closing = false;
  let rolling: Promise<void> = Promise.resolve();
  const rollups = { runs: 0, hours: 0, failures: 0 };
  let wholeStoreRolled = false;
  const rollUp = (): void => {
    rolling = rolling.then(async () => {
      if (closing) return;
      const t0 = Date.now();
      try {
        // The first pass that completes looks at the whole store (an
        // upgrade, hours a restart missed); later ones at the last hours.
        const now = Date.now();
        const { hours } = await store.rollUp(now, () => closing, wholeStoreRolled ? { sinceMs: now - ROLLUP_LOOKBACK_MS } : {});
        wholeStoreRolled = !closing;
        rollups.hours += hours;
        if (hours > 0) log.info(`hourly rollup: summed ${hours} hours of profiles in ${Date.now() - t0} ms`);
      } catch (err) {
        rollups.failures++;
        log.warn(`hourly rollup failed (those hours are read raw until the next try): ${err instanceof Error ? err.message : String(err)}`);
      }
      rollups.runs++;
    });
  };
  // A profile older than the retention would be deleted on arrival: refused instead.
  const maxAgeMs = opts.retentionDays > 0 ? (opts.retentionDays + 1) * DAY_MS : 0;
  const ingester = new Ingester(store, { ...opts.ingest, limits: { maxAgeMs, ...opts.ingest?.limits } });
  const access = new Access(new Tokens(opts.tokens), opts.throttle);
  // Agents of a service under suspicion are asked to run in precise mode;
  // a service is named by its tenant and name (tenants cannot hold \0).
  const suspects = new SuspectDirectives({
    read: (key) => {
      const [tenant = '', service = ''] = key.split('\0');
      return store.forTenant(tenant).latestFinding(service);
    },
    ...(opts.suspectTtlMs !== undefined ? { ttlMs: opts.suspectTtlMs } : {}),
    log,
  });
  // One instance per service with a confirmed finding is asked for a holder capture.
  const holderRequests = new HolderRequests(opts.holderRequestCooldownMs !== undefined ? { cooldownMs: opts.holderRequestCooldownMs } : {});
  // One ingest capacity for every protocol that writes profiles (gRPC, and
  // the HTTP ingest routes through the dispatcher).
  const admission = new Admission({ ...DEFAULT_ADMISSION, ...opts.admission });
  const grpc = new GrpcIngestServer(
    ingester,
    {
      host: opts.host,
      port: opts.grpcPort,
      access,
      maxMessageBytes: opts.maxMessageBytes,
      admission,
      tls: opts.tls,
      ingest: opts.role !== 'evaluate',
      // Declared below; asked only once the server is listening.
      readiness: () => readiness.check(),
      directiveFor: (tenant, req) => {
        const key = `${tenant}\0${req.service}`;
        if (req.holders?.captureId) holderRequests.answered(key, req.holders.captureId);
        const directive = suspects.directiveFor(key);
        const ask = directive && req.instance ? holderRequests.requestFor(key, instanceKey(req.instance), suspects.confirmed(key)) : undefined;
        return ask ? { ...directive, holders: ask } : directive;
      },
    },
    log,
  );
  // How long the event loop was kept from other requests: the figure a bad
  // request would show first (ingest decodes on the event loop).
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  // Made once the HTTP port is known (links point at it); until then nothing evaluates.
  let notifier: WebhookNotifier | undefined;
  // Only evaluations that store their report fire events (one writer of the alert state).
  const onEvents = (events: LeakEvent[]) => notifier?.notify(events);
  const reads = new Limiter('API reads', opts.queryLimits.reads);
  const evaluations = new Limiter('leak evaluations', opts.queryLimits.evaluations);
  const coalesced = new Coalescer<LeakReport | null>();
  let evaluated = 0;
  const alert = { ...DEFAULT_ALERT, ...(opts.leakMinGrowthMs !== undefined ? { minGrowthMs: opts.leakMinGrowthMs } : {}) };
  const monitor =
    opts.leakEvaluationMs > 0 && opts.role !== 'ingest'
      ? new LeakMonitor(store, {
          periodMs: opts.leakEvaluationMs,
          log,
          lease: new LeaseKeeper(store, 'leak-evaluator', newHolderId(), { ttlMs: opts.leaseTtlMs ?? Math.max(3 * opts.leakEvaluationMs, MINUTE_MS) }),
          run: (task) => evaluations.run(task),
          onEvents,
          alert,
        })
      : undefined;
  // Only the lease holder stores reports (their alert state has one writer);
  // any other collector answers evaluate=true with a report it does not
  // store. Concurrent requests for one service share one evaluation.
  const evaluate = (tenantStore: TenantStore, service: string): Promise<LeakReport | null> =>
    coalesced.run(`${tenantStore.tenant}\0${service}`, () =>
      evaluations.run(async () => {
        if (!(await tenantStore.serviceExists(service))) return null;
        const persist = opts.role === 'ingest' ? false : monitor ? await monitor.holdLease() : true;
        evaluated++;
        return evaluateLeaks(tenantStore, service, { persist, onEvents, alert });
      }),
    );
  const readiness = new Readiness(
    {
      ping: () => store.ping(),
      probeWrite: () => store.writeLeaseClaim('readiness-probe', { holder: 'probe', acquiredAtMs: Date.now(), renewedAtMs: Date.now(), expiresAtMs: Date.now() }),
      inserts: ingester.inserts,
      pendingRows: () => ingester.pendingRows,
      maxPendingRows: ingester.maxPendingRows,
    },
    opts.readiness,
  );
  // The lease holder keeps a fresh report in the store, which any
  // collector can serve; without one (or when asked) it is computed now.
  const leaks = async (tenantStore: TenantStore, service: string, now: boolean): Promise<LeakReport | null> => {
    if (!now && opts.leakEvaluationMs > 0) {
      const stored = await reads.run(async () => ((await tenantStore.serviceExists(service)) ? latestLeakReport(tenantStore, service) : undefined));
      if (stored === undefined) return null;
      if (stored) return stored;
    }
    return evaluate(tenantStore, service);
  };
  const http = new HttpApi({
    store,
    log,
    access,
    reads,
    admission,
    readiness,
    tls: opts.tls,
    metrics: () => ({
      ...ingester.metrics(),
      ...admission.metrics(),
      requests_body_stopped_total: grpc.bodiesStopped,
      requests_undecodable_total: grpc.undecodable,
      event_loop_delay_p99_ms: Math.round(loopDelay.percentile(99) / 1e6),
      event_loop_delay_max_ms: Math.round(loopDelay.max / 1e6),
      ...access.metrics(),
      ...reads.metrics('api_reads'),
      ...evaluations.metrics('leak_evaluations'),
      leak_evaluations_total: evaluated + (monitor?.counters.evaluations ?? 0),
      leak_evaluations_coalesced_total: coalesced.shared,
      leak_evaluator_lease_held: monitor?.holdsLease ? 1 : 0,
      leak_evaluation_pass_ms: monitor?.counters.lastPassMs ?? 0,
      leak_evaluation_wait_ms: monitor?.counters.waitMs ?? 0,
      holder_requests_asked_total: holderRequests.counters.asked,
      holder_requests_answered_total: holderRequests.counters.answered,
      holder_requests_timed_out_total: holderRequests.counters.timedOut,
      holder_requests_evicted_total: holderRequests.counters.evicted,
      rollup_runs_total: rollups.runs,
      rollup_hours_total: rollups.hours,
      rollup_failures_total: rollups.failures,
      ...notifier?.metrics(),
    }),
    extraMetrics: (tenant) => flaggedMetrics(store, tenant),
    leaks,
    evidence: async (tenantStore, service) => {
      const report = await leaks(tenantStore, service, false);
      return report === null ? null : reads.run(() => leakEvidence(tenantStore, report));
    },
    // The querier reads as the caller's tenant; ingest writes as it (http/server.ts checks the scope).
    // HTTP ingest shares the gRPC ingest's in-flight bound.
    posts: postRoutes(ingester, opts.maxMessageBytes, log),
  });
  let grpcPort: number;
  let httpPort: number;
  try {
    grpcPort = await grpc.listen();
    httpPort = await http.listen(opts.host, opts.httpPort);
  } catch (err) {
    await grpc.close(0);
    await store.close();
    throw err;
  }
  if (opts.alertWebhooks?.length) {
    notifier = new WebhookNotifier({ urls: opts.alertWebhooks, linkBase: opts.publicUrl ?? `${opts.tls ? 'https' : 'http'}://${opts.host}:${httpPort}` }, log);
  }
  monitor?.start();
  const rollUpTimer = opts.role === 'ingest' ? undefined : setInterval(rollUp, ROLLUP_EVERY_MS);
  rollUpTimer?.unref();
  if (rollUpTimer) rollUp();
  return {
    grpcPort,
    httpPort,
    store,
    ingester,
    monitor,
    webUi: http.webUi,
    evaluations: () => evaluated + (monitor?.counters.evaluations ?? 0),
    log,
    async close() {
      closing = true;
      clearInterval(rollUpTimer);
      loopDelay.disable();
      await monitor?.stop();
      await notifier?.close();
      await grpc.close();
      await http.close();
      await ingester.flush();
      await rolling;
      await store.close();
    },
  };
}
