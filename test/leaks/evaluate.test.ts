/**
 * evaluateLeaks end to end below the agent: real profiles over real gRPC
 * into the real collector and embedded ClickHouse, with synthetic
 * Poisson-sampled sites, evaluated with an injected clock at a 60 s interval.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestProto, type IngestRequest, type IngestServiceClient } from '@heapwatch/proto';
import { startCollector, type Collector } from '../../collector/src';
import { evaluateLeaks, formatLeakTable, latestLeakReport, type LeakReport } from '../../collector/src/leaks';
import { tempDir } from '../helpers/collector';
import { buildProfile, gzipProfile, type TestStack } from '../helpers/pprof';
import { DEFAULT_ALERT } from '../../collector/src/leaks/alert';
import { cacheSeries, leakSeries, QUANTUM, retainedSeries } from './synthetic';

let collector: Collector;
let client: IngestServiceClient;

beforeAll(async () => {
  collector = await startCollector({ grpcPort: 0, httpPort: 0, dataDir: tempDir('leaks-eval'), logLevel: 'error' });
  const Client = ingestProto().heapwatch.v1.IngestService;
  client = new Client(`127.0.0.1:${collector.grpcPort}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await collector?.close();
});

function send(req: IngestRequest): Promise<void> {
  return new Promise((resolve, reject) =>
    client.Ingest(req, { deadline: Date.now() + 30_000 }, (err) => (err ? reject(err) : resolve())),
  );
}

// Recent: the tables have a retention TTL, and rows past it vanish at insert.
const T0 = Math.floor(Date.now() / 1000) * 1000 - 3 * 3600_000;
const INTERVAL_MS = 60_000;
const N = 40;
// The retry buffer: push() is a builtin frame (empty url) above the user's function.
const LEAK_FRAMES: TestStack['frames'] = [
  ['push', '', 0],
  ['recordFailure', '/app/retry.js', 12],
  ['tick', '/app/worker.js', 30],
  ['processTicksAndRejections', 'node:internal/process/task_queues', 95],
];
const CACHE_FRAMES: TestStack['frames'] = [
  ['set', '/app/node_modules/lru/index.js', 40],
  ['remember', '/app/cache.js', 5],
  ['tick', '/app/worker.js', 30],
];
const leak = leakSeries(N, 2, 7, 1);
const cache = retainedSeries(N, (i) => 200 * (1 - Math.exp(-i / 4)), 8, 3);

function profile(service: string, i: number): IngestRequest {
  const stacks: TestStack[] = [
    { frames: LEAK_FRAMES, objects: leak[i]! / 64, bytes: leak[i]! },
    { frames: CACHE_FRAMES, objects: cache[i]! / 256, bytes: cache[i]! },
  ].filter((s) => s.bytes > 0);
  return {
    profileId: `${service}-${i}`,
    service,
    labels: {},
    instance: { hostname: 'h', pid: 1, processStartTimeMs: T0 - 1000, threadId: 0, runtimeVersion: 'v20', agentVersion: 'test' },
    startTimeMs: T0 + (i - 1) * INTERVAL_MS,
    endTimeMs: T0 + i * INTERVAL_MS,
    pprofGzip: gzipProfile(buildProfile(stacks)),
    memory: {
      rssBytes: 300 << 20,
      // Garbage builds up between major GCs (every 3rd profile here): the
      // detector needs to see a GC cycle before it trusts a short window.
      heapUsedBytes: (100 << 20) + leak[i]! + cache[i]! + (i % 3) * (80 << 20),
      heapTotalBytes: 250 << 20,
      externalBytes: 2 << 20,
      arrayBuffersBytes: 1 << 20,
      heapSizeLimitBytes: 4144 * 2 ** 20,
    },
    agent: {},
  };
}

describe('evaluateLeaks', () => {
  const service = 'retry-worker';
  const reports: LeakReport[] = [];

  it('flags the leaking site, not the warming cache, within 20 intervals', async () => {
    let flaggedAt: number | null = null;
    for (let i = 0; i < N; i++) {
      await send(profile(service, i));
      await collector.ingester.flush();
      const now = () => T0 + i * INTERVAL_MS + 5000;
      const r = await evaluateLeaks(collector.store.forTenant(''), service, { now });
      reports.push(r);
      if (flaggedAt === null) {
        // Asking again without a new profile must not count as another positive evaluation.
        const again = await evaluateLeaks(collector.store.forTenant(''), service, { now });
        expect(again.leaks.length).toBe(r.leaks.length);
      }
      expect(r.leaks.map((l) => l.function)).not.toContain('remember');
      expect(r.leaks.map((l) => l.function)).not.toContain('set');
      if (r.leaks.length && flaggedAt === null) flaggedAt = i + 1;
    }
    expect(flaggedAt).not.toBeNull();
    expect(flaggedAt!).toBeLessThanOrEqual(20);
  });

  it('reports the site, its stack and its growth per the API contract', async () => {
    const last = reports[reports.length - 1]!;
    expect(last.service).toBe(service);
    expect(last.leaks).toHaveLength(1);
    const site = last.leaks[0]!;
    // These profiles say nothing of inlining (as from an agent that predates precise mode).
    expect(site).toMatchObject({ function: 'recordFailure', file: '/app/retry.js', line: 12, instances: 1, attribution: 'imprecise' });
    expect(site.stack[0]).toBe('push (:0)');
    expect(site.stack[1]).toBe('recordFailure (/app/retry.js:12)');
    // 2 samples of 512 KiB per 60 s interval.
    expect(site.growthBytesPerInterval).toBeGreaterThan(1 * QUANTUM);
    expect(site.growthBytesPerInterval).toBeLessThan(3 * QUANTUM);
    expect(site.growthBytesPerHour).toBeCloseTo(site.growthBytesPerInterval * 60, -5);
    expect(site.retainedBytes).toBe(leak[N - 1]);
    expect(site.confidence).toBeGreaterThan(0.99);
    expect(Date.parse(site.firstFlaggedAt)).toBeGreaterThan(T0);
    // The heap's floor (post-GC) rises with the leak: a process finding with
    // a projected time to the heap limit shows up while the leak runs.
    const heap = reports.flatMap((r) => r.process).find((p) => p.kind === 'heap');
    expect(heap?.timeToLimitSeconds, JSON.stringify(reports.map((r) => r.process).filter((p) => p.length))).toBeGreaterThan(0);
    expect(reports.flatMap((r) => r.process).find((p) => p.kind === 'external')).toBeUndefined();
  });

  it('serves the stored report and keeps firstFlaggedAt across evaluations', async () => {
    const stored = await latestLeakReport(collector.store.forTenant(''), service);
    expect(stored).toEqual(reports[reports.length - 1]);
    const firsts = new Set(reports.filter((r) => r.leaks.length).map((r) => r.leaks[0]!.firstFlaggedAt));
    expect(firsts.size).toBe(1);
    expect(formatLeakTable(stored!)).toContain('recordFailure (/app/retry.js:12)');
    expect(await latestLeakReport(collector.store.forTenant(''), 'nobody')).toBeNull();
  });

  it('reads site bytes for exactly the profiles of the window, summed per site in the engine', async () => {
    const store = collector.store.forTenant('');
    const window = (await store.profilePoints(service, N, 24 * 3600_000)).slice(-5);
    expect(window.map((p) => p.timeMs)).toEqual([35, 36, 37, 38, 39].map((i) => T0 + i * INTERVAL_MS));
    const points = await store.sitePoints(service, window);
    // Two sites (the leak, the cache), one point each per profile, nothing outside the window.
    expect(new Set(points.map((p) => p.siteId)).size).toBe(2);
    expect(points.every((p) => window.some((w) => w.timeMs === p.timeMs && w.instance === p.instance))).toBe(true);
    for (let i = 35; i < N; i++) {
      const at = points.filter((p) => p.timeMs === T0 + i * INTERVAL_MS).map((p) => p.bytes).sort((a, b) => a - b);
      expect(at).toEqual([leak[i]!, cache[i]!].filter((b) => b > 0).sort((a, b) => a - b));
    }
    expect(await store.sitePoints(service, [])).toEqual([]);
  });

  it('a site that keeps rising once the agent turned inlining off is reported precise, and the table says which', async () => {
    const svc = 'retry-worker-precise';
    let last: LeakReport | undefined;
    for (let i = 0; i < N; i++) {
      // Precise mode from profile 25 on, as the collector's directive would turn it on.
      await send({ ...profile(svc, i), inliningDisabled: i >= 25 });
      await collector.ingester.flush();
      last = await evaluateLeaks(collector.store.forTenant(''), svc, { now: () => T0 + i * INTERVAL_MS + 5000 });
      if (i === 26) expect(last.leaks[0]?.attribution).toBe('imprecise'); // 2 precise profiles: not yet
    }
    const points = await collector.store.forTenant('').profilePoints(svc, N, 24 * 3600_000);
    expect(points.map((p) => p.inliningDisabled)).toEqual(Array.from({ length: N }, (_, i) => i >= 25));
    expect(last!.leaks[0]).toMatchObject({ function: 'recordFailure', attribution: 'precise' });
    expect(formatLeakTable(last!)).toMatch(/ATTRIBUTION[\s\S]*recordFailure \(\/app\/retry\.js:12\).*precise/);
    expect(formatLeakTable(reports[reports.length - 1]!)).toMatch(/imprecise: seen with V8 inlining on/);
  });
});

describe('a bounded cache and a leak at 5 s profiles, through the store', () => {
  // The LRU: 5,000 sessions of ~20 samples (10 MiB at 512 KiB), full
  // after 3 minutes, then replaced as new users come; beside it a leak of
  // 1 MB a minute. Every profile post-GC, as in precise mode.
  const FIVE_S = 5000;
  const n = 240;
  const lru = cacheSeries(n, { capacity: 5000, arrivals: () => 5000 / 36, population: Infinity, samplesPerEntry: 20 / 5000, churn: 5 }, 104);
  const leak1 = leakSeries(n, 1_000_000 / 12 / QUANTUM, 9, 5);
  const T5 = Math.floor(Date.now() / 1000) * 1000 - 2 * 3600_000;

  function at(service: string, i: number, ys: readonly number[]): IngestRequest {
    const frames: TestStack['frames'] = [['loadSession', '/app/sessions.js', 20], ['authorize', '/app/worker.js', 40]];
    return {
      profileId: `${service}-${i}`,
      service,
      labels: {},
      instance: { hostname: 'h', pid: 2, processStartTimeMs: T5 - 1000, threadId: 0, runtimeVersion: 'v20', agentVersion: 'test' },
      startTimeMs: T5 + (i - 1) * FIVE_S,
      endTimeMs: T5 + i * FIVE_S,
      pprofGzip: gzipProfile(buildProfile(ys[i]! > 0 ? [{ frames, objects: ys[i]! / 1024, bytes: ys[i]! }] : [])),
      memory: { rssBytes: 300 << 20, heapUsedBytes: (60 << 20) + ys[i]!, heapTotalBytes: 250 << 20, externalBytes: 2 << 20, arrayBuffersBytes: 1 << 20, heapSizeLimitBytes: 4144 * 2 ** 20 },
      agent: {},
      gc: { majorGcs: i + 1, lastMajorGcEndMs: T5 + i * FIVE_S, afterMajorGc: true },
      inliningDisabled: true,
    };
  }

  /** Profiles sent and evaluated every 12 (each evaluation replays them one by one), until `stop` says so; the profile of each finding. */
  async function run(service: string, ys: readonly number[], stop: (r: LeakReport, i: number) => boolean): Promise<{ findings: string[]; at: number | null }> {
    const findings: string[] = [];
    let first: number | null = null;
    for (let i = 0; i < n; i++) {
      await send(at(service, i, ys));
      if (i % 12 !== 11 && i !== n - 1) continue;
      await collector.ingester.flush();
      const r = await evaluateLeaks(collector.store.forTenant(''), service, { now: () => T5 + i * FIVE_S + 1000 });
      for (const f of [...r.leaks.map((l) => `${l.function} at ${i + 1}`), ...r.process.map((p) => `${p.kind} at ${i + 1}`)]) findings.push(f);
      if ((r.leaks.length || r.process.length) && first === null) first = i + 1;
      if (stop(r, i)) break;
    }
    return { findings, at: first };
  }

  it('the cache that filled in 3 minutes gets no finding (site, heap or external) in 20 minutes; the leak is flagged once its growth has lasted the minimum', async () => {
    const cache = await run('lru-5s', lru, () => false);
    expect(cache.findings).toEqual([]);
    const leaking = await run('leak-5s', leak1, (r) => r.leaks.length > 0);
    expect(leaking.at, JSON.stringify(leaking.findings)).not.toBeNull();
    // Not before the minimum growth time (13 minutes: 157 profiles), and within the formula's p90 (+30 %).
    expect((leaking.at! - 1) * FIVE_S).toBeGreaterThanOrEqual(DEFAULT_ALERT.minGrowthMs);
    expect(leaking.at!).toBeLessThanOrEqual(1.3 * 158 + 12);
  }, 600_000);
});
