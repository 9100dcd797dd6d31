/**
 * The hourly rollup behind long-range merges (collector/src/store/rollup.ts),
 * on a real collector with its embedded ClickHouse, fed over real gRPC:
 * a store written without a rollup is rolled up when a collector starts on
 * it; merged profiles read from the rollup equal, to the last bit, both the
 * same merge read raw and the merge computed here from what was sent; and
 * what would make the rollup wrong (a profile stored twice, a rollup row
 * counted twice, none at all) makes that hour read raw instead.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestProto, type IngestRequest, type IngestServiceClient } from '@heapwatch/proto';
import { startCollector, type Collector } from '../../collector/src';
import type { ClickHouseStore } from '../../collector/src/store/clickhouse';
import type { MergedProfile, ProfileQuery } from '../../collector/src/store/store';
import { tempDir, waitFor } from '../helpers/collector';
import { buildProfile, gzipProfile, type TestStack } from '../helpers/pprof';

const SERVICE = 'rollup-worker';
const HOUR = 3_600_000;
const MIN = 60_000;
/** The start of the hour four hours back: hours H0 .. H0+3 have all ended more than the grace ago. */
const H0 = Math.floor(Date.now() / HOUR) * HOUR - 4 * HOUR;

interface Sent {
  instance: 'a' | 'b';
  timeMs: number;
  stacks: { fn: string; objects: number; bytes: number }[];
}

/** Instance a: env=a, main thread, a profile every 10 min; b: env=b, thread 3, every 20 min. Integer values that vary per profile. */
function plan(fromMs: number, toMs: number): Sent[] {
  const out: Sent[] = [];
  for (let t = fromMs, k = 0; t < toMs; t += 10 * MIN, k++) {
    for (const instance of ['a', 'b'] as const) {
      if (instance === 'b' && k % 2 === 1) continue;
      const stacks = [0, 1, 2, 3]
        .filter((s) => s !== 3 || k % 3 === 0) // a stack seen in some profiles only
        .map((s) => {
          const objects = 1 + ((k * 7 + s * 3 + (instance === 'b' ? 1 : 0)) % 5);
          return { fn: `site${s}`, objects, bytes: objects * (100 + s) + k };
        });
      out.push({ instance, timeMs: t, stacks });
    }
  }
  return out;
}

function request(p: Sent): IngestRequest {
  const testStacks: TestStack[] = p.stacks.map((s) => ({ frames: [[s.fn, `/app/${s.fn}.js`, 3], ['main', '/app/main.js', 1]], objects: s.objects, bytes: s.bytes }));
  return {
    profileId: `${p.instance}-${p.timeMs}`,
    service: SERVICE,
    labels: { env: p.instance },
    instance: { hostname: `host-${p.instance}`, pid: p.instance === 'a' ? 1 : 2, processStartTimeMs: H0 - HOUR, threadId: p.instance === 'a' ? 0 : 3, runtimeVersion: 'v20', agentVersion: 'test' },
    startTimeMs: p.timeMs - 10 * MIN,
    endTimeMs: p.timeMs,
    pprofGzip: gzipProfile(buildProfile(testStacks)),
  };
}

/** Each instance averaged over its profiles in the range, then summed, as the API documents it. */
function expected(sent: readonly Sent[], q: ProfileQuery): Map<string, { objects: number; bytes: number }> {
  const selected = sent.filter(
    (p) => p.timeMs >= q.fromMs && p.timeMs <= q.toMs && (q.labels.env === undefined || q.labels.env === p.instance) && (q.labels.thread === undefined || (q.labels.thread === '3') === (p.instance === 'b')),
  );
  const out = new Map<string, { objects: number; bytes: number }>();
  for (const instance of ['a', 'b']) {
    const mine = selected.filter((p) => p.instance === instance);
    const sums = new Map<string, [number, number]>();
    for (const p of mine) for (const s of p.stacks) {
      const v = sums.get(s.fn) ?? [0, 0];
      sums.set(s.fn, [v[0] + s.objects, v[1] + s.bytes]);
    }
    for (const [fn, [o, b]] of sums) {
      const v = out.get(fn) ?? { objects: 0, bytes: 0 };
      out.set(fn, { objects: v.objects + o / mine.length, bytes: v.bytes + b / mine.length });
    }
  }
  return out;
}

const byFunction = (m: MergedProfile): Map<string, { objects: number; bytes: number }> =>
  new Map(m.stacks.map((s) => [s.functions[0]!, { objects: s.objects, bytes: s.bytes }]));

const Client = ingestProto().heapwatch.v1.IngestService;
let collector: Collector;
let client: IngestServiceClient;
const dataDir = tempDir('rollup');
const sent = plan(H0 + 5 * MIN, H0 + 3 * HOUR); // three hours, H0 .. H0+2

function send(p: Sent): Promise<void> {
  return new Promise((resolve, reject) => client.Ingest(request(p), { deadline: Date.now() + 30_000 }, (err) => (err ? reject(err) : resolve())));
}

async function start(): Promise<void> {
  collector = await startCollector({ grpcPort: 0, httpPort: 0, dataDir, logLevel: 'silent', leakEvaluationMs: 0 });
  client = new Client(`127.0.0.1:${collector.grpcPort}`, grpc.credentials.createInsecure());
}

async function stop(): Promise<void> {
  client.close();
  await collector.close();
}

const store = (): ClickHouseStore => collector.store as ClickHouseStore;
const merged = (q: Omit<ProfileQuery, 'service' | 'labels'> & { labels?: Record<string, string> }): Promise<MergedProfile> =>
  store().forTenant('').mergedProfile({ service: SERVICE, labels: {}, ...q });

const WHOLE = { fromMs: H0, toMs: H0 + 3 * HOUR - 1 };

beforeAll(async () => {
  // A store as a collector without the rollup left it: profiles only.
  await start();
  await store().inspect('DROP TABLE profiles_hourly');
  for (const p of sent) await send(p);
  await collector.ingester.flush();
  await stop();
  // The upgrade: a collector starting on it creates the rollup and fills it in the background.
  await start();
  await waitFor('the existing hours rolled up', async () => ((await merged(WHOLE)).profilesFromRollup === sent.length ? true : undefined), 120_000);
}, 240_000);

afterAll(async () => {
  await stop();
});

describe('hourly rollup', () => {
  const queries: [string, Omit<ProfileQuery, 'service' | 'labels'> & { labels?: Record<string, string> }, number][] = [
    // name, query, profiles expected from the rollup
    ['three whole hours', WHOLE, sent.length],
    ['a ragged start: the first hour raw', { fromMs: H0 + 25 * MIN, toMs: H0 + 3 * HOUR - 1 }, sent.filter((p) => p.timeMs >= H0 + HOUR).length],
    ['ragged both ends', { fromMs: H0 + 25 * MIN, toMs: H0 + 2 * HOUR + 30 * MIN }, sent.filter((p) => p.timeMs >= H0 + HOUR && p.timeMs < H0 + 2 * HOUR).length],
    ['a label filter', { ...WHOLE, labels: { env: 'a' } }, sent.filter((p) => p.instance === 'a').length],
    ['the thread pseudo-label', { ...WHOLE, labels: { thread: '3' } }, sent.filter((p) => p.instance === 'b').length],
    ['under an hour: raw only', { fromMs: H0 + HOUR + 5 * MIN, toMs: H0 + HOUR + 50 * MIN }, 0],
  ];

  it.each(queries)('%s: the merge read through the rollup is the documented average, exactly', async (_name, q, fromRollup) => {
    const m = await merged(q);
    const selected = sent.filter((p) => p.timeMs >= q.fromMs && p.timeMs <= q.toMs && (!q.labels?.env || q.labels.env === p.instance) && (!q.labels?.thread || p.instance === 'b'));
    expect(m.profiles).toBe(selected.length);
    expect(m.profilesFromRollup).toBe(fromRollup);
    expect(byFunction(m)).toEqual(expected(sent, { service: SERVICE, labels: {}, ...q }));
  });

  it('a profile stored twice makes its hour read raw, and the merge counts it once', async () => {
    const before = await merged(WHOLE);
    const dup = sent.find((p) => p.instance === 'a' && p.timeMs >= H0 + HOUR && p.timeMs < H0 + 2 * HOUR)!;
    // As a retry landing in another insert block would, before the ReplacingMergeTree merges it.
    await store().inspect(`INSERT INTO profiles SETTINGS insert_deduplicate = 0 SELECT * FROM profiles WHERE service = '${SERVICE}' AND instance LIKE 'host-a%' AND time = fromUnixTimestamp64Milli(${dup.timeMs}, 'UTC')`);
    const after = await merged(WHOLE);
    expect(after.profiles).toBe(before.profiles);
    expect(after.profilesFromRollup).toBe(sent.length - sent.filter((p) => p.timeMs >= H0 + HOUR && p.timeMs < H0 + 2 * HOUR).length);
    expect(byFunction(after)).toEqual(byFunction(before));
    await store().inspect(`OPTIMIZE TABLE profiles FINAL`); // the duplicate merged away
    expect((await merged(WHOLE)).profilesFromRollup).toBe(sent.length);
  });

  it('a rollup that counts other profiles than the raw table is not read, and the next pass corrects it', async () => {
    const before = await merged(WHOLE);
    // Hour H0+2 summed twice (two collectors racing, say): its counts no longer match.
    await store().inspect(`INSERT INTO profiles_hourly SETTINGS insert_deduplicate = 0 SELECT * FROM profiles_hourly WHERE service = '${SERVICE}' AND hour = fromUnixTimestamp64Milli(${H0 + 2 * HOUR}, 'UTC')`);
    const twice = await merged(WHOLE);
    expect(twice.profilesFromRollup).toBe(sent.filter((p) => p.timeMs < H0 + 2 * HOUR).length);
    expect(byFunction(twice)).toEqual(byFunction(before));
    // The pass adds the difference (here negative) for that hour alone.
    expect(await store().rollUp(Date.now(), () => false)).toEqual({ hours: 1 });
    const corrected = await merged(WHOLE);
    expect(corrected.profilesFromRollup).toBe(sent.length);
    expect(byFunction(corrected)).toEqual(byFunction(before));
    // No rollup at all: everything raw, the same merge.
    await store().inspect('TRUNCATE TABLE profiles_hourly');
    const raw = await merged(WHOLE);
    expect(raw.profilesFromRollup).toBe(0);
    expect(byFunction(raw)).toEqual(byFunction(before));
    // The next pass fills every hour (here one instance a statement, so each
    // hour in two); two at once (two collectors, or the background pass)
    // insert each part with the same deduplication token, so it is stored once.
    await Promise.all([store().rollUp(Date.now(), () => false, { instancesPerStatement: 1 }), store().rollUp(Date.now(), () => false, { instancesPerStatement: 1 })]);
    const again = await merged(WHOLE);
    expect(again.profilesFromRollup).toBe(sent.length);
    expect(byFunction(again)).toEqual(byFunction(before));
    expect(await store().rollUp(Date.now(), () => false)).toEqual({ hours: 0 });
  });

  it('a profile that arrives after its hour was summed is read raw until the next pass adds it', async () => {
    const late: Sent = { instance: 'a', timeMs: H0 + HOUR + 7 * MIN, stacks: [{ fn: 'site1', objects: 9, bytes: 9001 }, { fn: 'late', objects: 1, bytes: 77 }] };
    await send(late);
    await collector.ingester.flush();
    const all = [...sent, late];
    const m = await merged(WHOLE);
    expect(m.profiles).toBe(all.length);
    expect(m.profilesFromRollup).toBe(sent.filter((p) => p.timeMs < H0 + HOUR || p.timeMs >= H0 + 2 * HOUR).length);
    expect(byFunction(m)).toEqual(expected(all, { service: SERVICE, labels: {}, ...WHOLE }));
    expect(await store().rollUp(Date.now(), () => false)).toEqual({ hours: 1 });
    const rolled = await merged(WHOLE);
    expect(rolled.profilesFromRollup).toBe(all.length);
    expect(byFunction(rolled)).toEqual(byFunction(m));
    sent.push(late);
  });

  it('rolls up only hours that ended the grace period ago; newer profiles are read raw', async () => {
    // The current hour's first instant: no pass by the real clock rolls this hour up while the test runs.
    const hour = H0 + 4 * HOUR;
    const late = plan(hour, hour + 1);
    for (const p of late) await send(p);
    await collector.ingester.flush();
    expect(await store().rollUp(hour + HOUR + 5 * MIN, () => false)).toEqual({ hours: 0 });
    const q = { fromMs: H0, toMs: hour + HOUR - 1 };
    const m = await merged(q);
    expect(m.profiles).toBe(sent.length + late.length);
    expect(m.profilesFromRollup).toBe(sent.length);
    expect(byFunction(m)).toEqual(expected([...sent, ...late], { service: SERVICE, labels: {}, ...q }));
    // A pass that looks back less far than the hour leaves it (later passes look back 6 h).
    expect(await store().rollUp(hour + HOUR + 11 * MIN, () => false, { sinceMs: hour + 1 })).toEqual({ hours: 0 });
    expect(await store().rollUp(hour + HOUR + 11 * MIN, () => false)).toEqual({ hours: 1 });
    const rolled = await merged(q);
    expect(rolled.profilesFromRollup).toBe(sent.length + late.length);
    expect(byFunction(rolled)).toEqual(byFunction(m));
  });
});
