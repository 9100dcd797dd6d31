/**
 * One evaluator among many collectors: the lease in the store. chDB binds
 * one data directory per process, so two embedded collectors cannot share
 * a store; the two "collectors" here are two LeaseKeepers (and two
 * LeakMonitors) with different holder ids on one real store, in one process.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type Collector } from '../../collector/src';
import { LeakMonitor } from '../../collector/src/leaks';
import { LeaseKeeper } from '../../collector/src/leaks/lease';
import { startCollectorProcess, tempDir, type RunningCollector } from '../helpers/collector';
import { ingest, profileRequest } from '../helpers/ingest';

let collector: Collector;
beforeAll(async () => {
  collector = await startCollector({ grpcPort: 0, httpPort: 0, dataDir: tempDir('lease'), logLevel: 'error', leakEvaluationMs: 0 });
});
afterAll(async () => {
  await collector?.close();
});

describe('LeaseKeeper', () => {
  it('gives the lease to one holder, keeps it while it renews, and hands it over when it lapses', async () => {
    let now = Date.now();
    const clock = { now: () => now, ttlMs: 30_000 };
    const a = new LeaseKeeper(collector.store, 'test-1', 'collector-a', clock);
    const b = new LeaseKeeper(collector.store, 'test-1', 'collector-b', clock);
    expect(await a.tryHold()).toBe(true);
    expect(await b.tryHold()).toBe(false);
    now += 20_000;
    expect(await a.tryHold()).toBe(true); // renewed: 30 s from now
    now += 20_000;
    expect(await b.tryHold()).toBe(false); // a's renewal still holds
    now += 15_000; // a stopped renewing 35 s ago
    expect(await b.tryHold()).toBe(true);
    expect(await a.tryHold()).toBe(false);
    expect([a.held, b.held]).toEqual([false, true]);
  });

  it('lets exactly one of two claimants that race at the same instant win', async () => {
    const now = Date.now();
    const opts = { now: () => now, ttlMs: 30_000 };
    const keepers = ['collector-y', 'collector-x', 'collector-z'].map((h) => new LeaseKeeper(collector.store, 'test-race', h, opts));
    const won = await Promise.all(keepers.map((k) => k.tryHold()));
    expect(won.filter(Boolean)).toHaveLength(1);
    // Same acquisition time: the tie goes to the lowest holder id, which every reader computes alike.
    expect(keepers[won.indexOf(true)]!.holder).toBe('collector-x');
    // The others stand down on their next try.
    const again = await Promise.all(keepers.map((k) => k.tryHold()));
    expect(again).toEqual(won);
  });

  it('hands over at once when the holder releases it', async () => {
    let now = Date.now();
    const opts = { now: () => now, ttlMs: 60_000 };
    const a = new LeaseKeeper(collector.store, 'test-release', 'collector-a', opts);
    const b = new LeaseKeeper(collector.store, 'test-release', 'collector-b', opts);
    expect(await a.tryHold()).toBe(true);
    now += 1000;
    await a.release();
    now += 1;
    expect(await b.tryHold()).toBe(true);
  });
});

describe('two LeakMonitors on one store', () => {
  it('evaluate each service once per round: only the lease holder runs', async () => {
    for (const s of ['svc-1', 'svc-2']) expect(await ingest(`127.0.0.1:${collector.grpcPort}`, profileRequest(s, [['f', '/app/f.js', 1]]))).toBe(grpc.status.OK);
    const monitors = ['m-1', 'm-2'].map(
      (holder) => new LeakMonitor(collector.store, { periodMs: 60_000, log: { error: () => {} }, lease: new LeaseKeeper(collector.store, 'leak-evaluator-test', holder) }),
    );
    for (let round = 0; round < 3; round++) {
      await Promise.all(monitors.map((m) => m.evaluateAll()));
    }
    const [m1, m2] = monitors.map((m) => m.counters);
    expect(m1!.evaluations + m2!.evaluations).toBe(2 * 3);
    expect([m1!.passes, m2!.passes].sort()).toEqual([0, 3]);
    expect(m1!.skipped + m2!.skipped).toBe(3);
    await Promise.all(monitors.map((m) => m.stop()));
  });
});

describe('LeakMonitor pacing', () => {
  it('waits a period after a short pass, and longer after a long one, up to two periods', async () => {
    expect(await ingest(`127.0.0.1:${collector.grpcPort}`, profileRequest('pace-svc', [['f', '/app/f.js', 1]]))).toBe(grpc.status.OK);
    // Each evaluation held 150 ms by the `run` hook (where the collector puts its evaluation limiter).
    const m = new LeakMonitor(collector.store, {
      periodMs: 100,
      log: { error: () => {} },
      run: async (task) => {
        await new Promise((r) => setTimeout(r, 150));
        return task();
      },
    });
    m.start();
    expect(m.counters.waitMs).toBe(100);
    const deadline = Date.now() + 60_000;
    while (m.counters.passes < 1 || m.counters.waitMs === 100) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 20));
    }
    await m.stop();
    expect(m.counters.lastPassMs).toBeGreaterThanOrEqual(150);
    // Paced, a 150 ms pass would wait 850 ms: capped at two periods.
    expect(m.counters.waitMs).toBe(200);
  });
});

describe('--role ingest', () => {
  let ingestOnly: RunningCollector;
  beforeAll(async () => {
    ingestOnly = await startCollectorProcess({ args: ['--role', 'ingest'] });
  });
  afterAll(async () => {
    await ingestOnly?.stop();
  });

  it('runs no background evaluation and stores no report when asked to evaluate', async () => {
    expect(await ingest(ingestOnly.grpcAddress, profileRequest('role-svc', [['f', '/app/f.js', 1]]))).toBe(grpc.status.OK);
    const evaluations = async () => Number(/^heapwatch_leak_evaluations_total (\d+)$/m.exec(await (await fetch(`${ingestOnly.httpUrl}/metrics`)).text())?.[1]);
    expect((await fetch(`${ingestOnly.httpUrl}/api/v1/leaks?service=role-svc&evaluate=true`)).status).toBe(200);
    expect(await evaluations()).toBe(1);
    // Nothing was stored: the stored report asked for next is computed again.
    expect((await fetch(`${ingestOnly.httpUrl}/api/v1/leaks?service=role-svc`)).status).toBe(200);
    expect(await evaluations()).toBe(2);
    expect(await (await fetch(`${ingestOnly.httpUrl}/metrics`)).text()).toMatch(/^heapwatch_leak_evaluator_lease_held 0$/m);
  });
});

describe('--role evaluate', () => {
  let evaluator: RunningCollector;
  beforeAll(async () => {
    evaluator = await startCollectorProcess({ args: ['--role', 'evaluate'] });
  });
  afterAll(async () => {
    await evaluator?.stop();
  });

  it('does not serve Ingest, and serves the API and health', async () => {
    expect(await ingest(evaluator.grpcAddress, profileRequest('x', [['f', '/app/f.js', 1]]))).toBe(grpc.status.UNIMPLEMENTED);
    expect((await fetch(`${evaluator.httpUrl}/api/v1/services`)).status).toBe(200);
    expect((await fetch(`${evaluator.httpUrl}/readyz`)).status).toBe(200);
  });
});
