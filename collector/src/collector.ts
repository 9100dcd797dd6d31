/**
 * The one wiring point: store <- ingester <- gRPC server, and the HTTP API
 * over the read side. `startCollector` is what `heapwatch serve` runs and
 * what the tests start on port 0.
 */
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AdmissionOptions } from './ingest/admission';
import { prepareDataDir } from './data-dir';
import { GrpcIngestServer } from './ingest/grpc-server';
import { Ingester, type IngesterOptions } from './ingest/ingester';
import { flaggedMetrics } from './alerts/flagged-metrics';
import { WebhookNotifier } from './alerts/webhook';
import { connectRoutes } from './http/connect';
import { requireToken } from './http/ingest-auth';
import { pusherService, pyroscopeIngestRoute } from './http/pyroscope-ingest';
import { querierService } from './http/querier-service';
import { HttpApi } from './http/server';
import { evaluateLeaks, latestLeakReport, leakEvidence, LeakMonitor, SuspectDirectives, type LeakEvent } from './leaks';
import { createLogger, type Logger, type LogLevel } from './log';
import { ClickHouseStore, type StoreTarget } from './store/clickhouse';
import type { ProfileStore } from './store/store';
import { SECOND_MS } from './units';

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
  token?: string;
  logLevel: LogLevel;
  maxMessageBytes: number;
  /** How often every active service is evaluated for leaks; 0 evaluates only on request. */
  leakEvaluationMs: number;
  ingest?: IngesterOptions;
  /** Ingest requests (and their bytes) worked on at once; more get RESOURCE_EXHAUSTED. */
  admission?: Partial<AdmissionOptions>;
  /** URLs that get a JSON POST when a leak is flagged or cleared. */
  alertWebhooks?: string[];
  /** The HTTP API's address as alert receivers reach it, for links (default http://host:httpPort). */
  publicUrl?: string;
}

const DAY_MS = 86_400_000;

export const DEFAULT_OPTIONS: CollectorOptions = {
  host: '127.0.0.1',
  grpcPort: 7801,
  httpPort: 7800,
  dataDir: './data',
  retentionDays: 30,
  logLevel: 'info',
  maxMessageBytes: 32 << 20,
  leakEvaluationMs: 30 * SECOND_MS,
};

export interface Collector {
  grpcPort: number;
  httpPort: number;
  store: ProfileStore;
  ingester: Ingester;
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
  // A profile older than the retention would be deleted on arrival: refused instead.
  const maxAgeMs = opts.retentionDays > 0 ? (opts.retentionDays + 1) * DAY_MS : 0;
  const ingester = new Ingester(store, { ...opts.ingest, limits: { maxAgeMs, ...opts.ingest?.limits } });
  // Agents of a service under suspicion are asked to run in precise mode.
  const suspects = new SuspectDirectives({ read: (service) => store.latestFinding(service), log });
  const grpc = new GrpcIngestServer(
    ingester,
    {
      host: opts.host,
      port: opts.grpcPort,
      token: opts.token,
      maxMessageBytes: opts.maxMessageBytes,
      admission: opts.admission,
      directiveFor: (service) => suspects.directiveFor(service),
    },
    log,
  );
  // How long the event loop was kept from other requests: the figure a bad
  // request would show first (ingest decodes on the event loop).
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  // Made once the HTTP port is known (links point at it); until then nothing evaluates.
  let notifier: WebhookNotifier | undefined;
  const onEvents = (events: LeakEvent[]) => notifier?.notify(events);
  const monitor = opts.leakEvaluationMs > 0 ? new LeakMonitor(store, { periodMs: opts.leakEvaluationMs, log, onEvents }) : undefined;
  // The monitor keeps a fresh report in the store, which any collector can
  // serve; without it (or when asked) the report is computed now.
  const leaks = async (service: string, evaluate: boolean) =>
    (!evaluate && monitor ? await latestLeakReport(store, service) : null) ?? evaluateLeaks(store, service, { onEvents });
  const http = new HttpApi({
    store,
    log,
    metrics: () => ({
      ...ingester.metrics(),
      requests_in_flight: grpc.admission.inFlightRequests,
      request_bytes_in_flight: grpc.admission.inFlightBytes,
      requests_shed_total: grpc.admission.shed,
      requests_undecodable_total: grpc.undecodable,
      event_loop_delay_p99_ms: Math.round(loopDelay.percentile(99) / 1e6),
      event_loop_delay_max_ms: Math.round(loopDelay.max / 1e6),
      ...notifier?.metrics(),
    }),
    extraMetrics: () => flaggedMetrics(store),
    leaks,
    evidence: async (service) => leakEvidence(store, await leaks(service, false)),
    posts: (() => {
      const routes = connectRoutes([querierService(store), pusherService(ingester)], {
        maxBodyBytes: opts.maxMessageBytes,
        onError: (route, err) => log.error(`${route} failed: ${(err as Error)?.stack ?? String(err)}`),
      });
      // Writes take --token, as gRPC ingest does.
      const push = '/push.v1.PusherService/Push';
      routes[push] = requireToken(routes[push]!, opts.token, true);
      routes['/ingest'] = requireToken(pyroscopeIngestRoute(ingester, opts.maxMessageBytes), opts.token, false);
      return routes;
    })(),
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
    notifier = new WebhookNotifier({ urls: opts.alertWebhooks, linkBase: opts.publicUrl ?? `http://${opts.host}:${httpPort}` }, log);
  }
  monitor?.start();
  return {
    grpcPort,
    httpPort,
    store,
    ingester,
    webUi: http.webUi,
    log,
    async close() {
      loopDelay.disable();
      await monitor?.stop();
      await notifier?.close();
      await grpc.close();
      await http.close();
      await ingester.flush();
      await store.close();
    },
  };
}
