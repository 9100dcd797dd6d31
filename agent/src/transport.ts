/**
 * The agent's gRPC client: unary IngestService.Ingest over node:http2, on the
 * host's thread, with no gRPC library.
 *
 * Why not @grpc/grpc-js: it deliberately holds the process open while a call
 * is in flight (a ref'd deadline timer, a ref'd timer while the call waits
 * for a connection, a ref'd HTTP/2 session while it is active; grpc-node PRs
 * #1580, #2322), and none of that can be unref'd from outside. An agent must
 * never keep its host alive, so it used to run grpc-js in a worker thread:
 * a second isolate and heap that cost about 23 MB RSS. Here the session and
 * its socket are unref'd and so is every timer; the only thing that holds the
 * process is a host awaiting stop()/flush() (agent.ts, bounded by their
 * deadline).
 *
 * One session is reused across calls and replaced after GOAWAY, close or
 * error (the collector recycles connections with grpc.max_connection_age_ms).
 * Without grpc-js there is no client-side load balancing: one connection per
 * agent to whatever `host` resolves to, rebalanced by that connection age.
 * The sender sends one request at a time; nothing here depends on that.
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import { decodeIngestResponse, encodeIngestRequest, INGEST_METHOD_PATH, type DecodedDirective, type IngestRequest } from '@heapwatch/proto/messages';
import { collectorUrl, parseCollectorAddress } from './collector-address';
import { GrpcStatus, statusFromHttp } from './grpc-status';
import { decodeGrpcMessage, encodeTimeout, frameMessage, unframeSingleMessage } from './grpc-wire';
import { AGENT_VERSION } from './version';

export interface SendResult {
  ok: boolean;
  /** gRPC status code on failure (see grpc-status.ts). */
  code?: number;
  details?: string;
  stored?: boolean;
  /** The collector's directive, when it sent one (collectors that predate it send none). */
  directive?: DecodedDirective;
  /** The collector's `grpc-retry-pushback-ms` trailer: when to try again (gRPC retry design A6). */
  retryAfterMs?: number;
}

export interface Transport {
  /** Never rejects: every failure is a SendResult with a gRPC status code. */
  send(request: IngestRequest, timeoutMs: number): Promise<SendResult>;
  close(): void;
}

export interface TransportSettings {
  collector: string;
  token: string | undefined;
  tls: boolean;
  /** Path of a PEM CA to trust instead of Node's roots; implies TLS. */
  tlsCa?: string;
}

/** An IngestResponse is a few bytes; a larger body is a broken or hostile peer, not something to buffer. */
const MAX_RESPONSE_BYTES = 64 * 1024;
const USER_AGENT = `heapwatch-agent/${AGENT_VERSION} node/${process.versions.node}`;

const first = (v: string | string[] | number | undefined): string | undefined =>
  Array.isArray(v) ? v[0] : v === undefined ? undefined : String(v);

export class Http2Transport implements Transport {
  private session: http2.ClientHttp2Session | undefined;
  /** Cancels of the calls in flight, for close(). */
  private readonly inFlight = new Set<() => void>();
  private readonly url: string | undefined;
  private closed = false;

  constructor(private readonly settings: TransportSettings) {
    const address = parseCollectorAddress(settings.collector);
    this.url = address && collectorUrl(address, settings.tls || settings.tlsCa !== undefined);
  }

  send(request: IngestRequest, timeoutMs: number): Promise<SendResult> {
    return new Promise<SendResult>((resolve) => {
      try {
        this.call(request, timeoutMs, resolve);
      } catch (e) {
        resolve({ ok: false, code: GrpcStatus.INTERNAL, details: String(e) });
      }
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cancel of [...this.inFlight]) cancel();
    const s = this.session;
    this.session = undefined;
    // Graceful (GOAWAY) now that no stream is open; unref'd, so it cannot hold the host either way.
    if (s && !s.destroyed) s.close();
  }

  private call(request: IngestRequest, timeoutMs: number, resolve: (r: SendResult) => void): void {
    if (this.closed) return resolve({ ok: false, code: GrpcStatus.CANCELLED, details: 'transport closed' });
    if (this.url === undefined) {
      return resolve({ ok: false, code: GrpcStatus.INTERNAL, details: `bad collector address ${JSON.stringify(this.settings.collector)}` });
    }
    if (!(timeoutMs > 0)) return resolve({ ok: false, code: GrpcStatus.DEADLINE_EXCEEDED, details: 'no time left' });

    let body: Buffer;
    try {
      body = frameMessage(encodeIngestRequest(request));
    } catch (e) {
      return resolve({ ok: false, code: GrpcStatus.INTERNAL, details: `cannot encode IngestRequest: ${String(e)}` });
    }

    let session: http2.ClientHttp2Session;
    let stream: http2.ClientHttp2Stream;
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': INGEST_METHOD_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': encodeTimeout(timeoutMs),
      'user-agent': USER_AGENT,
    };
    if (this.settings.token !== undefined) headers.authorization = `Bearer ${this.settings.token}`;
    try {
      session = this.currentSession(this.url);
      stream = session.request(headers, { endStream: false });
    } catch (e) {
      // A session that closed between our check and request() (GOAWAY race):
      // nothing was sent, so one fresh session is safe to try.
      this.dropSession();
      try {
        session = this.currentSession(this.url);
        stream = session.request(headers, { endStream: false });
      } catch (e2) {
        return resolve({ ok: false, code: GrpcStatus.UNAVAILABLE, details: `cannot open a stream: ${String(e2)}` });
      }
    }

    let settled = false;
    const finish = (r: SendResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      this.inFlight.delete(cancel);
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      resolve(r);
    };
    const cancel = (): void => finish({ ok: false, code: GrpcStatus.CANCELLED, details: 'transport closed' });
    this.inFlight.add(cancel);

    const deadline = setTimeout(() => {
      // The connect time counts against the call's deadline. A session that
      // has not connected, or whose peer has not even sent response headers,
      // is abandoned so the next send starts afresh (perhaps on another
      // address behind the name) instead of queueing on a dead connection.
      if (httpStatus === undefined) this.dropSession(session, true);
      finish({ ok: false, code: GrpcStatus.DEADLINE_EXCEEDED, details: `deadline of ${timeoutMs} ms exceeded` });
    }, timeoutMs);
    deadline.unref();

    let httpStatus: number | undefined;
    let contentType: string | undefined;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    let retryAfterMs: number | undefined;
    let streamError: Error | undefined;
    const chunks: Buffer[] = [];
    let bytes = 0;
    const readStatus = (h: http2.IncomingHttpHeaders): void => {
      const s = first(h['grpc-status']);
      if (s !== undefined) {
        grpcStatus = s;
        grpcMessage = first(h['grpc-message']);
        const pushback = first(h['grpc-retry-pushback-ms']);
        if (pushback !== undefined && /^\d{1,9}$/.test(pushback)) retryAfterMs = Number(pushback);
      }
    };

    stream.on('response', (h) => {
      httpStatus = Number(first(h[':status']));
      contentType = first(h['content-type']);
      readStatus(h); // trailers-only responses carry the status in the headers
    });
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_RESPONSE_BYTES) {
        finish({ ok: false, code: GrpcStatus.RESOURCE_EXHAUSTED, details: `response larger than ${MAX_RESPONSE_BYTES} bytes` });
      } else chunks.push(chunk);
    });
    stream.on('trailers', readStatus);
    stream.on('error', (e: Error) => {
      streamError = e;
    });
    stream.on('close', () => {
      if (settled) return;
      if (httpStatus !== undefined && httpStatus !== 200) {
        return finish({ ok: false, code: statusFromHttp(httpStatus), details: `HTTP ${httpStatus} from collector` });
      }
      if (grpcStatus === undefined) {
        const why = streamError ? streamError.message : `stream closed without a gRPC status (HTTP/2 code ${stream.rstCode ?? '?'})`;
        return finish({ ok: false, code: GrpcStatus.UNAVAILABLE, details: why });
      }
      if (contentType === undefined || !contentType.startsWith('application/grpc')) {
        return finish({ ok: false, code: GrpcStatus.UNKNOWN, details: `unexpected content-type ${String(contentType)}` });
      }
      const code = Number(grpcStatus);
      const details = grpcMessage === undefined ? undefined : decodeGrpcMessage(grpcMessage);
      if (!Number.isInteger(code)) return finish({ ok: false, code: GrpcStatus.UNKNOWN, details: `bad grpc-status ${grpcStatus}` });
      if (code !== GrpcStatus.OK) return finish({ ok: false, code, details, ...(retryAfterMs !== undefined && { retryAfterMs }) });
      finish(decodeResponse(Buffer.concat(chunks, bytes)));
    });
    stream.end(body);
  }

  private currentSession(url: string): http2.ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    // Read at each connect (a rotated CA file applies on the next one); a
    // missing file throws here, which send() turns into a failed send.
    const ca = this.settings.tlsCa === undefined ? undefined : fs.readFileSync(this.settings.tlsCa);
    const next = http2.connect(url, { settings: { enablePush: false }, ...(ca ? { ca } : {}) });
    // Without a listener an 'error' would be thrown into the host. The
    // streams on this session see the error themselves; we only drop it.
    next.on('error', () => this.dropSession(next));
    // After GOAWAY no new stream may start here; calls in flight finish.
    next.on('goaway', () => this.dropSession(next));
    next.on('close', () => this.dropSession(next));
    next.unref(); // the session and its socket never keep the host alive
    this.session = next;
    return next;
  }

  /**
   * Forgets the current session (or `which`, if it is still current) so the
   * next call connects anew; destroys it if it never connected or if asked.
   */
  private dropSession(which?: http2.ClientHttp2Session, destroy = false): void {
    const s = which ?? this.session;
    if (this.session === s) this.session = undefined;
    if (s && !s.destroyed && (destroy || s.connecting)) s.destroy();
  }
}

function decodeResponse(body: Buffer): SendResult {
  const unframed = unframeSingleMessage(body);
  if ('error' in unframed) return { ok: false, code: GrpcStatus.INTERNAL, details: unframed.error };
  try {
    const r = decodeIngestResponse(unframed.message);
    return r.directive ? { ok: true, stored: r.stored, directive: r.directive } : { ok: true, stored: r.stored };
  } catch (e) {
    return { ok: false, code: GrpcStatus.INTERNAL, details: `cannot decode IngestResponse: ${String(e)}` };
  }
}
