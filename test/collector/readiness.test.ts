/**
 * Honest health: a collector whose data directory is full fails every
 * insert; /healthz (liveness) still answers 200, /readyz answers 503 with
 * the reason, /metrics says heapwatch_ready 0, gRPC health NOT_SERVING
 * (its `liveness` service SERVING), and all of it recovers once
 * space is back. The full disk is real: a small tmpfs mounted for the test
 * (needs root and mount; skipped otherwise).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollectorProcess, tempDir, waitFor, type RunningCollector } from '../helpers/collector';
import { healthCheck, ingest, profileRequest } from '../helpers/ingest';

const mountPoint = tempDir('tmpfs');
function mountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mountPoint], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const mounted = mountTmpfs();

/** Writes until the file system is full. */
function fill(file: string): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

describe.skipIf(!mounted)('readiness on a full data directory (a real 64 MB tmpfs; needs root)', () => {
  let collector: RunningCollector;
  const filler = path.join(mountPoint, 'filler');
  beforeAll(async () => {
    collector = await startCollectorProcess({ dataDir: path.join(mountPoint, 'data'), args: ['--leak-interval-ms', '0'] });
  });
  afterAll(async () => {
    await collector?.stop();
    execFileSync('umount', [mountPoint]);
  });

  const ready = async () => {
    const res = await fetch(`${collector.httpUrl}/readyz`);
    return { status: res.status, body: (await res.json()) as { status: string; reasons?: string[] } };
  };

  it('is ready and stores while there is space', async () => {
    expect(await ingest(collector.grpcAddress, profileRequest('disk', [['f', '/app/f.js', 1]]))).toBe(grpc.status.OK);
    expect(await ready()).toEqual({ status: 200, body: { status: 'ready' } });
    expect(await healthCheck(collector.grpcAddress, '')).toEqual({ status: 'SERVING', reasons: [] });
  });

  it('is alive but not ready, with the reason, once inserts fail', async () => {
    fill(filler);
    for (let i = 0; i < 3; i++) {
      expect(await ingest(collector.grpcAddress, profileRequest('disk', [[`g${i}`, '/app/g.js', i + 1]]))).toBe(grpc.status.UNAVAILABLE);
    }
    expect((await fetch(`${collector.httpUrl}/healthz`)).status).toBe(200);
    const r = await waitFor('not ready', async () => {
      const x = await ready();
      return x.status === 503 ? x : undefined;
    });
    expect(r.body.status).toBe('not ready');
    expect(r.body.reasons?.join('\n')).toMatch(/the last \d+ inserts failed .*and a probe write too/);
    const metrics = await (await fetch(`${collector.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^heapwatch_ready 0$/m);
    expect(metrics).toMatch(/^heapwatch_not_ready_reason\{reason="inserts_failing"\} 1$/m);
    // gRPC health follows readiness, with the same reason; its liveness service does not.
    for (const service of ['', 'heapwatch.v1.IngestService']) {
      const h = await healthCheck(collector.grpcAddress, service);
      expect(h.status).toBe('NOT_SERVING');
      expect(h.reasons.join('\n')).toMatch(/the last \d+ inserts failed/);
    }
    expect((await healthCheck(collector.grpcAddress, 'liveness')).status).toBe('SERVING');
  });

  it('is ready again once space is back, without an ingest to prove it', async () => {
    fs.rmSync(filler);
    await waitFor('ready again', async () => ((await ready()).status === 200 ? true : undefined), 30_000, 500);
    expect(await ingest(collector.grpcAddress, profileRequest('disk', [['h', '/app/h.js', 1]]))).toBe(grpc.status.OK);
    const metrics = await (await fetch(`${collector.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^heapwatch_ready 1$/m);
    expect((await healthCheck(collector.grpcAddress, '')).status).toBe('SERVING');
  });
});
