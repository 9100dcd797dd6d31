/**
 * The endpoints behind the web UI and the UI's files, on a real collector
 * (embedded ClickHouse) fed known profiles over gRPC: the flame graph tree,
 * the diff of two ranges (JSON and pprof, read back by go tool pprof where
 * go is installed), the leak evidence, the flagged counts on the services
 * list, and static file serving (types, caching, no way out of the build
 * directory).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { Profile } from 'pprof-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestProto, type IngestRequest, type IngestServiceClient } from '@heapwatch/proto';
import { startCollector, type Collector } from '../../collector/src';
import type { FlameNode, FlameTree } from '../../collector/src/query/flamegraph';
import { getJson, tempDir } from '../helpers/collector';
import { buildProfile, gzipProfile, type TestStack } from '../helpers/pprof';

const SERVICE = 'ui-api-worker';
const MAIN: [string, string, number] = ['main', '/app/main.js', 1];
const stacks = (growsBytes: number): TestStack[] => [
  { frames: [['steady', '/app/steady.js', 3], MAIN], objects: 10, bytes: 1000 },
  { frames: [['grows', '/app/grows.js', 7], MAIN], objects: growsBytes / 100, bytes: growsBytes },
];
/** Base range: three profiles 30-28 min ago, `grows` at 100 B; new range: three 3-1 min ago at 5,000 B. */
const NOW = Date.now();
const BASE = { from: NOW - 31 * 60_000, to: NOW - 27 * 60_000 };
const NEW = { from: NOW - 4 * 60_000, to: NOW };

let collector: Collector;
let client: IngestServiceClient;
let base: string;

function send(endTimeMs: number, s: TestStack[]): Promise<void> {
  const req: IngestRequest = {
    profileId: `ui-${endTimeMs}`,
    service: SERVICE,
    labels: { env: 'test' },
    instance: { hostname: 'host-a', pid: 1, processStartTimeMs: NOW - 3_600_000, threadId: 0, runtimeVersion: 'v20', agentVersion: 'test' },
    startTimeMs: endTimeMs - 60_000,
    endTimeMs,
    pprofGzip: gzipProfile(buildProfile(s)),
    memory: { rssBytes: 100 << 20, heapUsedBytes: 50 << 20, heapTotalBytes: 60 << 20, externalBytes: 1 << 20, arrayBuffersBytes: 1 << 10, heapSizeLimitBytes: 4 << 30 },
    agent: { profilesSent: 1 },
  };
  return new Promise((resolve, reject) => client.Ingest(req, { deadline: Date.now() + 30_000 }, (err) => (err ? reject(err) : resolve())));
}

beforeAll(async () => {
  collector = await startCollector({ grpcPort: 0, httpPort: 0, dataDir: tempDir('ui-api'), logLevel: 'silent', leakEvaluationMs: 0 });
  const Client = ingestProto().heapwatch.v1.IngestService;
  client = new Client(`127.0.0.1:${collector.grpcPort}`, grpc.credentials.createInsecure());
  base = `http://127.0.0.1:${collector.httpPort}`;
  for (const m of [30, 29, 28]) await send(NOW - m * 60_000, stacks(100));
  for (const m of [3, 2, 1]) await send(NOW - m * 60_000, stacks(5000));
  await collector.ingester.flush();
});

afterAll(async () => {
  client?.close();
  await collector?.close();
});

function child(tree: FlameTree, n: FlameNode, fn: string): FlameNode | undefined {
  return n.c?.find((c) => tree.frames[c.f]?.function === fn);
}

/** A raw request, so that the path reaches the server exactly as written (fetch would resolve `..`). */
function raw(method: string, p: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${p.startsWith('/') ? '' : '/'}`, { method, path: p }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('flame graph and diff endpoints', () => {
  it('gives the merged profile of a range as a tree, root first, totals per node', async () => {
    const { status, body } = await getJson<FlameTree & { profiles: number; stacks: number }>(
      `${base}/api/v1/flamegraph?service=${SERVICE}&from=${NEW.from}&to=${NEW.to}`,
    );
    expect(status).toBe(200);
    expect(body.profiles).toBe(3);
    expect(body.stacks).toBe(2);
    expect(body.root.b).toBe(6000);
    const main = child(body, body.root, 'main')!;
    expect(main.b).toBe(6000);
    expect(child(body, main, 'grows')).toMatchObject({ b: 5000, o: 50 });
    expect(child(body, main, 'steady')).toMatchObject({ b: 1000, o: 10 });
  });

  it('diffs two ranges as JSON: each node holds the base and the new totals', async () => {
    const q = `service=${SERVICE}&base_from=${BASE.from}&base_to=${BASE.to}&from=${NEW.from}&to=${NEW.to}&format=json`;
    const { body } = await getJson<FlameTree & { scale: number[] }>(`${base}/api/v1/diff?${q}`);
    const grows = child(body, child(body, body.root, 'main')!, 'grows')!;
    expect(grows).toMatchObject({ b: 5000, bb: 100 });
    expect(body.scale).toEqual([1, 1]);
    const norm = await getJson<FlameTree & { scale: number[] }>(`${base}/api/v1/diff?${q}&normalize=true`);
    expect(norm.body.scale[1]).toBeCloseTo(6000 / 1100, 6);
    expect(norm.body.root.bb).toBe(6000);
  });

  it('diffs two ranges as a pprof whose base samples are negated and labelled pprof::base', async () => {
    const res = await fetch(`${base}/api/v1/diff?service=${SERVICE}&base_from=${BASE.from}&base_to=${BASE.to}&from=${NEW.from}&to=${NEW.to}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-heapwatch-base-profiles')).toBe('3');
    const gz = Buffer.from(await res.arrayBuffer());
    const p = Profile.decode(zlib.gunzipSync(gz));
    const s = p.stringTable.strings;
    const fnName = new Map(p.function.map((f) => [String(f.id), s[Number(f.name)]!]));
    const leafOf = new Map(p.location.map((l) => [String(l.id), fnName.get(String(l.line[0]!.functionId))!]));
    const net: Record<string, number> = {};
    let baseSamples = 0;
    // pprof-format decodes int64 values as unsigned: read them back signed.
    const signed = (v: number | bigint): number => Number(BigInt.asIntN(64, BigInt(v)));
    for (const sample of p.sample) {
      const leaf = leafOf.get(String(sample.locationId[0]))!;
      const isBase = sample.label.some((l) => s[Number(l.key)] === 'pprof::base' && s[Number(l.str)] === 'true');
      if (isBase) {
        baseSamples++;
        expect(signed(sample.value[1]!)).toBeLessThan(0);
      }
      net[leaf] = (net[leaf] ?? 0) + signed(sample.value[1]!);
    }
    expect(baseSamples).toBe(2);
    expect(net).toEqual({ grows: 4900, steady: 0 });

    if (spawnSync('go', ['version']).status === 0) {
      const file = path.join(tempDir('ui-diff'), 'diff.pb.gz');
      fs.writeFileSync(file, gz);
      const top = execFileSync('go', ['tool', 'pprof', '-top', '-sample_index=space', file], { encoding: 'utf8' });
      const rows = top.split('\n').filter((l) => /\b(grows|steady)\b/.test(l));
      expect(rows[0], top).toMatch(/\bgrows\b/);
    } else {
      console.log('go tool pprof check skipped: go is not on the PATH');
    }
  });

  it('says clearly what is wrong with a diff request', async () => {
    const q = `service=${SERVICE}&from=${NEW.from}&to=${NEW.to}`;
    expect((await getJson<{ error: string }>(`${base}/api/v1/diff?${q}`)).body.error).toMatch(/base_from and base_to are required/);
    expect((await getJson(`${base}/api/v1/diff?${q}&base_from=${BASE.to}&base_to=${BASE.from}`)).status).toBe(400);
    expect((await getJson(`${base}/api/v1/diff?${q}&base_from=1&base_to=2&format=svg`)).status).toBe(400);
    expect((await getJson(`${base}/api/v1/diff?${q}&base_from=1&base_to=2&normalize=yes`)).status).toBe(400);
    expect((await getJson(`${base}/api/v1/diff?service=nope&base_from=1&base_to=2`)).status).toBe(404);
  });
});

describe('leak evidence and flagged counts', () => {
  it('shows null counts before any evaluation and the newest report counts after one', async () => {
    type Row = { service: string; profiles: number; flaggedLeaks: number | null; flaggedProcess: number | null; evaluatedAt: string | null };
    const before = (await getJson<Row[]>(`${base}/api/v1/services`)).body.find((r) => r.service === SERVICE)!;
    expect(before).toMatchObject({ profiles: 6, flaggedLeaks: null, flaggedProcess: null, evaluatedAt: null });
    const report = (await getJson<{ evaluatedAt: string }>(`${base}/api/v1/leaks?service=${SERVICE}&evaluate=true`)).body;
    const after = (await getJson<Row[]>(`${base}/api/v1/services`)).body.find((r) => r.service === SERVICE)!;
    expect(after).toMatchObject({ profiles: 6, flaggedLeaks: 0, flaggedProcess: 0, evaluatedAt: report.evaluatedAt });
  });

  it("gives each instance's heap series and no site series when nothing is flagged", async () => {
    const { status, body } = await getJson<{ sites: unknown[]; heap: Array<{ points: unknown[]; heapSizeLimitBytes: number }> }>(
      `${base}/api/v1/leaks/evidence?service=${SERVICE}`,
    );
    expect(status).toBe(200);
    expect(body.sites).toEqual([]);
    expect(body.heap).toHaveLength(1);
    expect(body.heap[0]!.points).toHaveLength(6);
    expect(body.heap[0]!.heapSizeLimitBytes).toBe(4 << 30);
    expect((await getJson(`${base}/api/v1/leaks/evidence?service=nope`)).status).toBe(404);
  });
});

describe('the web UI files', () => {
  it('serves index.html at / (revalidated) and its hashed assets (cached for good)', async () => {
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const html = await index.text();
    const js = /src="(\/assets\/app-\w+\.js)"/.exec(html)?.[1];
    const css = /href="(\/assets\/app-\w+\.css)"/.exec(html)?.[1];
    expect(js && css, html).toBeTruthy();
    const script = await fetch(`${base}${js}`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    expect((await fetch(`${base}${css}`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    // Nothing in the page points off this origin.
    expect(html).not.toMatch(/https?:\/\//);
  });

  it.each([
    '/assets/../package.json',
    '/assets/..%2f..%2fpackage.json',
    '/assets/%2e%2e/%2e%2e/package.json',
    '/assets/',
    '/assets/index.html/..',
    '/assets/nope.js',
    '/package.json',
  ])('answers 404 JSON for %s', async (p) => {
    const r = await raw('GET', p);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body)).toHaveProperty('error');
  });

  it('keeps GET/HEAD semantics: HEAD has headers and no body, POST is refused', async () => {
    const head = await raw('HEAD', '/');
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(100);
    expect(head.body).toBe('');
    const post = await raw('POST', '/');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });
});
