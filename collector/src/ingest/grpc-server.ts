/**
 * gRPC ingest (heapwatch.v1.IngestService) and the standard
 * grpc.health.v1 health service, on one port.
 */
import * as grpc from '@grpc/grpc-js';
import { healthProto, ingestProto, INGEST_SERVICE_NAME, type AgentDirective, type IngestServiceHandlers, type HealthHandlers } from '@heapwatch/proto';
import type { Access } from '../auth/access';
import { bearer } from '../auth/tokens';
import { ExpiredError, OverloadedError } from '../store/batcher';
import { RefusedByStoreError } from '../store/insert-errors';
import type { Logger } from '../log';
import { Admission, DEFAULT_ADMISSION, type AdmissionOptions } from './admission';
import { IngestError } from './errors';
import type { Ingester } from './ingester';
import { encodeExportResponse, OTLP_SERVICE } from './otlp-decode';
import { checkRevision, exportProfiles, OTLP_REVISION_HEADER } from './otlp-profiles';

const MAX_CONNECTION_AGE_MS = 10 * 60_000;
const INGEST_METHOD_PATH = `/${INGEST_SERVICE_NAME}/Ingest`;
const OTLP_EXPORT_PATH = `/${OTLP_SERVICE}/Export`;
/** The calls admission, authentication and tenants apply to. */
const INGEST_PATHS = new Set([INGEST_METHOD_PATH, OTLP_EXPORT_PATH]);
/** A call is counted in flight until this long after its deadline at most. */
const DEADLINE_GRACE_MS = 100;

/** Metadata the auth interceptor sets for the handler: the caller's tenant. */
const TENANT_KEY = 'x-heapwatch-authenticated-tenant';

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
  admission?: Partial<AdmissionOptions>;
  /**
   * The directive for the agents of a service (leaks/suspects.ts), sent with
   * every acknowledgement; undefined sends none.
   */
  directiveFor?: (tenant: string, service: string) => AgentDirective | undefined;
}

/** What a request that does not decode as an IngestRequest becomes, for the handler to refuse. */
interface Undecodable {
  undecodable: string;
}

/**
 * The ingest service with a request deserializer that never throws: grpc-js
 * answers a deserializer's exception with INTERNAL, which the agent retries
 * for ever; bytes that do not decode are the caller's fault (INVALID_ARGUMENT).
 */
function ingestService(): grpc.ServiceDefinition {
  const service = ingestProto().heapwatch.v1.IngestService.service;
  return Object.fromEntries(
    Object.entries(service).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer): unknown => {
          try {
            return method.requestDeserialize(bytes);
          } catch (err) {
            return { undecodable: (err as Error)?.message ?? String(err) } satisfies Undecodable;
          }
        },
      },
    ]),
  );
}

/**
 * OTLP's ProfilesService with its request left as bytes: the handler checks
 * the profiles revision the caller names before decoding them, and decodes
 * them within the ingest limits (otlp-decode.ts).
 */
function otlpService(): grpc.ServiceDefinition {
  const raw = (b: Buffer): Buffer => b;
  return {
    Export: {
      path: OTLP_EXPORT_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: (b: Uint8Array) => Buffer.from(b),
      responseDeserialize: raw,
    },
  };
}

export class GrpcIngestServer {
  private readonly server: grpc.Server;
  private serving = true;
  boundPort = 0;
  readonly admission: Admission;
  /** Requests that did not decode as an IngestRequest. */
  undecodable = 0;

  constructor(
    private readonly ingester: Ingester,
    private readonly opts: GrpcServerOptions,
    private readonly log: Logger,
  ) {
    this.admission = new Admission({ ...DEFAULT_ADMISSION, ...opts.admission });
    this.server = new grpc.Server({
      interceptors: [this.admissionInterceptor()],
      'grpc.max_receive_message_length': opts.maxMessageBytes,
      'grpc.max_send_message_length': 1 << 20,
      // Agents hold one HTTP/2 connection for days; behind an L4 balancer
      // (a plain Kubernetes Service) that pins them to the collectors that
      // existed when they connected. Recycling connections spreads them over
      // new replicas; the agent reconnects on its own.
      'grpc.max_connection_age_ms': MAX_CONNECTION_AGE_MS,
      'grpc.max_connection_age_grace_ms': 30_000,
    });
    if (opts.ingest !== false) {
      this.server.addService(ingestService(), this.ingestHandlers() as unknown as grpc.UntypedServiceImplementation);
      this.server.addService(otlpService(), { Export: this.otlpExport() });
    }
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

  /**
   * Admission when a call's headers arrive, before its body is read
   * (admission.ts says why), and its release when the call ends, however
   * it ends: a status sent, or the call cancelled or past its deadline.
   */
  private admissionInterceptor(): grpc.ServerInterceptor {
    return (method, call) => {
      if (!INGEST_PATHS.has(method.path)) return new grpc.ServerInterceptingCall(call);
      let admitted = false;
      let released = false;
      let timer: NodeJS.Timeout | undefined;
      const release = (completed: boolean): void => {
        if (!admitted || released) return;
        released = true;
        clearTimeout(timer);
        this.admission.release(completed);
      };
      return new grpc.ServerInterceptingCall(call, {
        start: (next) =>
          next({
            onReceiveMetadata: (metadata, nextMetadata) => {
              // Authenticated on its headers, before its body is read or a
              // slot taken. The tenant goes on to the handler in metadata
              // that only this interceptor sets: a caller's own is dropped.
              metadata.remove(TENANT_KEY);
              const [value] = metadata.get('authorization');
              const a = this.opts.access.check(peerAddress(call.getPeer()), bearer(typeof value === 'string' ? value : undefined), 'write');
              if (!a.ok) {
                const code = { unauthenticated: grpc.status.UNAUTHENTICATED, forbidden: grpc.status.PERMISSION_DENIED, throttled: grpc.status.RESOURCE_EXHAUSTED }[a.reason];
                call.sendStatus({ code, details: a.message, metadata: new grpc.Metadata() });
                return;
              }
              metadata.set(TENANT_KEY, a.principal.tenant);
              const deadline = call.getDeadline();
              const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
              const refused = this.admission.admit(deadlineMs - Date.now());
              if (refused !== undefined) {
                call.sendStatus(this.shed(refused) as grpc.StatusObject);
                return;
              }
              admitted = true;
              // grpc-js ends a call at its deadline without passing the status
              // through interceptors: release it then, whatever the handler is
              // doing (work past its deadline is dropped at its next step).
              if (Number.isFinite(deadlineMs)) {
                timer = setTimeout(() => release(false), Math.max(0, deadlineMs - Date.now()) + DEADLINE_GRACE_MS);
                timer.unref();
              }
              nextMetadata(metadata);
            },
            onCancel: () => release(false),
          }),
        sendStatus: (status, next) => {
          // Answered in time: stored, or refused for what the request holds.
          release(status.code === grpc.status.OK || status.code === grpc.status.INVALID_ARGUMENT);
          next(status);
        },
      });
    };
  }

  private ingestHandlers(): IngestServiceHandlers {
    return {
      Ingest: (call, callback) => {
        const request: unknown = call.request;
        if ((request as Partial<Undecodable>).undecodable !== undefined) {
          this.undecodable++;
          callback({ code: grpc.status.INVALID_ARGUMENT, details: `request does not decode as heapwatch.v1.IngestRequest: ${(request as Undecodable).undecodable}` });
          return;
        }
        // The deadline the caller set (Infinity without one): work for a
        // caller that has given up is dropped, not stored for nobody.
        const deadline = call.getDeadline();
        const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
        const bytes = call.request.pprofGzip?.length ?? 0;
        const refused = this.admission.admitBytes(bytes);
        if (refused !== undefined) {
          callback(this.shed(refused));
          return;
        }
        const expired = (): boolean => call.cancelled || Date.now() >= deadlineMs;
        const done = (): void => this.admission.releaseBytes(bytes);
        // The tenant is the token's (set by the interceptor), never the request's.
        const [tenant] = call.metadata.get(TENANT_KEY);
        if (typeof tenant !== 'string') {
          callback({ code: grpc.status.INTERNAL, details: 'the call was not authenticated' });
          return;
        }
        this.ingester.ingest(call.request, tenant, expired).then(
          (result) => {
            done();
            callback(null, { stored: result.stored, directive: this.directiveFor(tenant, call.request.service) });
          },
          (err: unknown) => {
            done();
            callback(this.toStatus(err, call.request.service));
          },
        );
      },
    };
  }

  /**
   * OTLP's `ProfilesService/Export`: admitted, authenticated (write scope)
   * and given its tenant by the interceptor like Ingest; all or nothing
   * (otlp-profiles.ts).
   */
  private otlpExport(): grpc.handleUnaryCall<Buffer, Uint8Array> {
    return (call, callback) => {
      const bytes = call.request;
      const refused = this.admission.admitBytes(bytes.length);
      if (refused !== undefined) {
        callback(this.shed(refused));
        return;
      }
      const done = (): void => this.admission.releaseBytes(bytes.length);
      const [tenant] = call.metadata.get(TENANT_KEY);
      if (typeof tenant !== 'string') {
        done();
        callback({ code: grpc.status.INTERNAL, details: 'the call was not authenticated' });
        return;
      }
      const answer = (async () => {
        // Another revision's bytes may decode and mean something else: refused unread.
        checkRevision(call.metadata.get(OTLP_REVISION_HEADER).map(String));
        return encodeExportResponse(await exportProfiles(this.ingester, bytes, false, tenant), false);
      })();
      answer.then(
        (response) => {
          done();
          callback(null, response);
        },
        (err: unknown) => {
          done();
          callback(this.toStatus(err, 'OTLP ProfilesService/Export'));
        },
      );
    };
  }

  private directiveFor(tenant: string, service: string): AgentDirective | undefined {
    try {
      return this.opts.directiveFor?.(tenant, service);
    } catch (err) {
      this.log.debug(`directive for ${JSON.stringify(service)}: ${(err as Error)?.message ?? String(err)}`);
      return undefined;
    }
  }

  /** RESOURCE_EXHAUSTED with a retry hint in the trailers, which the agent honours. */
  private shed(details: string): Partial<grpc.StatusObject> {
    const ms = this.admission.pushbackMs();
    const metadata = new grpc.Metadata();
    metadata.set('grpc-retry-pushback-ms', String(ms));
    return { code: grpc.status.RESOURCE_EXHAUSTED, details: `${details}; retry in ${ms} ms`, metadata };
  }

  private toStatus(err: unknown, service: string): Partial<grpc.StatusObject> {
    if (err instanceof IngestError) {
      this.log.debug(`rejected a profile of ${JSON.stringify(service)}: ${err.message}`);
      return { code: err.code, details: err.message };
    }
    if (err instanceof OverloadedError) {
      this.log.warn(err.message);
      return this.shed(err.message);
    }
    if (err instanceof RefusedByStoreError) {
      this.log.warn(`a profile of ${JSON.stringify(service)}: ${err.message}`);
      return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
    }
    if (err instanceof ExpiredError) {
      // The caller has had DEADLINE_EXCEEDED from grpc-js already; this answer goes nowhere.
      return { code: grpc.status.DEADLINE_EXCEEDED, details: err.message };
    }
    this.log.error(`storing a profile of ${JSON.stringify(service)} failed: ${(err as Error)?.message ?? String(err)}`);
    return { code: grpc.status.UNAVAILABLE, details: 'the store did not take the profile; retry later' };
  }

  private healthHandlers(): HealthHandlers {
    const statusOf = (service: string): 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' => {
      if (service !== '' && service !== INGEST_SERVICE_NAME && service !== OTLP_SERVICE) return 'SERVICE_UNKNOWN';
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
