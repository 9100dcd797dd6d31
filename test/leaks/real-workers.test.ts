/**
 * The fast CI subset of the real-worker scorecard (bench/leaks/real-scorecard.mjs):
 * queue workers as users write them, on the machine's Redis, with the agent
 * preloaded, against the real collector. A TypeScript BullMQ worker built by
 * tsc with source maps must show its leak at the original `src/ledger.ts`
 * function, not `dist/*.js`; a BullMQ worker whose bounded LRU fills and then
 * holds its bound must get no finding, while the TypeScript worker's leak,
 * beside it with the same settings, is flagged.
 *
 * Waits on profile counts, not wall time (the ceiling is generous: the
 * full suite loads 2 cores). Skipped, saying why, when Redis does not answer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Profile } from 'pprof-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { siteContext, siteOf, type Frame } from '../../collector/src/model/site';
import { tempDir } from '../helpers/collector';

interface RealScenario {
  name: string;
  entry: string;
  typescript: string | null;
  needs: { redis: boolean; rabbitmq: boolean };
}
interface RunningCollector {
  grpc: string;
  http: string;
  stop(): Promise<void>;
}
interface Run {
  stop(): Promise<void>;
  exitCode(): number | null;
  readonly stderr: string;
}
interface RealRunner {
  readRealScenario(name: string): RealScenario;
  buildScenario(sc: RealScenario): void;
  servicesAnswer(): Promise<{ redis: boolean; rabbitmq: boolean }>;
  startRealScenario(c: RunningCollector, sc: RealScenario, o: { service: string; intervalMs: number; samplingBytes?: number; env?: Record<string, string> }): Run;
  profilesOf(c: RunningCollector, service: string): Promise<number>;
  leaksOf(c: RunningCollector, service: string): Promise<{ leaks: { function: string; file: string; line: number; siteKind: string }[]; process: { kind: string }[] } | null>;
}

const BENCH = path.resolve(__dirname, '../../bench/scenarios');
const INTERVAL_MS = 1000;
// Small enough that a minute of these workers gives each site tens of samples.
const SAMPLING_BYTES = 16 * 1024;
const ENV = { HEAPWATCH_GC_ASSIST_BUDGET: '0.05' };
const CEILING_MS = 15 * 60_000;
// The issue's LRU (3 minutes to fill at 5 s profiles, under the default
// 13-minute minimum growth time) five times faster: 1 s profiles, a fill of
// ~35 s, and the minimum growth time scaled alike (docs/detector.md#minimum-growth-time).
const MIN_GROWTH_MS = 156_000;

const { startCollector } = (await import(path.join(BENCH, 'runner.mjs'))) as { startCollector(dir: string, opts?: { minGrowthMs?: number }): Promise<RunningCollector> };
const real = (await import(path.join(BENCH, 'real-runner.mjs'))) as RealRunner;
const up = await real.servicesAnswer();
const noRedis = up.redis ? null : 'Redis does not answer on 127.0.0.1:6379 (.ci/run starts it)';

async function untilProfiles(c: RunningCollector, run: Run, service: string, n: number): Promise<void> {
  const deadline = Date.now() + CEILING_MS;
  while ((await real.profilesOf(c, service)) < n) {
    if (run.exitCode() !== null) throw new Error(`${service} exited with ${run.exitCode()}: ${run.stderr}`);
    if (Date.now() > deadline) throw new Error(`${service}: fewer than ${n} profiles in ${CEILING_MS} ms`);
    await new Promise((r) => setTimeout(r, INTERVAL_MS));
  }
}

/** The merged profile's in-use bytes per site (the collector's own site rule), with each site's heaviest stack. */
async function sitesOf(c: RunningCollector, service: string, fromMs: number): Promise<{ site: Frame; bytes: number; stack: Frame[] }[]> {
  const res = await fetch(`${c.http}/api/v1/profile?service=${service}&from=${fromMs}`);
  expect(res.status).toBe(200);
  const p = Profile.decode(zlib.gunzipSync(Buffer.from(await res.arrayBuffer())));
  const s = (i: number | bigint): string => p.stringTable.strings[Number(i)] ?? '';
  const fns = new Map(p.function.map((f) => [Number(f.id), f]));
  const locs = new Map(p.location.map((l) => [Number(l.id), l]));
  const space = p.sampleType.findIndex((t) => s(t.type) === 'space');
  const bySite = new Map<string, { site: Frame; bytes: number; stack: Frame[]; top: number }>();
  for (const sample of p.sample) {
    const frames = sample.locationId.map((id) => {
      const line = locs.get(Number(id))!.line[0]!;
      const f = fns.get(Number(line.functionId))!;
      return { function: s(f.name), file: s(f.filename), line: Number(line.line) };
    });
    const site = siteOf(frames);
    const bytes = Number(sample.value[space]);
    const e = bySite.get(site.id) ?? { site: site.frame, bytes: 0, stack: frames, top: 0 };
    e.bytes += bytes;
    if (bytes > e.top) Object.assign(e, { stack: frames, top: bytes });
    bySite.set(site.id, e);
  }
  return [...bySite.values()].sort((a, b) => b.bytes - a.bytes);
}

describe.skipIf(noRedis !== null)(`real queue workers${noRedis ? ` (skipped: ${noRedis})` : ''}`, () => {
  let collector: RunningCollector;
  const ts = real.readRealScenario('ts-invoice-worker');
  const lru = real.readRealScenario('bullmq-session-lru');
  let tsRun: Run;
  let lruRun: Run;

  beforeAll(async () => {
    real.buildScenario(ts);
    collector = await startCollector(tempDir('real-workers'), { minGrowthMs: MIN_GROWTH_MS });
    // Both at once: the tests wait on their own profile counts.
    tsRun = real.startRealScenario(collector, ts, { service: 'real-ts-invoice', intervalMs: INTERVAL_MS, samplingBytes: SAMPLING_BYTES, env: ENV });
    // 1,500 sessions at ~45 new users a second: full after ~35 profiles, then flat.
    lruRun = real.startRealScenario(collector, lru, {
      service: 'real-session-lru',
      intervalMs: INTERVAL_MS,
      samplingBytes: SAMPLING_BYTES,
      env: { ...ENV, SCENARIO_KEYS: '1500', SCENARIO_JOBS_PER_SEC: '50' },
    });
  });
  afterAll(async () => {
    await Promise.all([tsRun?.stop(), lruRun?.stop()]);
    await collector?.stop();
  });

  it('a TypeScript BullMQ worker is reported at its .ts source, function and line', async () => {
    const service = 'real-ts-invoice';
    // The agent reads a few source maps per profile: the first profiles may still hold compiled frames.
    await untilProfiles(collector, tsRun, service, 8);
    const warm = Date.now();
    await untilProfiles(collector, tsRun, service, 30);

    const ledgerTs = path.join(ts.typescript!, 'src/ledger.ts');
    const firstLine = fs.readFileSync(ledgerTs, 'utf8').split('\n').findIndex((l) => l.startsWith('export function buildLedgerEntry')) + 1;
    const sites = await sitesOf(collector, service, warm);
    const app = sites.filter((x) => siteContext(x.stack, x.site).siteKind === 'application');
    // The ledger keeps every entry: its sites hold the most of the application's bytes.
    expect(app[0]?.site.file, JSON.stringify(app.slice(0, 5).map((x) => [x.site, x.bytes]))).toBe(ledgerTs);
    const build = app.find((x) => x.site.function === 'buildLedgerEntry');
    expect(build?.site).toEqual({ function: 'buildLedgerEntry', file: ledgerTs, line: firstLine });
    // No frame of the worker's own code is left as compiled output.
    const all = sites.flatMap((x) => x.stack);
    expect(all.filter((f) => f.file.startsWith(path.join(ts.typescript!, 'dist')))).toEqual([]);
  }, CEILING_MS + 60_000);

  // Its margin is the suite's own load: the fill (~35 s) is a quarter of the
  // 156 s minimum growth time. At load average ~25 from other work on the
  // machine (2026-12-02) the starved worker's fill outlasted it: its
  // producer's tick (bench/scenarios/real/lib/services.js:50) then queued
  // jobs faster than the worker finished them, real growth, and was flagged.
  // A filling cache is flagged whenever its fill outlasts the minimum growth
  // time (docs/detector.md#minimum-growth-time).
  it('a BullMQ worker whose bounded LRU fills and then holds its bound gets no finding; the leak beside it, at the same settings, does', async () => {
    const service = 'real-session-lru';
    const seen: string[] = [];
    // The ledger's leak: a finding in src/ledger.ts whose stack runs through
    // recordInvoice, the push that keeps it. Its leaf may be buildLedgerEntry
    // or money(), whose strings the ledger's lines keep too.
    let leak: { function: string; stack: string[] } | null = null;
    const deadline = Date.now() + CEILING_MS;
    // The LRU for 240 profiles (its fill, the minimum growth time, and a minute and a half at its bound).
    while ((await real.profilesOf(collector, service)) < 240 || leak === null) {
      expect(lruRun.exitCode(), lruRun.stderr).toBeNull();
      expect(tsRun.exitCode(), tsRun.stderr).toBeNull();
      expect(Date.now(), `LRU at ${await real.profilesOf(collector, service)} profiles, leak flagged: ${leak?.function}`).toBeLessThan(deadline);
      const r = await real.leaksOf(collector, service);
      for (const l of r?.leaks ?? []) seen.push(`${l.function} (${l.file}:${l.line})`);
      for (const p of r?.process ?? []) seen.push(`process ${p.kind}`);
      const t = await real.leaksOf(collector, 'real-ts-invoice');
      leak ??= t?.leaks.find((l) => l.file.endsWith('src/ledger.ts')) ?? null;
      await new Promise((res) => setTimeout(res, INTERVAL_MS));
    }
    expect([...new Set(seen)]).toEqual([]);
    expect(leak!.function).toMatch(/^(buildLedgerEntry|recordInvoice|money)$/);
    expect(leak!.stack.join('\n')).toMatch(/recordInvoice \(.*src\/ledger\.ts:\d+\)/);
  }, CEILING_MS + 60_000);
});
