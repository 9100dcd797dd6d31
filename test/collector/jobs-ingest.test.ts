/**
 * Job counters through the real collector (gRPC, validation, embedded
 * ClickHouse, the leak report): a store created before the job columns
 * existed gains them at start and keeps its old profiles; profiles from an
 * agent that predates job counters and from one that sends them sit side
 * by side; a request whose counters the store could not keep is refused
 * with INVALID_ARGUMENT.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestProto, type IngestRequest, type IngestServiceClient } from '@heapwatch/proto';
import { ClickHouseStore, startCollector, type Collector } from '../../collector/src';
import { evaluateLeaks, formatLeakTable } from '../../collector/src/leaks';
import { tempDir } from '../helpers/collector';
import { buildProfile, gzipProfile } from '../helpers/pprof';

const JOB_COLUMNS = ['job_queues', 'job_names', 'jobs_completed', 'jobs_failed', 'job_run_time_us', 'job_wait_time_ms', 'jobs_waited', 'jobs_dropped', 'queue_depth_queues', 'queue_depth_waiting'];
const T0 = Math.floor(Date.now() / 1000) * 1000 - 3600_000;
const INTERVAL_MS = 10_000;
const dataDir = tempDir('jobs-ingest');
let collector: Collector;
let client: IngestServiceClient;

function send(req: IngestRequest): Promise<void> {
  return new Promise((resolve, reject) => client.Ingest(req, { deadline: Date.now() + 30_000 }, (err) => (err ? reject(err) : resolve())));
}

/** Profile i of a worker whose `resize` jobs keep 12,000 bytes each; the mix changes every 4 profiles. */
function profile(service: string, i: number, withJobs: boolean): IngestRequest {
  let resize = 0;
  let email = 0;
  for (let k = 1; k <= i; k++) {
    const phase = Math.floor(k / 4) % 3;
    resize += phase === 1 ? 0 : 200 + (k % 5) * 10;
    email += phase === 2 ? 0 : 300 + (k % 7) * 10;
  }
  return {
    profileId: `${service}-${i}`,
    service,
    instance: { hostname: 'h', pid: 7, processStartTimeMs: T0 - 1000, threadId: 0, runtimeVersion: 'v20', agentVersion: 'test' },
    startTimeMs: T0 + (i - 1) * INTERVAL_MS,
    endTimeMs: T0 + i * INTERVAL_MS,
    pprofGzip: gzipProfile(buildProfile([{ frames: [['work', '/app/w.js', 1]], objects: 1, bytes: 1024 }])),
    memory: { rssBytes: 300 << 20, heapUsedBytes: (40 << 20) + resize * 12_000 + ((i * 7919) % 13) * 1000, heapTotalBytes: 250 << 20, heapSizeLimitBytes: 4096 << 20 },
    gc: { majorGcs: i + 1, lastMajorGcEndMs: T0 + i * INTERVAL_MS, afterMajorGc: true },
    agent: {},
    jobs: withJobs
      ? {
          types: [
            { queue: 'media', name: 'resize', completed: resize, failed: 0, runTimeUs: resize * 4000, waitTimeMs: resize * 20, waited: resize },
            { queue: 'media', name: 'email', completed: email, failed: 0, runTimeUs: email * 1000, waitTimeMs: 0, waited: 0 },
          ],
          droppedJobs: 3,
          queues: [{ queue: 'media', waiting: 250, readAtMs: T0 + i * INTERVAL_MS }],
        }
      : undefined,
  };
}

beforeAll(async () => {
  // A store as a collector before job counters left it: the same tables without the job columns, with a profile in it.
  const old = await ClickHouseStore.open({ target: { kind: 'embedded', dataDir }, retentionDays: 30 });
  await old.inspect(`ALTER TABLE profiles ${JOB_COLUMNS.map((c) => `DROP COLUMN ${c}`).join(', ')}`);
  const left = await old.inspect<{ name: string }>(`SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'profiles' AND name IN ('${JOB_COLUMNS.join("','")}')`);
  expect(left).toEqual([]);
  await old.close();
  collector = await startCollector({ grpcPort: 0, httpPort: 0, dataDir, logLevel: 'error' });
  const Client = ingestProto().heapwatch.v1.IngestService;
  client = new Client(`127.0.0.1:${collector.grpcPort}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await collector?.close();
});

describe('job counters in the store and the report', () => {
  it('an older store gains the job columns at start', async () => {
    const store = collector.store as ClickHouseStore;
    const cols = await store.inspect<{ name: string }>(`SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'profiles'`);
    expect(cols.map((c) => c.name)).toEqual(expect.arrayContaining(JOB_COLUMNS));
  });

  it('stores the counters per profile and reports the type that retains memory, its bytes per job and the other flat', async () => {
    for (let i = 0; i < 40; i++) await send(profile('media-worker', i, true));
    await collector.ingester.flush();
    const points = await collector.store.forTenant('').profilePoints('media-worker', 120, 24 * 3600_000);
    expect(points).toHaveLength(40);
    expect(points[39]!.jobs).toEqual({
      types: [
        expect.objectContaining({ queue: 'media', name: 'resize', failed: 0 }),
        expect.objectContaining({ queue: 'media', name: 'email', waitTimeMs: 0 }),
      ],
      dropped: 3,
      depths: [{ queue: 'media', waiting: 250 }],
    });
    const report = await evaluateLeaks(collector.store.forTenant(''), 'media-worker', { now: () => T0 + 41 * INTERVAL_MS, persist: false });
    const jobs = report.jobs!;
    expect(jobs.follows).toBe('jobs');
    const resize = jobs.types.find((t) => t.name === 'resize')!;
    expect(resize.verdict).toBe('retains');
    expect(Math.abs(resize.retainedBytesPerJob! - 12_000)).toBeLessThan(200);
    expect(resize.avgRunMs).toBe(4);
    expect(resize.avgWaitMs).toBe(20);
    expect(resize.queueDepth).toBe(250);
    expect(jobs.types.find((t) => t.name === 'email')!.verdict).toBe('flat');
    expect(jobs.droppedJobs).toBe(0); // the same 3 all window long
    expect(formatLeakTable(report)).toMatch(/media\/resize: 11\.\d KiB retained per job/);
  });

  it('an agent that predates job counters gets a report without them (jobs: null)', async () => {
    for (let i = 0; i < 15; i++) await send(profile('old-agent', i, false));
    await collector.ingester.flush();
    const report = await evaluateLeaks(collector.store.forTenant(''), 'old-agent', { now: () => T0 + 16 * INTERVAL_MS, persist: false });
    expect(report.jobs).toBeNull();
    expect(formatLeakTable(report)).not.toMatch(/JOB TYPE/);
  });

  it('refuses counters the store could not keep', async () => {
    const base = profile('bad-jobs', 1, true);
    const type = base.jobs!.types![0]!;
    const cases: [string, IngestRequest['jobs']][] = [
      ['too many job types', { types: Array.from({ length: 1001 }, (_, k) => ({ ...type, name: `t${k}` })) }],
      ['control characters', { types: [{ ...type, name: 'a\nb' }] }],
      ['longer than 256', { types: [{ ...type, queue: 'q'.repeat(300) }] }],
    ];
    for (const [message, jobs] of cases) {
      const err = await send({ ...base, profileId: `bad-${message}`, jobs }).then(() => null, (e: grpc.ServiceError) => e);
      expect(err?.code, message).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details).toMatch(new RegExp(message.split(' ')[0]!));
    }
  });
});
