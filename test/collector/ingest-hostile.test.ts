/**
 * The ingest path against hostile and unlucky input, over real gRPC into a
 * real collector on a real embedded store: the right status code for each
 * kind of bad request, one bad profile failing alone, load shed with a retry
 * hint, and work whose caller gave up dropped before it is stored.
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestProto, type IngestRequest, type IngestServiceClient } from '@heapwatch/proto';
import { startCollector, type Collector } from '../../collector/src';
import { Batcher } from '../../collector/src/store/batcher';
import type { ClickHouseStore } from '../../collector/src/store/clickhouse';
import type { StackRow } from '../../collector/src/store/store';
import { RefusedByStoreError } from '../../collector/src/store/insert-errors';
import { CLI, tempDir } from '../helpers/collector';
import { buildProfile, gzipProfile, type TestStack } from '../helpers/pprof';
import { spawnSync } from 'node:child_process';

const DAY = 86_400_000;
// chDB opens one data directory per process: one collector at a time, each closed before the next.
let open: { close(): unknown }[] = [];
async function closeOpen(): Promise<void> {
  for (const o of open.reverse()) await o.close();
  open = [];
}
afterAll(closeOpen);

async function collectorWith(opts: Parameters<typeof startCollector>[0] = {}): Promise<{ collector: Collector; client: IngestServiceClient }> {
  await closeOpen();
  const collector = await startCollector({ grpcPort: 0, httpPort: 0, dataDir: tempDir('hostile'), logLevel: 'silent', retentionDays: 0, ...opts });
  const client = new (ingestProto().heapwatch.v1.IngestService)(`127.0.0.1:${collector.grpcPort}`, grpc.credentials.createInsecure());
  open.push(collector, client);
  return { collector, client };
}

let nextId = 0;
function request(over: Partial<IngestRequest> & { stacks?: TestStack[] } = {}): IngestRequest {
  const { stacks, ...rest } = over;
  return {
    profileId: `h-${++nextId}`,
    service: 'hostile',
    instance: { hostname: 'host', pid: 7, processStartTimeMs: Date.UTC(2020, 0, 1), threadId: 0 },
    startTimeMs: Date.now() - 1000,
    endTimeMs: Date.now(),
    pprofGzip: gzipProfile(buildProfile(stacks ?? [{ frames: [['leaf', '/app/a.js', 1], ['main', '/app/main.js', 5]], objects: 1, bytes: 100 }])),
    ...rest,
  };
}

function send(client: IngestServiceClient, req: IngestRequest, deadlineMs = 30_000): Promise<grpc.ServiceError | undefined> {
  return new Promise((resolve) => client.Ingest(req, { deadline: Date.now() + deadlineMs }, (err) => resolve(err ?? undefined)));
}

/**
 * An Ingest call over bare HTTP/2, as the agent's transport makes it:
 * `timeout` is the grpc-timeout header (none: no deadline); without `body`
 * only the headers are sent. `done` has the status and retry hint.
 */
function rawCall(session: http2.ClientHttp2Session, { timeout, body }: { timeout?: string; body?: Buffer }) {
  const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': '/heapwatch.v1.IngestService/Ingest', 'content-type': 'application/grpc', te: 'trailers' };
  if (timeout) headers['grpc-timeout'] = timeout;
  const stream = session.request(headers, { endStream: false });
  const done = new Promise<{ status?: string; pushback?: string }>((resolve) => {
    const out: { status?: string; pushback?: string } = {};
    const read = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) out.status = String(h['grpc-status']);
      if (h['grpc-retry-pushback-ms'] !== undefined) out.pushback = String(h['grpc-retry-pushback-ms']);
    };
    stream.on('response', read);
    stream.on('trailers', read);
    stream.on('error', () => {});
    stream.on('close', () => resolve(out));
    stream.resume();
  });
  if (body) {
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(body.length, 1);
    stream.write(frame);
    stream.end(body);
  }
  return { stream, done };
}

async function waitFor(ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function metrics(c: Collector): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${c.httpPort}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^heapwatch_(\w+) (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** Reads the tables directly (the embedded store), to check what was written. */
function inspect<T>(c: Collector, query: string): Promise<T[]> {
  return (c.store as ClickHouseStore).inspect<T>(query);
}

async function storedIds(c: Collector, service: string): Promise<string[]> {
  const rows = await inspect<{ profile_id: string }>(c, `SELECT profile_id FROM profiles WHERE service = '${service}' ORDER BY profile_id`);
  return rows.map((r) => r.profile_id);
}

describe('status codes for bad requests', () => {
  let c: Collector;
  let client: IngestServiceClient;
  beforeAll(async () => ({ collector: c, client } = await collectorWith()));

  it('a request that is not an IngestRequest is INVALID_ARGUMENT (the agent drops it), not INTERNAL (it retried for ever)', async () => {
    // Wire type 7 does not exist (protobufjs reads past a length that runs off the end, but not this).
    const garbage = Buffer.from([0x0f]);
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest('/heapwatch.v1.IngestService/Ingest', (b: Buffer) => b, (b: Buffer) => b, garbage, (e) => resolve(e)),
    );
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/does not decode as heapwatch.v1.IngestRequest/);
    expect((await metrics(c)).requests_undecodable_total).toBeGreaterThanOrEqual(1);
  });

  it('HTTP from/to outside the times the store holds are 400, not 500', async () => {
    await send(client, request());
    for (const q of ['from=99999999999999999', 'to=-99999999999999', 'from=275760-09-13T00:00:00Z']) {
      const res = await fetch(`http://127.0.0.1:${c.httpPort}/api/v1/profile?service=hostile&${q}`);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/outside the times the store holds|neither/);
    }
  });

  it.each([
    ['is a file', () => {
      const f = `${tempDir('file')}/not-a-dir`;
      fs.writeFileSync(f, '');
      return f;
    }, /is a file, not a directory/],
    ['is under /proc', () => '/proc/heapwatch-data', /proc pseudo-filesystem/],
  ])('--data that %s: a clear error within seconds, not EEXIST or a spinning process', (_name, dir, message) => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [CLI, 'serve', '--data', dir(), '--grpc-port', '0', '--http-port', '0'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});

describe('failure isolation', () => {
  // These send more at once than a fresh collector admits before any
  // completes (admission's minInFlight, 16): raised, as this is about the store.
  it('a profile with a negative line fails alone with INVALID_ARGUMENT; the 20 sent with it are stored', async () => {
    const { collector, client } = await collectorWith({ admission: { minInFlight: 200 } });
    const good = Array.from({ length: 20 }, (_, i) => request({ service: 'mates', profileId: `good-${i}` }));
    const bad = request({ service: 'mates', profileId: 'bad', stacks: [{ frames: [['f', '/a.js', -1]], objects: 1, bytes: 1 }] });
    const results = await Promise.all([...good, bad].map((r) => send(client, r)));
    expect(results.slice(0, 20)).toEqual(new Array(20).fill(undefined));
    expect(results[20]?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(results[20]?.details).toMatch(/line -1/);
    expect(await storedIds(collector, 'mates')).toHaveLength(20);
  });

  it('110 profiles on 110 different days, sent at once, are all stored (the store allows 100 partitions an insert)', async () => {
    const { collector, client } = await collectorWith({ ingest: { batch: { maxDelayMs: 500 } }, admission: { minInFlight: 200 } });
    const now = Date.now();
    const reqs = Array.from({ length: 110 }, (_, d) => request({ service: 'days', profileId: `day-${d}`, startTimeMs: now - (d + 1) * DAY - 1000, endTimeMs: now - (d + 1) * DAY }));
    const results = await Promise.all(reqs.map((r) => send(client, r, 60_000)));
    expect(results.filter(Boolean).map((e) => e!.details)).toEqual([]);
    expect(await storedIds(collector, 'days')).toHaveLength(110);
  });

  it('times outside the retention are refused by the validator, before the store sees them', async () => {
    const { client } = await collectorWith({ retentionDays: 7 });
    const err = await send(client, request({ startTimeMs: Date.now() - 30 * DAY - 1000, endTimeMs: Date.now() - 30 * DAY }));
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/outside the retention/);
  });

  it('the batcher splits a batch the store refuses for its rows until only the bad caller fails (real engine)', async () => {
    const { collector } = await collectorWith();
    const inserts: number[] = [];
    const batcher = new Batcher<StackRow>(
      async (rows) => {
        inserts.push(rows.length);
        await collector.store.writeStacks(rows);
      },
      { maxBatchRows: 1_000_000, maxDelayMs: 100, maxPendingRows: 1_000_000, concurrency: 1 },
    );
    const row = (id: number, line: number): StackRow => ({ tenant: '', service: 'split', id: String(id), frames: [{ function: 'f', file: '/a.js', line }], lastSeenMs: Date.now() });
    const results = await Promise.allSettled(Array.from({ length: 21 }, (_, i) => batcher.add([row(i + 1, i === 13 ? -1 : 3)])));
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 21 }, (_, i) => (i === 13 ? 'rejected' : 'fulfilled')));
    expect((results[13] as PromiseRejectedResult).reason).toBeInstanceOf(RefusedByStoreError);
    expect(batcher.isolatedFailures).toBe(1);
    // 1 whole batch, then halves down to the one: about 2 log2(21) inserts, not 21.
    expect(inserts.length).toBeLessThanOrEqual(12);
    const [n] = await inspect<{ n: string }>(collector, "SELECT count() AS n FROM stacks WHERE service = 'split'");
    expect(Number(n!.n)).toBe(20);
  });
});

describe('load shedding and deadlines', () => {
  it('beyond the requests in flight: RESOURCE_EXHAUSTED at once, with a retry hint in grpc-retry-pushback-ms', async () => {
    const { collector, client } = await collectorWith({ admission: { maxInFlightRequests: 1 } });
    const errors = await new Promise<grpc.ServiceError[]>((resolve) => {
      const out: grpc.ServiceError[] = [];
      let left = 20;
      for (let i = 0; i < 20; i++) {
        client.Ingest(request({ service: 'shed' }), { deadline: Date.now() + 30_000 }, (err) => {
          if (err) out.push(err);
          if (--left === 0) resolve(out);
        });
      }
    });
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) {
      expect(e.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      const hint = Number(e.metadata.get('grpc-retry-pushback-ms')[0]);
      expect(hint).toBeGreaterThanOrEqual(250);
      expect(hint).toBeLessThanOrEqual(30_000);
    }
    const m = await metrics(collector);
    expect(m.requests_shed_total).toBe(errors.length);
    expect(await storedIds(collector, 'shed')).toHaveLength(20 - errors.length);
    expect(m.requests_in_flight).toBe(0);
  });

  it('a call whose body never arrives is released at its deadline, not counted in flight for ever', async () => {
    const { collector } = await collectorWith({ admission: { maxInFlightRequests: 2 } });
    const session = http2.connect(`http://127.0.0.1:${collector.grpcPort}`);
    // Headers only, with a 300 ms deadline; the body never comes.
    const streams = [0, 1].map(() => {
      const st = session.request({ ':method': 'POST', ':path': '/heapwatch.v1.IngestService/Ingest', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m' }, { endStream: false });
      st.on('error', () => {});
      return st;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect((await metrics(collector)).requests_in_flight).toBe(2);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await metrics(collector)).requests_in_flight).toBe(0);
    for (const st of streams) st.close();
    session.close();
    // And the collector takes profiles again.
    expect(await send(new (ingestProto().heapwatch.v1.IngestService)(`127.0.0.1:${collector.grpcPort}`, grpc.credentials.createInsecure()), request({ service: 'after-stall' }))).toBeUndefined();
  });

  it('a refused call is told to stop sending its body: 40 refused 2 MiB uploads cost a fraction of their bytes', async () => {
    // Without RST_STREAM(NO_ERROR) after the refusal, every refused agent
    // sent its whole profile, and at 2,000 agents the bodies of refused
    // calls took the bandwidth the admitted ones needed (bench part 3b).
    const { collector } = await collectorWith({ admission: { maxInFlightRequests: 1 } });
    const session = http2.connect(`http://127.0.0.1:${collector.grpcPort}`, { maxSessionMemory: 1024 });
    session.on('error', () => {});
    const holder = rawCall(session, { timeout: '60S' });
    await waitFor(async () => (await metrics(collector)).requests_in_flight === 1);
    const body = Buffer.alloc(2 << 20, 7);
    const refused = await Promise.all(Array.from({ length: 40 }, () => rawCall(session, { timeout: '30S', body }).done));
    for (const r of refused) {
      expect(r.status).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
      expect(Number(r.pushback)).toBeGreaterThanOrEqual(250);
    }
    // 80 MiB offered; each refused stream sends at most what was in flight before the reset.
    expect(session.socket.bytesWritten).toBeLessThan(20 << 20);
    expect((await metrics(collector)).requests_body_stopped_total).toBeGreaterThanOrEqual(40);
    holder.stream.close(http2.constants.NGHTTP2_CANCEL);
    session.close();
  });

  it('admission capacity comes back from 300 calls that expire, are cancelled or never send a body', async () => {
    // Count-based: however the 300 end, every one admitted is given back,
    // and a call with no deadline that never sends its body is let go after
    // maxHoldMs instead of holding its slot for ever.
    const { collector, client } = await collectorWith({ admission: { maxInFlightRequests: 16, maxHoldMs: 1500 } });
    const session = http2.connect(`http://127.0.0.1:${collector.grpcPort}`, { maxSessionMemory: 1024 });
    session.on('error', () => {});
    const calls = Array.from({ length: 300 }, (_, i) => {
      if (i % 3 === 0) return rawCall(session, { timeout: '400m' }); // its deadline passes
      if (i % 3 === 1) return rawCall(session, {}); // no deadline, no body
      const c = rawCall(session, { timeout: '60S' }); // the caller cancels
      setImmediate(() => c.stream.close(http2.constants.NGHTTP2_CANCEL));
      return c;
    });
    await waitFor(async () => (await metrics(collector)).requests_in_flight === 0, 60_000);
    const m = await metrics(collector);
    // The 200 that send their headers and wait all reach admission; a cancelled
    // one may be gone before its headers are looked at.
    expect(m.requests_admitted_total + m.requests_shed_total).toBeGreaterThanOrEqual(200);
    expect(m.requests_admitted_total + m.requests_shed_total).toBeLessThanOrEqual(300);
    expect(m.requests_admitted_total).toBeGreaterThanOrEqual(16);
    expect(m.requests_abandoned_total).toBe(m.requests_admitted_total);
    for (const c of calls) c.stream.close(http2.constants.NGHTTP2_CANCEL);
    session.close();
    // All 16 slots are free: 16 profiles at once are all stored.
    const errors = await Promise.all(Array.from({ length: 16 }, (_, i) => send(client, request({ service: 'after-churn', profileId: `churn-${i}` }))));
    expect(errors.filter(Boolean)).toEqual([]);
    expect(await storedIds(collector, 'after-churn')).toHaveLength(16);
    expect((await metrics(collector)).requests_in_flight).toBe(0);
  });

  it('Pyroscope /ingest shares the gRPC admission: refused with 429 and Retry-After while gRPC holds the capacity', async () => {
    const { collector } = await collectorWith({ admission: { maxInFlightRequests: 1 } });
    const session = http2.connect(`http://127.0.0.1:${collector.grpcPort}`);
    session.on('error', () => {});
    const holder = rawCall(session, { timeout: '60S' });
    await waitFor(async () => (await metrics(collector)).requests_in_flight === 1);
    const url = `http://127.0.0.1:${collector.httpPort}/ingest?name=pyro-shared`;
    const heap = gzipProfile(buildProfile([{ frames: [['leaf', '/app/a.js', 1]], objects: 1, bytes: 100 }]));
    const res = await fetch(url, { method: 'POST', body: heap });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await res.json()) as { error: string }).error).toMatch(/at capacity/);
    expect((await metrics(collector)).requests_shed_total).toBe(1);
    holder.stream.close(http2.constants.NGHTTP2_CANCEL);
    session.close();
    await waitFor(async () => (await metrics(collector)).requests_in_flight === 0);
    const ok = await fetch(url, { method: 'POST', body: heap });
    expect(ok.status, await ok.text()).toBe(200);
    expect((await metrics(collector)).requests_in_flight).toBe(0);
  });

  it('a profile whose caller gave up before its batch was written is dropped and counted, not stored', async () => {
    // Batches wait 3 s; the caller's deadline is 1 s.
    const { collector, client } = await collectorWith({ ingest: { batch: { maxDelayMs: 3000 } } });
    const err = await send(client, request({ service: 'late', profileId: 'late-1' }), 1000);
    expect(err?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await collector.ingester.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect((await metrics(collector)).requests_expired_total).toBe(1);
    expect(await storedIds(collector, 'late')).toEqual([]);
  });
});
