/**
 * gRPC ingest (heapwatch.v1.IngestService) and the standard
 * grpc.health.v1 health service, on one port.
 */
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { healthProto, ingestProto, INGEST_SERVICE_NAME, type AgentDirective, type IngestRequest__Output, type IngestServiceHandlers, type HealthHandlers } from '@heapwatch/proto';
import type { Access } from '../auth/access';
import { bearer } from '../auth/tokens';
import { ExpiredError, OverloadedError } from '../store/batcher';
import { RefusedByStoreError } from '../store/insert-errors';
import type { Logger } from '../log';
import { isRefusal, type Admission, type Refusal, type Ticket } from './admission';
import { IngestError } from './errors';
import type { Ingester } from './ingester';
import { encodeExportResponse, OTLP_SERVICE } from './otlp-decode';
import { checkRevision, exportProfiles, OTLP_REVISION_HEADER } from './otlp-profiles';

const MAX_CONNECTION_AGE_MS = 10 * 60_000;
const INGEST_METHOD_PATH = `/${INGEST_SERVICE_NAME}/Ingest`;
const OTLP_EXPORT_PATH = `/${OTLP_SERVICE}/Export`;
/** The calls admission, authentication and tenants apply to. */
const INGEST_PATHS = new Set([INGEST_METHOD_PATH, OTLP_EXPORT_PATH]);
/** The grpc.health.v1 service name that answers liveness (/healthz) rather than readiness. */
export const LIVENESS_SERVICE = 'liveness';
const WATCH_POLL_MS = 5000;
const MAX_WATCHERS = 256;
const MAX_REASON_CHARS = 500;
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
  /** Readiness for the health service (health/readiness.ts); without it, health is liveness. */
  readiness?: () => Promise<{ ready: boolean; reasons: string[] }>;
  /** Ingest capacity, shared with the HTTP ingest routes (admission.ts). */
  admission: Admission;
  /**
   * The directive for the agent that sent `request` (leaks/suspects.ts,
   * leaks/holder-requests.ts), sent with its acknowledgement; undefined
   * sends none.
   */
  directiveFor?: (tenant: string, request: IngestRequest__Output) => AgentDirective | undefined;
}

/** RESOURCE_EXHAUSTED with a retry hint in the trailers, which the agent honours. */
function shedStatus(r: Refusal): grpc.StatusObject {
  const metadata = new grpc.Metadata();
  metadata.set('grpc-retry-pushback-ms', String(r.retryAfterMs));
  return { code: grpc.status.RESOURCE_EXHAUSTED, details: r.refused, metadata };
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
  /** Calls answered before their body was read and told to stop sending it. */
  bodiesStopped = 0;

  constructor(
    private readonly ingester: Ingester,
    private readonly opts: GrpcServerOptions,
    private readonly log: Logger,
  ) {
    this.admission = opts.admission;
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
   * (admission.ts says why), its bytes when the body has arrived, and its
   * release when the call ends, however it ends: a status sent, the call
   * cancelled or past its deadline, or held past maxHoldMs.
   */
  private admissionInterceptor(): grpc.ServerInterceptor {
    return (method, call) => {
      if (!INGEST_PATHS.has(method.path)) return new grpc.ServerInterceptingCall(call);
      let ticket: Ticket | undefined;
      let timer: NodeJS.Timeout | undefined;
      const leave = (completed: boolean): void => {
        clearTimeout(timer);
        ticket?.leave(completed);
      };
      const refuse = (refusal: Refusal): void => {
        call.sendStatus(shedStatus(refusal));
        this.stopBody(call);
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
                this.stopBody(call);
                return;
              }
              metadata.set(TENANT_KEY, a.principal.tenant);
              const deadline = call.getDeadline();
              const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
              const entered = this.admission.enter(deadlineMs - Date.now());
              if (isRefusal(entered)) {
                refuse(entered);
                return;
              }
              ticket = entered;
              // grpc-js ends a call at its deadline without passing the status
              // through interceptors: release it then, whatever the handler is
              // doing (work past its deadline is dropped at its next step). A
              // call without a deadline, or with a far one, is answered and
              // released after maxHoldMs: a body that never comes holds
              // nothing for ever.
              const holdMs = Math.min(deadlineMs - Date.now() + DEADLINE_GRACE_MS, this.admission.opts.maxHoldMs);
              timer = setTimeout(() => {
                if (ticket?.done) return;
                leave(false);
                if (deadlineMs - Date.now() > 0) {
                  call.sendStatus({ code: grpc.status.DEADLINE_EXCEEDED, details: `not answered within ${this.admission.opts.maxHoldMs} ms (maxHoldMs)`, metadata: new grpc.Metadata() });
                  this.stopBody(call);
                }
              }, Math.max(0, holdMs));
              timer.unref();
              nextMetadata(metadata);
            },
            onReceiveMessage: (message: unknown, nextMessage) => {
              // Ingest's profile, or OTLP Export's whole body (kept as bytes).
              const bytes = Buffer.isBuffer(message) ? message.length : ((message as Partial<IngestRequest__Output>).pprofGzip?.length ?? 0);
              const refused = ticket?.addBytes(bytes);
              if (refused !== undefined) {
                leave(false);
                refuse(refused);
                return;
              }
              nextMessage(message);
            },
            onCancel: () => leave(false),
          }),
        sendStatus: (status, next) => {
          // Answered in time: stored, or refused for what the request holds.
          leave(status.code === grpc.status.OK || status.code === grpc.status.INVALID_ARGUMENT);
          next(status);
        },
      });
    };
  }

  /**
   * After an answer sent before the request's body was read (refused, or
   * unauthenticated): RST_STREAM(NO_ERROR), which asks the client to stop
   * sending the body (RFC 9113 8.1). Without it every refused agent still
   * sent its whole 189 KiB profile, which the collector read and threw away:
   * at 2,000 agents the bodies of refused calls took the bandwidth the
   * admitted ones needed, and none of those arrived in time.
   *
   * grpc-js has no API for it; the first interceptor gets grpc-js's own call,
   * which holds the HTTP/2 stream. Closed once the answer is written (Node
   * sends RST_STREAM(NO_ERROR) after the pending frames).
   */
  private stopBody(call: grpc.ServerInterceptingCallInterface): void {
    const stream = (call as unknown as { stream?: http2.ServerHttp2Stream }).stream;
    if (stream && !stream.destroyed && typeof stream.close === 'function') {
      this.bodiesStopped++;
      setImmediate(() => {
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      });
    }
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
        const expired = (): boolean => call.cancelled || Date.now() >= deadlineMs;
        // The tenant is the token's (set by the interceptor), never the request's.
        const [tenant] = call.metadata.get(TENANT_KEY);
        if (typeof tenant !== 'string') {
          callback({ code: grpc.status.INTERNAL, details: 'the call was not authenticated' });
          return;
        }
        this.ingester.ingest(call.request, tenant, expired).then(
          (result) => callback(null, { stored: result.stored, directive: this.directiveFor(tenant, call.request) }),
          (err: unknown) => callback(this.toStatus(err, call.request.service)),
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
      // Admitted, and its bytes counted, by the interceptor.
      const bytes = call.request;
      const [tenant] = call.metadata.get(TENANT_KEY);
      if (typeof tenant !== 'string') {
        callback({ code: grpc.status.INTERNAL, details: 'the call was not authenticated' });
        return;
      }
      const answer = (async () => {
        // Another revision's bytes may decode and mean something else: refused unread.
        checkRevision(call.metadata.get(OTLP_REVISION_HEADER).map(String));
        return encodeExportResponse(await exportProfiles(this.ingester, bytes, false, tenant), false);
      })();
      answer.then(
        (response) => callback(null, response),
        (err: unknown) => callback(this.toStatus(err, 'OTLP ProfilesService/Export')),
      );
    };
  }

  private directiveFor(tenant: string, request: IngestRequest__Output): AgentDirective | undefined {
    try {
      return this.opts.directiveFor?.(tenant, request);
    } catch (err) {
      this.log.debug(`directive for ${JSON.stringify(request.service)}: ${(err as Error)?.message ?? String(err)}`);
      return undefined;
    }
  }

  private toStatus(err: unknown, service: string): Partial<grpc.StatusObject> {
    if (err instanceof IngestError) {
      this.log.debug(`rejected a profile of ${JSON.stringify(service)}: ${err.message}`);
      return { code: err.code, details: err.message };
    }
    if (err instanceof OverloadedError) {
      this.log.warn(err.message);
      return shedStatus(this.admission.refusal(err.message));
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

  /**
   * grpc.health.v1, following readiness (health/readiness.ts), as /readyz
   * does: the server ('') and the ingest service are SERVING when the store
   * takes writes, NOT_SERVING when it does not (the reasons in the
   * `heapwatch-not-ready-reason` trailer) or the server is shutting down.
   * `liveness` is SERVING while the process runs, as /healthz: a probe that
   * restarts the collector must not follow the store.
   */
  private healthHandlers(): HealthHandlers {
    type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
    const services = new Set(['', LIVENESS_SERVICE, ...(this.opts.ingest !== false ? [INGEST_SERVICE_NAME, OTLP_SERVICE] : [])]);
    const statusOf = async (service: string): Promise<{ status: Status; reasons: string[] }> => {
      if (!services.has(service)) return { status: 'SERVICE_UNKNOWN', reasons: [] };
      if (!this.serving) return { status: 'NOT_SERVING', reasons: ['the collector is shutting down'] };
      if (service === LIVENESS_SERVICE || !this.opts.readiness) return { status: 'SERVING', reasons: [] };
      const r = await this.opts.readiness();
      return { status: r.ready ? 'SERVING' : 'NOT_SERVING', reasons: r.reasons };
    };
    // One printable line, cut short: a store's error can run to kilobytes,
    // and a client drops trailers past its metadata limit (grpc-js: 8 KiB).
    // Without surrounding spaces: an HTTP/2 peer drops such a field value
    // (RFC 9113, 8.2.1), and the store's messages end with one.
    const trailer = (reasons: string[]): grpc.Metadata => {
      const m = new grpc.Metadata();
      const text = reasons
        .map((r) => (r.length > MAX_REASON_CHARS ? `${r.slice(0, MAX_REASON_CHARS)}...` : r).replace(/[^\x20-\x7e]/g, '?').trim())
        .join('; ');
      if (text) m.set('heapwatch-not-ready-reason', text);
      return m;
    };
    let watchers = 0;
    return {
      Check: (call, callback) => {
        void statusOf(call.request.service).then(({ status, reasons }) => {
          if (status === 'SERVICE_UNKNOWN') callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
          else callback(null, { status }, trailer(reasons));
        });
      },
      List: (_call, callback) => {
        void Promise.all([...services].map(async (name) => [name, { status: (await statusOf(name)).status }] as const)).then((entries) =>
          callback(null, { statuses: Object.fromEntries(entries) }),
        );
      },
      // The status now, then each change, checked every WATCH_POLL_MS,
      // until the caller goes away; at most MAX_WATCHERS at once.
      Watch: (call) => {
        if (watchers >= MAX_WATCHERS) {
          call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `${watchers} health watchers already` });
          return;
        }
        watchers++;
        let last: Status | undefined;
        const send = (): void => {
          void statusOf(call.request.service).then(({ status }) => {
            if (call.cancelled || status === last) return;
            last = status;
            call.write({ status });
          });
        };
        send();
        const timer = setInterval(send, WATCH_POLL_MS);
        timer.unref();
        call.once('cancelled', () => {
          clearInterval(timer);
          watchers--;
        });
      },
    };
  }
}
