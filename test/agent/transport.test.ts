/**
 * The agent's node:http2 gRPC client against real grpc-js servers: the
 * interop check that our framing, headers, deadline and status handling are
 * what a gRPC server (the collector is one) expects.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ingestProto, type IngestRequest, type IngestRequest__Output } from '@heapwatch/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCollectorAddress } from '../../agent/src/collector-address';
import { GrpcStatus, statusFromHttp } from '../../agent/src/grpc-status';
import { decodeGrpcMessage, encodeTimeout, frameMessage, unframeSingleMessage } from '../../agent/src/grpc-wire';
import { Http2Transport } from '../../agent/src/transport';

type Handler = (call: grpc.ServerUnaryCall<IngestRequest__Output, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

interface TestServer {
  port: number;
  calls: { request: IngestRequest__Output; metadata: grpc.Metadata; deadline: grpc.Deadline }[];
  shutdown(): Promise<void>;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function grpcServer(handler: Handler, opts: { port?: number; host?: string; options?: grpc.ServerOptions } = {}): Promise<TestServer> {
  const calls: TestServer['calls'] = [];
  const server = new grpc.Server(opts.options);
  server.addService(ingestProto().heapwatch.v1.IngestService.service, {
    ingest(call: grpc.ServerUnaryCall<IngestRequest__Output, unknown>, cb: grpc.sendUnaryData<unknown>) {
      calls.push({ request: call.request, metadata: call.metadata, deadline: call.getDeadline() });
      handler(call, cb);
    },
  });
  const host = opts.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  let down = false;
  const shutdown = (): Promise<void> => {
    if (down) return Promise.resolve();
    down = true;
    // Graceful: grpc-js sends GOAWAY and waits for calls; forced after 1 s.
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 1000);
      server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  };
  cleanups.push(() => {
    if (!down) server.forceShutdown();
    down = true;
  });
  return { port, calls, shutdown };
}

/** A TCP relay in front of a server, counting the connections the client opens. */
async function countingProxy(targetPort: number): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    connections++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    proxy.close();
  });
  return { port: (proxy.address() as net.AddressInfo).port, connections: () => connections };
}

function transport(collector: string, token?: string): Http2Transport {
  const t = new Http2Transport({ collector, token, tls: false });
  cleanups.push(() => t.close());
  return t;
}

const request = (profileId = 'p-1'): IngestRequest => ({
  profileId,
  service: 'svc',
  labels: { env: 'test', 'ünï': 'cödé' },
  instance: { hostname: 'h', pid: 4242, processStartTimeMs: 1_760_000_000_123, threadId: 3, runtimeVersion: 'v20', agentVersion: '0.1.0' },
  startTimeMs: 1_760_000_000_000,
  endTimeMs: 1_760_000_060_000,
  pprofGzip: Buffer.from([0x1f, 0x8b, 0, 1, 2, 3, 255]),
  memory: { rssBytes: 5_000_000_000, heapUsedBytes: 1, heapTotalBytes: 2, externalBytes: 3, arrayBuffersBytes: 4, heapSizeLimitBytes: 4_345_298_944 },
  agent: { profilesSent: 7, profilesDropped: 1, samplingTimeUs: 12_345, queueLength: 2, queueBytes: 300, sendFailures: 5, forcedGcs: 3, forcedGcTimeUs: 9_000, preciseActivations: 1, preciseTimeMs: 60_000, preciseSwitchTimeUs: 25_000 },
  gc: { majorGcs: 3, lastMajorGcEndMs: 1_760_000_059_000, afterMajorGc: true },
  inliningDisabled: true,
});

describe('Http2Transport against a grpc-js server', () => {
  it('OK: the server decodes every field, the response is read, token and user-agent are sent', async () => {
    const s = await grpcServer((_c, cb) => cb(null, { stored: true }));
    const t = transport(`127.0.0.1:${s.port}`, 's3cret');
    const r = await t.send(request(), 5_000);
    expect(r).toEqual({ ok: true, stored: true });
    const call = s.calls[0]!;
    expect(call.request).toEqual({
      ...request(),
      pprofGzip: Buffer.from([0x1f, 0x8b, 0, 1, 2, 3, 255]),
      // No job counters or holder capture in this request (their encoding: test/proto/messages.test.ts).
      jobs: null,
      holders: null,
    });
    expect(call.metadata.get('authorization')).toEqual(['Bearer s3cret']);
    expect(String(call.metadata.get('user-agent')[0])).toMatch(/^heapwatch-agent\/0\.1\.0 node\/\d+/);
    // grpc-timeout reached the server as its deadline.
    const deadlineMs = Number(call.deadline);
    expect(deadlineMs).toBeGreaterThan(Date.now() + 3_000);
    expect(deadlineMs).toBeLessThanOrEqual(Date.now() + 5_000);
    // stored=false (a recognised retry) is the proto3 default: absent on the wire.
    const s2 = await grpcServer((_c, cb) => cb(null, { stored: false }));
    expect(await transport(`127.0.0.1:${s2.port}`).send(request(), 5_000)).toEqual({ ok: true, stored: false });
  });

  it("passes on the collector's directive, and none when the collector sends none", async () => {
    const d = { precise: true, preciseForMs: 1_800_000, reason: 'site recordFailure rising' };
    const s = await grpcServer((_c, cb) => cb(null, { stored: true, directive: d }));
    expect(await transport(`127.0.0.1:${s.port}`).send(request(), 5_000)).toEqual({ ok: true, stored: true, directive: d });
    const off = await grpcServer((_c, cb) => cb(null, { stored: true, directive: { precise: false, reason: 'cleared' } }));
    expect(await transport(`127.0.0.1:${off.port}`).send(request(), 5_000)).toEqual({
      ok: true,
      stored: true,
      directive: { precise: false, preciseForMs: 0, reason: 'cleared' },
    });
  });

  it('reuses one connection across calls', async () => {
    const s = await grpcServer((_c, cb) => cb(null, { stored: true }));
    const proxy = await countingProxy(s.port);
    const t = transport(`127.0.0.1:${proxy.port}`);
    for (let i = 0; i < 5; i++) expect((await t.send(request(`p-${i}`), 5_000)).ok).toBe(true);
    expect(s.calls).toHaveLength(5);
    expect(proxy.connections()).toBe(1);
  });

  it('INVALID_ARGUMENT: code and the percent-decoded message', async () => {
    const details = 'bad pprof: 100% broken, ünïcode ✓\nsecond line';
    const s = await grpcServer((_c, cb) => cb({ code: grpc.status.INVALID_ARGUMENT, details }));
    const r = await transport(`127.0.0.1:${s.port}`).send(request(), 5_000);
    expect(r).toEqual({ ok: false, code: GrpcStatus.INVALID_ARGUMENT, details });
  });

  it('RESOURCE_EXHAUSTED: the grpc-retry-pushback-ms trailer comes back as retryAfterMs', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('grpc-retry-pushback-ms', '1234');
    const s = await grpcServer((_c, cb) => cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'busy', metadata }));
    const r = await transport(`127.0.0.1:${s.port}`).send(request(), 5_000);
    expect(r).toEqual({ ok: false, code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'busy', retryAfterMs: 1234 });
  });

  it('UNAUTHENTICATED for a missing or wrong token', async () => {
    const s = await grpcServer((call, cb) =>
      call.metadata.get('authorization')[0] === 'Bearer right'
        ? cb(null, { stored: true })
        : cb({ code: grpc.status.UNAUTHENTICATED, details: 'bad token' }),
    );
    expect(await transport(`127.0.0.1:${s.port}`, 'wrong').send(request(), 5_000)).toEqual({
      ok: false,
      code: GrpcStatus.UNAUTHENTICATED,
      details: 'bad token',
    });
    expect((await transport(`127.0.0.1:${s.port}`).send(request(), 5_000)).code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(await transport(`127.0.0.1:${s.port}`, 'right').send(request(), 5_000)).toEqual({ ok: true, stored: true });
  });

  it('DEADLINE_EXCEEDED at the deadline when the server never answers; the next call connects afresh', async () => {
    let answer = false;
    const s = await grpcServer((_c, cb) => {
      if (answer) cb(null, { stored: true }); // otherwise: never
    });
    const proxy = await countingProxy(s.port);
    const t = transport(`127.0.0.1:${proxy.port}`);
    const t0 = Date.now();
    const r = await t.send(request(), 600);
    const took = Date.now() - t0;
    expect(r.code).toBe(GrpcStatus.DEADLINE_EXCEEDED);
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(1_500);
    answer = true;
    expect(await t.send(request('p-2'), 5_000)).toEqual({ ok: true, stored: true });
    // No response headers by the deadline: that connection may be half-open
    // (a partitioned or frozen peer), so it is not trusted with the next call.
    expect(proxy.connections()).toBe(2);
  });

  it('a peer that accepts TCP but never speaks HTTP/2: DEADLINE_EXCEEDED, and that connection is abandoned', async () => {
    const sockets: net.Socket[] = [];
    const blackHole = net.createServer((sock) => {
      sockets.push(sock);
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const sock of sockets) sock.destroy();
      blackHole.close();
    });
    const t = transport(`127.0.0.1:${(blackHole.address() as net.AddressInfo).port}`);
    expect((await t.send(request(), 300)).code).toBe(GrpcStatus.DEADLINE_EXCEEDED);
    expect((await t.send(request(), 300)).code).toBe(GrpcStatus.DEADLINE_EXCEEDED);
    expect(sockets).toHaveLength(2);
  });

  it('server restart (graceful GOAWAY, then a new server on the same port): the next send reconnects', async () => {
    const first = await grpcServer((_c, cb) => cb(null, { stored: true }));
    const t = transport(`127.0.0.1:${first.port}`);
    expect((await t.send(request('before'), 5_000)).ok).toBe(true);
    await first.shutdown();
    const second = await grpcServer((_c, cb) => cb(null, { stored: true }), { port: first.port });
    expect(await t.send(request('after'), 5_000)).toEqual({ ok: true, stored: true });
    expect(second.calls.map((c) => c.request.profileId)).toEqual(['after']);
  });

  it('the collector recycling connections (grpc.max_connection_age_ms): every send succeeds on a new connection', async () => {
    const s = await grpcServer((_c, cb) => cb(null, { stored: true }), {
      options: { 'grpc.max_connection_age_ms': 200, 'grpc.max_connection_age_grace_ms': 100 },
    });
    const proxy = await countingProxy(s.port);
    const t = transport(`127.0.0.1:${proxy.port}`);
    for (let i = 0; i < 3; i++) {
      expect(await t.send(request(`p-${i}`), 5_000)).toEqual({ ok: true, stored: true });
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(proxy.connections()).toBe(3);
  });

  it('nothing listening: UNAVAILABLE at once, not at the deadline', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const t0 = Date.now();
    const r = await transport(`127.0.0.1:${port}`).send(request(), 10_000);
    expect(r.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(r.details).toMatch(/ECONNREFUSED/);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('IPv6 and dns:/// addresses', async () => {
    const v6 = await grpcServer((_c, cb) => cb(null, { stored: true }), { host: '::1' });
    expect((await transport(`[::1]:${v6.port}`).send(request(), 5_000)).ok).toBe(true);
    const v4 = await grpcServer((_c, cb) => cb(null, { stored: true }));
    expect((await transport(`dns:///localhost:${v4.port}`).send(request(), 5_000)).ok).toBe(true);
  });

  it('close() cancels the call in flight and later sends', async () => {
    const s = await grpcServer(() => {});
    const t = transport(`127.0.0.1:${s.port}`);
    const pending = t.send(request(), 10_000);
    await new Promise((r) => setTimeout(r, 200));
    t.close();
    expect((await pending).code).toBe(GrpcStatus.CANCELLED);
    expect((await t.send(request(), 1_000)).code).toBe(GrpcStatus.CANCELLED);
  });
});

describe('Http2Transport against a non-gRPC HTTP/2 server', () => {
  async function http2Server(respond: (stream: http2.ServerHttp2Stream) => void): Promise<number> {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.resume();
      stream.on('end', () => respond(stream));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => server.close());
    return (server.address() as net.AddressInfo).port;
  }

  it.each([
    [503, GrpcStatus.UNAVAILABLE],
    [401, GrpcStatus.UNAUTHENTICATED],
    [404, GrpcStatus.UNIMPLEMENTED],
    [500, GrpcStatus.UNKNOWN],
  ])('HTTP %i maps to gRPC code %i', async (httpStatus, code) => {
    const port = await http2Server((stream) => stream.respond({ ':status': httpStatus }, { endStream: true }));
    expect((await transport(`127.0.0.1:${port}`).send(request(), 5_000)).code).toBe(code);
  });

  it('trailers-only status in the response headers', async () => {
    const port = await http2Server((stream) =>
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '7', 'grpc-message': 'no%20entry' },
        { endStream: true },
      ),
    );
    expect(await transport(`127.0.0.1:${port}`).send(request(), 5_000)).toEqual({
      ok: false,
      code: GrpcStatus.PERMISSION_DENIED,
      details: 'no entry',
    });
  });

  it('a stream reset without a status is UNAVAILABLE (retryable)', async () => {
    const port = await http2Server((stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    expect((await transport(`127.0.0.1:${port}`).send(request(), 5_000)).code).toBe(GrpcStatus.UNAVAILABLE);
  });

  it('an oversized response is refused rather than buffered', async () => {
    const port = await http2Server((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(Buffer.alloc(1024 * 1024));
    });
    expect((await transport(`127.0.0.1:${port}`).send(request(), 5_000)).code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
  });
});

describe('gRPC wire helpers', () => {
  it('status numbers are the spec values grpc-js uses', () => {
    for (const [name, value] of Object.entries(GrpcStatus)) {
      expect(grpc.status[name as keyof typeof grpc.status], name).toBe(value);
    }
    expect(statusFromHttp(429)).toBe(GrpcStatus.UNAVAILABLE);
  });

  it('grpc-timeout: at most 8 digits, rounded up', () => {
    expect(encodeTimeout(10_000)).toBe('10000m');
    expect(encodeTimeout(0.2)).toBe('1m');
    expect(encodeTimeout(99_999_999)).toBe('99999999m');
    expect(encodeTimeout(100_000_000)).toBe('100000S');
  });

  it('grpc-message: percent-decoded; a malformed escape is kept as is', () => {
    expect(decodeGrpcMessage('a%20b%E2%9C%93')).toBe('a b✓');
    expect(decodeGrpcMessage('100%')).toBe('100%');
  });

  it('message framing round-trips and rejects what a unary reply cannot be', () => {
    const framed = frameMessage(Buffer.from([1, 2, 3]));
    expect([...framed]).toEqual([0, 0, 0, 0, 3, 1, 2, 3]);
    expect(unframeSingleMessage(framed)).toEqual({ message: Buffer.from([1, 2, 3]) });
    expect(unframeSingleMessage(Buffer.from([1, 0, 0, 0, 0]))).toHaveProperty('error');
    expect(unframeSingleMessage(framed.subarray(0, 6))).toHaveProperty('error');
    expect(unframeSingleMessage(Buffer.alloc(2))).toHaveProperty('error');
  });

  it('collector addresses', () => {
    expect(parseCollectorAddress('h:1')).toEqual({ host: 'h', port: 1 });
    expect(parseCollectorAddress('[::1]:7801')).toEqual({ host: '[::1]', port: 7801 });
    expect(parseCollectorAddress('dns:///collector.svc:7801')).toEqual({ host: 'collector.svc', port: 7801 });
    expect(parseCollectorAddress('dns://8.8.8.8/collector:7801')).toBeUndefined();
    expect(parseCollectorAddress('h:0')).toBeUndefined();
    expect(parseCollectorAddress('h')).toBeUndefined();
  });
});
