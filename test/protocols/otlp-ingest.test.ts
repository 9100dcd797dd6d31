/**
 * OpenTelemetry profiles write to heapwatch. Requests built from
 * proto/otlp/ with protobufjs, as an OTel SDK builds them, are sent over
 * real gRPC (ProfilesService/Export on the ingest port) and real HTTP
 * (binary protobuf and OTLP/JSON) to a real collector: the heap snapshots
 * are stored, listed, exported as pprof (read back by go tool pprof where
 * go is installed) and judged by the detector; what cannot be mapped gets
 * 400 / INVALID_ARGUMENT with a message, and nothing of it is stored.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startCollectorProcess, tempDir, waitFor, type RunningCollector } from '../helpers/collector';
import { exported, FOREIGN_STACKS as STACKS, FOREIGN_STACKS_BYTES as TOTAL_BYTES, services } from '../helpers/exported';
import { encodeRequest, exportClient, heapRequest, jsonRequest, ResponseType, StatusType, type SnapshotSpec } from '../helpers/otlp';
import { rng } from '../leaks/synthetic';

function postOtlp(base: string, body: BodyInit, opts: { json?: boolean; path?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  return fetch(`${base}${opts.path ?? '/v1development/profiles'}`, {
    method: 'POST',
    headers: { 'content-type': opts.json ? 'application/json' : 'application/x-protobuf', ...opts.headers },
    body,
  });
}

/** A refused HTTP request: its status and its google.rpc.Status message. */
async function refusal(res: Response): Promise<{ status: number; code: number; message: string }> {
  const buf = Buffer.from(await res.arrayBuffer());
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json');
  const s = json ? (JSON.parse(buf.toString()) as { code: number; message: string }) : (StatusType().toObject(StatusType().decode(buf)) as { code: number; message: string });
  return { status: res.status, code: s.code, message: s.message };
}

const snap = (timeMs: number, extra: Partial<SnapshotSpec> = {}): SnapshotSpec => ({ timeMs, stacks: STACKS, ...extra });

describe('OpenTelemetry profiles -> heapwatch', () => {
  let collector: RunningCollector;
  let base: string;
  const t0 = Date.now() - 60_000;

  beforeAll(async () => {
    collector = await startCollectorProcess({ args: ['--leak-interval-ms', '0', '--leak-min-growth-ms', '10000'] });
    base = collector.httpUrl;
  });

  afterAll(async () => {
    await collector?.stop();
  });

  it('gRPC ProfilesService/Export: stored, listed with its resource attributes as labels, exported with its functions', async () => {
    const client = exportClient(collector.grpcAddress);
    try {
      const req = heapRequest({ 'service.name': 'otlp-grpc', 'host.name': 'node-7', 'process.pid': 4242, 'deployment.environment': 'test' }, [snap(t0), snap(t0 + 1000)]);
      const answer = await client.export(encodeRequest(req));
      expect(answer.partialSuccess ?? null).toBeNull();
      // A retry of the same request is stored once.
      await client.export(encodeRequest(req));
    } finally {
      client.close();
    }
    const entry = await waitFor('otlp-grpc listed', async () => (await services(base)).find((s) => s.service === 'otlp-grpc' && s.profiles >= 2));
    expect(entry).toMatchObject({ instances: 1, profiles: 2 });
    const labelled = await fetch(`${base}/api/v1/profile?service=otlp-grpc&from=0&label.deployment.environment=test&label.process.pid=4242`);
    expect(Number(labelled.headers.get('x-heapwatch-profiles'))).toBe(2);
    // A heap profile is a gauge: the two snapshots of one instance average, they do not add up.
    const { bytes, objects, byFunction } = await exported(base, 'otlp-grpc');
    expect(bytes).toBe(TOTAL_BYTES);
    expect(objects).toBe(15);
    expect(byFunction).toMatchObject({ allocBuffer: 40_960, 'json.Unmarshal': 1_024, 'main.handle': TOTAL_BYTES });
  });

  it('HTTP, binary protobuf: stored; a Go heap snapshot\'s allocation profiles are left out and counted in partial_success', async () => {
    const go = snap(t0, {
      profiles: [
        { type: ['alloc_objects', 'count'], value: (s) => 100 * s.objects },
        { type: ['alloc_space', 'bytes'], value: (s) => 100 * s.bytes },
        { type: ['inuse_objects', 'count'], value: (s) => s.objects },
        { type: ['inuse_space', 'bytes'], value: (s) => s.bytes },
      ],
    });
    const res = await postOtlp(base, encodeRequest(heapRequest({ 'service.name': 'otlp-http-go', 'service.instance.id': 'a1b2' }, [go])));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    const answer = ResponseType().toObject(ResponseType().decode(Buffer.from(await res.arrayBuffer())), { longs: Number });
    expect(answer.partialSuccess).toEqual({ rejectedProfiles: 2, errorMessage: expect.stringMatching(/allocation profile.*not stored/) });
    await waitFor('otlp-http-go listed', async () => (await services(base)).find((s) => s.service === 'otlp-http-go'));
    const { bytes, objects } = await exported(base, 'otlp-http-go');
    expect(bytes).toBe(TOTAL_BYTES); // in-use, not 100x allocated
    expect(objects).toBe(15);
  });

  it('HTTP, OTLP/JSON on /v1/profiles, gzipped: stored; without an objects profile the objects are 0', async () => {
    const req = heapRequest({ 'service.name': 'otlp-json' }, [snap(t0, { profiles: [{ type: ['space', 'bytes'], value: (s) => s.bytes }] })]);
    const res = await postOtlp(base, zlib.gzipSync(jsonRequest(req)), { json: true, path: '/v1/profiles', headers: { 'content-encoding': 'gzip' } });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({});
    await waitFor('otlp-json listed', async () => (await services(base)).find((s) => s.service === 'otlp-json'));
    const { bytes, objects } = await exported(base, 'otlp-json');
    expect(bytes).toBe(TOTAL_BYTES);
    expect(objects).toBe(0);
  });

  const go = spawnSync('go', ['version']).status === 0;
  it.skipIf(!go)('the export opens in go tool pprof (skipped where go is not on the PATH)', async () => {
    const file = path.join(tempDir('otlp-pprof'), 'heap.pb.gz');
    fs.writeFileSync(file, (await exported(base, 'otlp-grpc')).raw);
    const top = execFileSync('go', ['tool', 'pprof', '-top', '-sample_index=space', file], { encoding: 'utf8' });
    expect(top).toMatch(/allocBuffer/);
    expect(top).toMatch(/40(\.96)?kB|40960B/);
  });

  it('the detector judges OTLP services: a steady leak is flagged once 240 snapshots show it, not before', async () => {
    // One snapshot a second for 260 seconds: a cache that keeps 64 KiB a
    // second beside a flat pool, and no GC information (OTLP carries none).
    // The collector's minimum growth time is 10 s here (beforeAll): its
    // default, 13 minutes, is longer than this whole series.
    const r = rng(5);
    const snapshots = (n: number): SnapshotSpec[] =>
      Array.from({ length: n }, (_, i) => ({
        timeMs: Date.now() - (n - i) * 1000,
        stacks: [
          { frames: [['leakyCache', '/app/cache.js', 10], ['handle', '/app/server.js', 3]], objects: 16 + i, bytes: (16 + i + Math.floor(r() * 3)) * 65_536 },
          { frames: [['pooled', '/app/pool.js', 7], ['handle', '/app/server.js', 3]], objects: 8, bytes: (8 + Math.floor(r() * 3)) * 65_536 },
        ],
      }));
    const judge = async (service: string, n: number) => {
      const res = await postOtlp(base, encodeRequest(heapRequest({ 'service.name': service, 'host.name': 'h1' }, snapshots(n))));
      expect(res.status).toBe(200);
      await waitFor(`${service} stored`, async () => (await services(base)).find((s) => s.service === service && s.profiles === n), 120_000);
      const { status, body } = await getJson<{ leaks: { function: string; file: string; intervals: number }[]; process: unknown[] }>(`${base}/api/v1/leaks?service=${service}&evaluate=true`);
      expect(status).toBe(200);
      return body;
    };
    expect(await judge('otlp-not-yet', 239)).toMatchObject({ leaks: [], process: [] });
    const flagged = await judge('otlp-leak', 260);
    expect(flagged.leaks.map((l) => [l.function, l.file, l.intervals])).toEqual([['leakyCache', '/app/cache.js', 239]]);
    expect(flagged.process).toEqual([]);
    // ~500 snapshots stored and judged: 82 s at load 30.
  }, 600_000);

  it('refuses what cannot be mapped with 400 (HTTP) or INVALID_ARGUMENT (gRPC), and stores nothing of it', async () => {
    const good = snap(t0);
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['a CPU profile beside a heap one', heapRequest({ 'service.name': 'bad-cpu' }, [good, snap(t0 + 5, { profiles: [{ type: ['cpu', 'nanoseconds'] }] })]), /profiles\[2\] is a cpu\/nanoseconds profile.*in-use heap profiles only/],
      ['allocations alone', heapRequest({ 'service.name': 'bad-alloc' }, [snap(t0, { profiles: [{ type: ['alloc_space', 'bytes'] }] })]), /no in-use space profile/],
      ['no service.name', heapRequest({ 'host.name': 'h' }, [good]), /no service\.name attribute/],
    ];
    const broken = (mutate: (r: { dictionary: Record<string, unknown[]>; resourceProfiles: { scopeProfiles: { profiles: { samples: { stackIndex: number }[] }[] }[] }[] }) => void, service: string) => {
      const r = heapRequest({ 'service.name': service }, [good]) as never;
      mutate(r);
      return r as Record<string, unknown>;
    };
    cases.push(
      ['a stack index past the stack table', broken((r) => (r.resourceProfiles[0]!.scopeProfiles[0]!.profiles[1]!.samples[0]!.stackIndex = 99), 'bad-stack'), /samples\[0\]\.stack_index 99 is outside dictionary\.stack_table/],
      ['a location index past the location table', broken((r) => ((r.dictionary.stackTable[1] as { locationIndices: number[] }).locationIndices = [1, 77]), 'bad-location'), /location_indices\[1\] 77 is outside dictionary\.location_table/],
      ['a function index past the function table', broken((r) => ((r.dictionary.locationTable[1] as { lines: { functionIndex: number }[] }).lines[0]!.functionIndex = 55), 'bad-function'), /function_index 55 is outside dictionary\.function_table/],
      ['a string index past the string table', broken((r) => ((r.dictionary.functionTable[1] as { nameStrindex: number }).nameStrindex = 1000), 'bad-string'), /name_strindex 1000 is outside dictionary\.string_table/],
    );
    const client = exportClient(collector.grpcAddress);
    try {
      for (const [what, req, message] of cases) {
        const bytes = encodeRequest(req);
        const viaHttp = await refusal(await postOtlp(base, bytes));
        expect(viaHttp, what).toEqual({ status: 400, code: grpc.status.INVALID_ARGUMENT, message: expect.stringMatching(message) });
        const viaJson = await refusal(await postOtlp(base, jsonRequest(req), { json: true }));
        expect(viaJson, what).toEqual({ status: 400, code: grpc.status.INVALID_ARGUMENT, message: expect.stringMatching(message) });
        const err = (await client.export(bytes).then(() => null, (e: unknown) => e)) as grpc.ServiceError;
        expect(err?.code, what).toBe(grpc.status.INVALID_ARGUMENT);
        expect(err.details, what).toMatch(message);
      }
      // Bytes that are not a request, a revision heapwatch does not read, a content type it does not take.
      expect(await refusal(await postOtlp(base, Buffer.from([0x0a, 0xff, 0x01])))).toMatchObject({ status: 400, message: expect.stringMatching(/truncated|does not decode/) });
      expect(await refusal(await postOtlp(base, '{"resourceProfiles": 7}', { json: true }))).toMatchObject({ status: 400, message: expect.stringMatching(/not an .*ExportProfilesServiceRequest in JSON/) });
      const revision = encodeRequest(heapRequest({ 'service.name': 'bad-revision' }, [good]));
      expect(await refusal(await postOtlp(base, revision, { headers: { 'otlp-profiles-development-version': '2' } }))).toMatchObject({ status: 400, message: expect.stringMatching(/"2" is not supported: heapwatch reads revision 1/) });
      const md = new grpc.Metadata();
      md.set('otlp-profiles-development-version', '2');
      expect(await client.export(revision, md).then(() => null, (e: grpc.ServiceError) => e.code)).toBe(grpc.status.INVALID_ARGUMENT);
      expect((await postOtlp(base, revision, { headers: { 'content-type': 'text/plain' } })).status).toBe(415);
      expect((await fetch(`${base}/v1development/profiles`)).status).toBe(405);
      // The same request naming revision 1 is stored: the refusals left nothing behind.
      const ok = new grpc.Metadata();
      ok.set('otlp-profiles-development-version', '1');
      await client.export(revision, ok);
    } finally {
      client.close();
    }
    await waitFor('bad-revision listed', async () => (await services(base)).find((s) => s.service === 'bad-revision'));
    const names = (await services(base)).map((s) => s.service);
    for (const service of ['bad-cpu', 'bad-alloc', 'bad-stack', 'bad-location', 'bad-function', 'bad-string']) expect(names).not.toContain(service);
    expect((await services(base)).find((s) => s.service === 'bad-revision')?.profiles).toBe(1);
  });
});

describe('OTLP profiles with tokens', () => {
  it('need a token with the write scope, over HTTP and gRPC, and store as its tenant', async () => {
    const dir = tempDir('otlp-tokens');
    const file = path.join(dir, 'tokens');
    fs.writeFileSync(file, ['team-a-write-token-0001 write team-a', 'team-a-read-token-00002 read team-a'].join('\n'));
    const c = await startCollectorProcess({ args: ['--token', 's3cret', '--tokens-file', file, '--leak-interval-ms', '0'] });
    const client = exportClient(c.grpcAddress);
    const t = Date.now() - 10_000;
    try {
      const body = (service: string) => encodeRequest(heapRequest({ 'service.name': service }, [snap(t)]));
      const without = await postOtlp(c.httpUrl, body('tokened-http'));
      expect(without.status).toBe(401);
      expect((await postOtlp(c.httpUrl, body('tokened-http'), { headers: { authorization: 'Bearer team-a-read-token-00002' } })).status).toBe(403);
      expect(await client.export(body('tokened-grpc')).then(() => null, (e: grpc.ServiceError) => e.code)).toBe(grpc.status.UNAUTHENTICATED);
      const read = new grpc.Metadata();
      read.set('authorization', 'Bearer team-a-read-token-00002');
      expect(await client.export(body('tokened-grpc'), read).then(() => null, (e: grpc.ServiceError) => e.code)).toBe(grpc.status.PERMISSION_DENIED);

      expect((await postOtlp(c.httpUrl, body('tokened-http'), { headers: { authorization: 'Bearer team-a-write-token-0001' } })).status).toBe(200);
      const write = new grpc.Metadata();
      write.set('authorization', 'Bearer team-a-write-token-0001');
      await client.export(body('tokened-grpc'), write);
      const teamA = await waitFor('team-a lists both', async () => {
        const names = (await services(c.httpUrl, 'team-a-read-token-00002')).map((s) => s.service);
        return names.includes('tokened-http') && names.includes('tokened-grpc') ? names : undefined;
      });
      expect(teamA).toEqual(expect.arrayContaining(['tokened-http', 'tokened-grpc']));
      // Stored as team-a's: the default tenant does not see them.
      const defaults = (await services(c.httpUrl, 's3cret')).map((s) => s.service);
      expect(defaults).not.toContain('tokened-http');
      expect(defaults).not.toContain('tokened-grpc');
    } finally {
      client.close();
      await c.stop();
    }
  });
});
