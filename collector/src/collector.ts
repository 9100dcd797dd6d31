/**
 * The one wiring point: store <- ingester <- gRPC server, and the HTTP API
 * over the read side. `startCollector` is what `heapwatch serve` runs and
 * what the tests start on port 0.
 */
import * as path from 'node:path';
import { GrpcIngestServer } from './ingest/grpc-server';
import { Ingester, type IngesterOptions } from './ingest/ingester';
import { flaggedMetrics } from './alerts/flagged-metrics';
import { WebhookNotifier } from './alerts/webhook';
import { connectRoutes } from './http/connect';
import { requireToken } from './http/ingest-auth';
import { pusherService, pyroscopeIngestRoute } from './http/pyroscope-ingest';
import { querierService } from './http/querier-service';
import { HttpApi } from './http/server';
import { evaluateLeaks, latestLeakReport, LeakMonitor, type LeakEvent } from './leaks';
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
  /** URLs that get a JSON POST when a leak is flagged or cleared. */
  alertWebhooks?: string[];
  /** The HTTP API's address as alert receivers reach it, for links (default http://host:httpPort). */
  publicUrl?: string;
}

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
  log: Logger;
  close(): Promise<void>;
}

export async function startCollector(options: Partial<CollectorOptions> = {}): Promise<Collector> {
  const opts: CollectorOptions = { ...DEFAULT_OPTIONS, ...options };
  const log = createLogger(opts.logLevel);
  const target: StoreTarget = opts.clickhouseUrl
    ? { kind: 'server', url: opts.clickhouseUrl }
    : { kind: 'embedded', dataDir: path.resolve(opts.dataDir) };
  const store = await ClickHouseStore.open({ target, cluster: opts.cluster, retentionDays: opts.retentionDays });
  const ingester = new Ingester(store, opts.ingest);
  const grpc = new GrpcIngestServer(
    ingester,
    { host: opts.host, port: opts.grpcPort, token: opts.token, maxMessageBytes: opts.maxMessageBytes },
    log,
  );
  // Made once the HTTP port is known (links point at it); until then nothing evaluates.
  let notifier: WebhookNotifier | undefined;
  const onEvents = (events: LeakEvent[]) => notifier?.notify(events);
  const monitor = opts.leakEvaluationMs > 0 ? new LeakMonitor(store, { periodMs: opts.leakEvaluationMs, log, onEvents }) : undefined;
  const http = new HttpApi({
    store,
    log,
    metrics: () => ({ ...ingester.metrics(), ...notifier?.metrics() }),
    extraMetrics: () => flaggedMetrics(store),
    // The monitor keeps a fresh report in the store, which any collector can
    // serve; without it (or when asked) the report is computed now.
    leaks: async (service, evaluate) =>
      (!evaluate && monitor ? await latestLeakReport(store, service) : null) ?? evaluateLeaks(store, service, { onEvents }),
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
    log,
    async close() {
      await monitor?.stop();
      await notifier?.close();
      await grpc.close();
      await http.close();
      await ingester.flush();
      await store.close();
    },
  };
}
