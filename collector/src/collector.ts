/**
 * The one wiring point: store <- ingester <- gRPC server, and the HTTP API
 * over the read side. `startCollector` is what `heapwatch serve` runs and
 * what the tests start on port 0.
 */
import * as path from 'node:path';
import { GrpcIngestServer } from './ingest/grpc-server';
import { Ingester, type IngesterOptions } from './ingest/ingester';
import { HttpApi } from './http/server';
import { createLogger, type Logger, type LogLevel } from './log';
import { Store, type StoreTarget } from './store/clickhouse';

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
  ingest?: IngesterOptions;
}

export const DEFAULT_OPTIONS: CollectorOptions = {
  host: '127.0.0.1',
  grpcPort: 7801,
  httpPort: 7800,
  dataDir: './data',
  retentionDays: 30,
  logLevel: 'info',
  maxMessageBytes: 32 << 20,
};

export interface Collector {
  grpcPort: number;
  httpPort: number;
  store: Store;
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
  const store = await Store.open({ target, cluster: opts.cluster, retentionDays: opts.retentionDays });
  const ingester = new Ingester(store, opts.ingest);
  const grpc = new GrpcIngestServer(
    ingester,
    { host: opts.host, port: opts.grpcPort, token: opts.token, maxMessageBytes: opts.maxMessageBytes },
    log,
  );
  const http = new HttpApi({ store, log });
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
  return {
    grpcPort,
    httpPort,
    store,
    ingester,
    log,
    async close() {
      await grpc.close();
      await http.close();
      await ingester.flush();
      await store.close();
    },
  };
}
