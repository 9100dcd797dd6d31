/**
 * gRPC ingest (heapwatch.v1.IngestService) and the standard
 * grpc.health.v1 health service, on one port.
 */
import * as grpc from '@grpc/grpc-js';
import { healthProto, ingestProto, INGEST_SERVICE_NAME, type IngestServiceHandlers, type HealthHandlers } from '@heapwatch/proto';
import type { Access } from '../auth/access';
import { bearer } from '../auth/tokens';
import { OverloadedError } from '../store/batcher';
import type { Logger } from '../log';
import { IngestError } from './errors';
import type { Ingester } from './ingester';

const MAX_CONNECTION_AGE_MS = 10 * 60_000;

/** The host part of grpc-js's peer string (`1.2.3.4:5678`, `[::1]:5678`), the throttle's key. */
function peerAddress(peer: string): string {
  const m = /^\[(.*)\]:\d+$/.exec(peer) ?? /^(.*):\d+$/.exec(peer);
  return m?.[1] ?? peer;
}

export interface GrpcServerOptions {
  host: string;
  port: number;
  /** With tokens configured, `Ingest` requires `authorization: Bearer <token>` with the write scope. */
  access: Access;
  /** Largest request accepted, in bytes. */
  maxMessageBytes: number;
  /** Serve TLS with this certificate and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
  /** False: only health is served (a collector with `--role evaluate`). */
  ingest?: boolean;
}

export class GrpcIngestServer {
  private readonly server: grpc.Server;
  private serving = true;
  boundPort = 0;

  constructor(
    private readonly ingester: Ingester,
    private readonly opts: GrpcServerOptions,
    private readonly log: Logger,
  ) {
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': opts.maxMessageBytes,
      'grpc.max_send_message_length': 1 << 20,
      // Agents hold one HTTP/2 connection for days; behind an L4 balancer
      // (a plain Kubernetes Service) that pins them to the collectors that
      // existed when they connected. Recycling connections spreads them over
      // new replicas; the agent reconnects on its own.
      'grpc.max_connection_age_ms': MAX_CONNECTION_AGE_MS,
      'grpc.max_connection_age_grace_ms': 30_000,
    });
    if (opts.ingest !== false) this.server.addService(ingestProto().heapwatch.v1.IngestService.service, this.ingestHandlers());
    this.server.addService(healthProto().grpc.health.v1.Health.service, this.healthHandlers());
  }

  async listen(): Promise<number> {
    this.boundPort = await new Promise<number>((resolve, reject) => {
      const address = `${this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host}:${this.opts.port}`;
      const credentials = this.opts.tls
        ? grpc.ServerCredentials.createSsl(null, [{ private_key: this.opts.tls.key, cert_chain: this.opts.tls.cert }], false)
        : grpc.ServerCredentials.createInsecure();
      this.server.bindAsync(address, credentials, (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
    return this.boundPort;
  }

  /** Stops taking calls, lets the ones in flight finish (up to `graceMs`). */
  async close(graceMs = 5000): Promise<void> {
    this.serving = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private ingestHandlers(): IngestServiceHandlers {
    return {
      Ingest: (call, callback) => {
        const [value] = call.metadata.get('authorization');
        const a = this.opts.access.check(peerAddress(call.getPeer()), bearer(typeof value === 'string' ? value : undefined), 'write');
        if (!a.ok) {
          const code = { unauthenticated: grpc.status.UNAUTHENTICATED, forbidden: grpc.status.PERMISSION_DENIED, throttled: grpc.status.RESOURCE_EXHAUSTED }[a.reason];
          callback({ code, details: a.message });
          return;
        }
        // The tenant is the token's, never the request's: a token writes only into its own tenant.
        this.ingester.ingest(call.request, a.principal.tenant).then(
          (result) => callback(null, { stored: result.stored }),
          (err: unknown) => callback(this.toStatus(err, call.request.service)),
        );
      },
    };
  }

  private toStatus(err: unknown, service: string): Partial<grpc.StatusObject> {
    if (err instanceof IngestError) {
      this.log.debug(`rejected a profile of ${JSON.stringify(service)}: ${err.message}`);
      return { code: err.code, details: err.message };
    }
    if (err instanceof OverloadedError) {
      this.log.warn(err.message);
      return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
    }
    this.log.error(`storing a profile of ${JSON.stringify(service)} failed: ${(err as Error)?.message ?? String(err)}`);
    return { code: grpc.status.UNAVAILABLE, details: 'the store did not take the profile; retry later' };
  }

  private healthHandlers(): HealthHandlers {
    const statusOf = (service: string): 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' => {
      if (service !== '' && service !== INGEST_SERVICE_NAME) return 'SERVICE_UNKNOWN';
      return this.serving ? 'SERVING' : 'NOT_SERVING';
    };
    return {
      Check: (call, callback) => {
        const status = statusOf(call.request.service);
        if (status === 'SERVICE_UNKNOWN') callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
        else callback(null, { status });
      },
      List: (_call, callback) => {
        callback(null, { statuses: { '': { status: statusOf('') }, [INGEST_SERVICE_NAME]: { status: statusOf('') } } });
      },
      // One answer, then the stream ends: status changes only at shutdown,
      // when the connection goes away anyway.
      Watch: (call) => {
        call.write({ status: statusOf(call.request.service) });
        call.end();
      },
    };
  }
}
