/**
 * The collector's write and read paths against a real embedded ClickHouse,
 * over real gRPC and HTTP: validation, retries, the merge arithmetic, label
 * filters, and the exported pprof.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { Profile } from 'pprof-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestProto, type IngestRequest, type IngestServiceClient } from '@heapwatch/proto';
import { startCollector, type Collector } from '../../collector/src';
import { getJson, tempDir } from '../helpers/collector';
import { buildProfile, gzipProfile, type TestStack } from '../helpers/pprof';

let collector: Collector;
let client: IngestServiceClient;
let base: string;

beforeAll(async () => {
  collector = await startCollector({
    grpcPort: 0,
    httpPort: 0,
    dataDir: tempDir('ingest'),
    logLevel: 'silent',
    ingest: { limits: { maxProfileBytes: 1 << 20 } },
  });
  const Client = ingestProto().heapwatch.v1.IngestService;
  client = new Client(`127.0.0.1:${collector.grpcPort}`, grpc.credentials.createInsecure());
  base = `http://127.0.0.1:${collector.httpPort}`;
});

afterAll(async () => {
  client?.close();
  await collector?.close();
});

let nextId = 0;
function request(over: Partial<IngestRequest> & { stacks?: TestStack[] } = {}): IngestRequest {
  const { stacks, ...rest } = over;
  return {
    profileId: `p-${++nextId}`,
    service: 'billing-worker',
    labels: { env: 'test' },
    instance: { hostname: 'host-a', pid: 100, processStartTimeMs: 1_700_000_000_000, threadId: 0, runtimeVersion: 'v20', agentVersion: 'test' },
    startTimeMs: Date.now() - 1000,
    endTimeMs: Date.now(),
    pprofGzip: gzipProfile(buildProfile(stacks ?? [{ frames: [['leaf', '/app/a.js', 1], ['main', '/app/main.js', 5]], objects: 10, bytes: 1000 }])),
    memory: { rssBytes: 100 << 20, heapUsedBytes: 50 << 20, heapTotalBytes: 60 << 20, externalBytes: 1 << 20, arrayBuffersBytes: 1 << 10, heapSizeLimitBytes: 4 << 30 },
    agent: { profilesSent: 1 },
    ...rest,
  };
}

function send(req: IngestRequest): Promise<{ stored: boolean }> {
  return new Promise((resolve, reject) =>
    client.Ingest(req, { deadline: Date.now() + 30_000 }, (err, res) => (err ? reject(err) : resolve({ stored: res!.stored }))),
  );
}

async function rejection(req: IngestRequest): Promise<grpc.ServiceError> {
  const err = await send(req).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  expect(err, 'the collector accepted a bad profile').toBeDefined();
  return err!;
}

describe('ingest validation', () => {
  it.each([
    ['garbage bytes', { pprofGzip: Buffer.from('not a profile at all') }, /does not decode/],
    ['broken gzip', { pprofGzip: Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(20, 7)]) }, /not valid gzip/],
    ['missing service', { service: '' }, /service is required/],
    ['missing instance', { instance: null }, /instance is required/],
    // Both ends fixed: a default end of "now" would pass a start 10 s after load time once the suite is slow.
    ['start after end', { startTimeMs: Date.now() - 50_000, endTimeMs: Date.now() - 60_000 }, /start_time_ms is after end_time_ms/],
    ['cpu sample types', { pprofGzip: gzipProfile(buildProfile([{ frames: [['f', '/a.js', 1]], objects: 1, bytes: 1 }], [['samples', 'count'], ['cpu', 'nanoseconds']])) }, /objects\/count and space\/bytes/],
    ['gzip bomb', { pprofGzip: zlib.gzipSync(Buffer.alloc(4 << 20)) }, /limit once decompressed/],
    ['bad label key', { labels: { 'has space': 'x' } }, /label key/],
  ])('%s gets INVALID_ARGUMENT saying what is wrong', async (_name, over, message) => {
    const err = await rejection(request(over as Partial<IngestRequest>));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(message);
  });

  it('rejects a sample that points at a location the profile does not define', async () => {
    const p = buildProfile([{ frames: [['f', '/a.js', 1]], objects: 1, bytes: 8 }]);
    p.sample[0]!.locationId = [99];
    const err = await rejection(request({ pprofGzip: gzipProfile(p) }));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/location 99/);
  });

  it('stores a retried profile once', async () => {
    const req = request({ service: 'retry-worker' });
    expect(await send(req)).toEqual({ stored: true });
    expect(await send(req)).toEqual({ stored: false });
    const { body } = await getJson<{ service: string; profiles: number }[]>(`${base}/api/v1/services`);
    expect(body.find((s) => s.service === 'retry-worker')?.profiles).toBe(1);
  });
});

describe('GET /metrics', () => {
  it('counts what the write path stored, recognised as retries and rejected, in Prometheus text', async () => {
    const read = async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return Object.fromEntries([...text.matchAll(/^heapwatch_(\w+) (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
    };
    const before = await read();
    const req = request({ service: 'metrics-worker' });
    await send(req);
    await send(req);
    await rejection(request({ service: '' }));
    const after = await read();
    expect(after.profiles_stored_total! - before.profiles_stored_total!).toBe(1);
    expect(after.profiles_duplicate_total! - before.profiles_duplicate_total!).toBe(1);
    expect(after.profiles_rejected_total! - before.profiles_rejected_total!).toBe(1);
    expect(after.store_pending_rows).toBe(0);
    expect(after.collector_rss_bytes).toBeGreaterThan(0);
  });
});

describe('merged profiles', () => {
  const t0 = Date.now() - 60_000;
  const hot = [['retain', '/app/retry.js', 12], ['tick', '/app/loop.js', 3]] as TestStack['frames'];
  const cold = [['parse', '/app/job.js', 40], ['tick', '/app/loop.js', 3]] as TestStack['frames'];
  const instA = { hostname: 'host-a', pid: 1, processStartTimeMs: t0 - 1000, threadId: 0, runtimeVersion: 'v20', agentVersion: 't' };
  const instB = { ...instA, hostname: 'host-b', threadId: 3 };

  beforeAll(async () => {
    // Instance A: two snapshots, hot = 1000 then 3000 (average 2000).
    // Instance B: one snapshot, hot = 500. Merged hot = 2000 + 500.
    await send(request({ service: 'merge', instance: instA, labels: { env: 'dev' }, startTimeMs: t0 - 10_000, endTimeMs: t0, stacks: [{ frames: hot, objects: 1, bytes: 1000 }, { frames: cold, objects: 4, bytes: 400 }] }));
    await send(request({ service: 'merge', instance: instA, labels: { env: 'dev' }, startTimeMs: t0, endTimeMs: t0 + 10_000, stacks: [{ frames: hot, objects: 3, bytes: 3000 }, { frames: cold, objects: 4, bytes: 400 }] }));
    await send(request({ service: 'merge', instance: instB, labels: { env: 'prod' }, startTimeMs: t0, endTimeMs: t0 + 5_000, stacks: [{ frames: hot, objects: 1, bytes: 500 }] }));
  });

  async function fetchProfile(query: string): Promise<Profile> {
    const res = await fetch(`${base}/api/v1/profile?service=merge&from=${t0 - 1}&to=${t0 + 20_000}${query}`);
    expect(res.status).toBe(200);
    return Profile.decode(zlib.gunzipSync(Buffer.from(await res.arrayBuffer())));
  }

  function bytesByLeaf(p: Profile): Record<string, number> {
    const s = p.stringTable.strings;
    const fnName = new Map(p.function.map((f) => [String(f.id), s[Number(f.name)]!]));
    const leafOf = new Map(p.location.map((l) => [String(l.id), fnName.get(String(l.line[0]!.functionId))!]));
    const bytesIndex = p.sampleType.findIndex((t) => s[Number(t.type)] === 'space');
    const out: Record<string, number> = {};
    for (const sample of p.sample) {
      const leaf = leafOf.get(String(sample.locationId[0]))!;
      out[leaf] = (out[leaf] ?? 0) + Number(sample.value[bytesIndex]);
    }
    return out;
  }

  it('averages each instance over time and sums the instances', async () => {
    const p = await fetchProfile('');
    const s = p.stringTable.strings;
    expect(p.sampleType.map((t) => `${s[Number(t.type)]}/${s[Number(t.unit)]}`)).toEqual(['objects/count', 'space/bytes']);
    expect(bytesByLeaf(p)).toEqual({ retain: 2500, parse: 400 });
  });

  it('filters by label', async () => {
    expect(bytesByLeaf(await fetchProfile('&label.env=prod'))).toEqual({ retain: 500 });
    expect(bytesByLeaf(await fetchProfile('&label.env=nope'))).toEqual({});
  });

  it('filters by thread and instance, which the agent sends as instance fields, not labels', async () => {
    expect(bytesByLeaf(await fetchProfile('&label.thread=3'))).toEqual({ retain: 500 });
    expect(bytesByLeaf(await fetchProfile('&label.thread=0'))).toEqual({ retain: 2000, parse: 400 });
    expect(bytesByLeaf(await fetchProfile('&label.thread=main'))).toEqual({});
    expect(bytesByLeaf(await fetchProfile(`&label.instance=${encodeURIComponent(`host-b:1:3:${t0 - 1000}`)}`))).toEqual({ retain: 500 });
    expect(bytesByLeaf(await fetchProfile('&label.instance=host-b&label.env=prod'))).toEqual({});
  });

  it('lists the service with its instances and profiles', async () => {
    const { body } = await getJson<{ service: string; instances: number; profiles: number; firstSeen: string; lastSeen: string }[]>(`${base}/api/v1/services`);
    const merge = body.find((x) => x.service === 'merge');
    expect(merge).toMatchObject({ instances: 2, profiles: 3, firstSeen: new Date(t0).toISOString(), lastSeen: new Date(t0 + 10_000).toISOString() });
  });

  it('answers 4xx with a JSON error for bad requests', async () => {
    for (const [query, status, message] of [
      ['service=nope', 404, /unknown service/],
      ['', 400, /service is required/],
      ['service=merge&from=yesterday', 400, /ISO 8601/],
      ['service=merge&from=2000&to=1000', 400, /from is after to/],
      ['service=merge&bogus=1', 400, /unknown parameter/],
    ] as const) {
      const { status: got, body } = await getJson<{ error: string }>(`${base}/api/v1/profile?${query}`);
      expect(got, query).toBe(status);
      expect(body.error).toMatch(message);
    }
  });

  const go = spawnSync('go', ['version']).status === 0;
  it.skipIf(!go)('opens in go tool pprof (skipped where go is not on the PATH)', async () => {
    const res = await fetch(`${base}/api/v1/profile?service=merge&from=${t0 - 1}&to=${t0 + 20_000}`);
    const file = path.join(tempDir('pprof'), 'heap.pb.gz');
    fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const top = execFileSync('go', ['tool', 'pprof', '-top', '-sample_index=space', file], { encoding: 'utf8' });
    expect(top).toMatch(/retain/);
    expect(top).toMatch(/2\.44kB|2500B/);
  });
});
