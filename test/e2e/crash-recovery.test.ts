/**
 * kill -9 during ingest loses nothing acknowledged and stores nothing
 * twice: an agent is acknowledged only once its profile is in the store
 * (store/batcher.ts), so what a collector had acknowledged when it was
 * killed must be there when the store is opened again, each profile once.
 * Profiles in flight at the kill may or may not be stored (their agents
 * retry them); they are not counted either way.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ingestProto, type IngestRequest } from '@heapwatch/proto';
import { startCollector } from '../../collector/src';
import type { ClickHouseStore } from '../../collector/src/store/clickhouse';
import { startCollectorProcess, tempDir } from '../helpers/collector';
import { buildProfile, gzipProfile } from '../helpers/pprof';

describe('crash during ingest', () => {
  it('after kill -9 under load and a restart, every acknowledged profile is stored exactly once', async () => {
    const dataDir = tempDir('crash');
    const c = await startCollectorProcess({ dataDir });
    const client = new (ingestProto().heapwatch.v1.IngestService)(c.grpcAddress, grpc.credentials.createInsecure());
    const acked: string[] = [];
    let killed = false;
    const sender = async (s: number) => {
      for (let n = 0; !killed; n++) {
        const profileId = `crash-${s}-${n}`;
        const req: IngestRequest = {
          profileId,
          service: 'crash',
          instance: { hostname: 'h', pid: 100 + s, processStartTimeMs: Date.now() - 60_000, threadId: 0 },
          startTimeMs: Date.now() - 1000,
          endTimeMs: Date.now(),
          pprofGzip: gzipProfile(buildProfile(Array.from({ length: 50 }, (_, k) => ({ frames: [[`f${k}`, `/app/${s}.js`, n + 1], ['main', '/app/main.js', 1]], objects: 1, bytes: 64 * (k + 1) })))),
        };
        const ok = await new Promise<boolean>((resolve) => client.Ingest(req, { deadline: Date.now() + 10_000 }, (err) => resolve(!err)));
        if (ok && !killed) acked.push(profileId);
      }
    };
    const senders = Array.from({ length: 8 }, (_, s) => sender(s));
    // Kill once a fair number are acknowledged, with more in flight.
    for (const until = Date.now() + 60_000; acked.length < 40 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    const ackedAtKill = [...acked];
    c.process.kill('SIGKILL');
    killed = true;
    await new Promise((r) => c.process.once('exit', r));
    await Promise.all(senders);
    client.close();
    expect(ackedAtKill.length).toBeGreaterThanOrEqual(40);

    // Restart on the same directory (in this process: chDB opens one directory per process).
    const again = await startCollector({ grpcPort: 0, httpPort: 0, dataDir, logLevel: 'silent', leakEvaluationMs: 0 });
    try {
      // Every row, merged or not: a profile written twice would show twice.
      const rows = await (again.store as ClickHouseStore).inspect<{ profile_id: string; n: string }>(
        "SELECT profile_id, count() AS n FROM profiles WHERE service = 'crash' GROUP BY profile_id",
      );
      const stored = new Map(rows.map((r) => [r.profile_id, Number(r.n)]));
      expect(ackedAtKill.filter((id) => !stored.has(id)), 'acknowledged but not stored').toEqual([]);
      expect([...stored].filter(([, n]) => n > 1), 'stored more than once').toEqual([]);
    } finally {
      await again.close();
    }
  });
});
