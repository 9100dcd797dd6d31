/**
 * Off-heap leak, end to end: a worker with the agent preloaded parks ~100 KB
 * payload Buffers in a closure's retry list (its V8 heap stays nearly flat,
 * its external memory climbs, and V8 runs few major GCs); a real collector
 * (own process, embedded ClickHouse, evaluating every second) suspects the
 * raw external growth, asks for precise mode, whose GC assist gives the
 * gauge its post-GC points, flags the external growth on them, asks the
 * one instance for a holder capture, and the report's off-heap finding gets
 * a site: the holder, named by its variable and the function that declares
 * it, at its file and line. Beside it, a worker that keeps parsed objects in
 * a Map (an on-heap leak): its flagged site gets the Map as `heldBy`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_REGISTER, CLI, getJson, ROOT, startCollectorProcess, waitFor, type RunningCollector } from '../helpers/collector';
import { spawnSync } from 'node:child_process';

const WORKER = path.join(ROOT, 'test/fixtures/parked-uploads-worker.js');
const ENRICHED = path.join(ROOT, 'test/fixtures/enriched-orders-worker.js');
const SERVICE = 'e2e-parked-uploads';
const DECLARED_AT = fs.readFileSync(WORKER, 'utf8').split('\n').findIndex((l) => l.includes('function createUploader(')) + 1;

interface Report {
  leaks: { function: string; heldBy: { siteKind: string; owner: string; function: string; file: string; heapBytes: number; offHeapBytes: number; match: string; path: string } | null }[];
  process: { kind: string; site?: { siteKind: string; function: string; file: string; line: number; owner: string; path: string } | null }[];
  holders: { instance: string; skipped: string | null; pauseMs: number; holders: { owner: string; function: string; offHeapBytes: number; path: string }[] } | null;
}

describe('an off-heap retry-buffer leak is reported with its holder', () => {
  let collector: RunningCollector;
  let worker: ChildProcess;
  let overBudget: ChildProcess;
  let enriched: ChildProcess;
  let stderr = '';

  beforeAll(async () => {
    collector = await startCollectorProcess({ args: ['--leak-interval-ms', '1000', '--leak-min-growth-ms', '10000', '--suspect-ttl-ms', '1000'] });
    worker = spawn(process.execPath, ['--require', AGENT_REGISTER, WORKER], {
      env: {
        ...process.env,
        HEAPWATCH_COLLECTOR: collector.grpcAddress,
        HEAPWATCH_SERVICE: SERVICE,
        HEAPWATCH_INTERVAL_MS: '500',
        HEAPWATCH_LOG_LEVEL: 'info',
        FIXTURE_UPLOADS_PER_SEC: '20',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // The same leak with 40 MB of heap kept and a 16 MB capture budget: asked, it must skip and say so.
    overBudget = spawn(process.execPath, ['--require', AGENT_REGISTER, WORKER], {
      env: {
        ...process.env,
        HEAPWATCH_COLLECTOR: collector.grpcAddress,
        HEAPWATCH_SERVICE: `${SERVICE}-over-budget`,
        HEAPWATCH_INTERVAL_MS: '500',
        HEAPWATCH_HOLDER_MAX_HEAP_MB: '16',
        FIXTURE_UPLOADS_PER_SEC: '20',
        FIXTURE_BALLAST_MB: '40',
      },
      stdio: 'ignore',
    });
    // ~250 KB of parsed objects a second, sampled every 32 KiB; a budget its heap stays within.
    enriched = spawn(process.execPath, ['--require', AGENT_REGISTER, ENRICHED], {
      env: {
        ...process.env,
        HEAPWATCH_COLLECTOR: collector.grpcAddress,
        HEAPWATCH_SERVICE: `${SERVICE}-enriched`,
        HEAPWATCH_INTERVAL_MS: '500',
        HEAPWATCH_SAMPLING_INTERVAL_BYTES: String(32 * 1024),
        HEAPWATCH_HOLDER_MAX_HEAP_MB: '512',
        FIXTURE_ORDERS_PER_SEC: '200',
      },
      stdio: 'ignore',
    });
  });

  /** The service's stored report once `ready` holds of it; on time-out, the last report (and `context()`) in the error. */
  async function reportWhen(service: string, what: string, ready: (r: Report) => boolean, context: () => string = () => ''): Promise<Report> {
    let last: Report | undefined;
    return waitFor(
      what,
      async () => {
        const { status, body } = await getJson<Report>(`${collector.httpUrl}/api/v1/leaks?service=${service}`);
        if (status !== 200) return undefined;
        last = body;
        return ready(body) ? body : undefined;
      },
      420_000,
      500,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nlast report: ${JSON.stringify({ leaks: last?.leaks, process: last?.process, holders: last?.holders })}\n${context()}`);
    });
  }

  afterAll(async () => {
    worker?.kill('SIGKILL');
    overBudget?.kill('SIGKILL');
    enriched?.kill('SIGKILL');
    await collector?.stop();
  });

  it('names the retry list and the function that declares it, at its line', async () => {
    // Count-based: the external finding, then the capture's answer, whatever the load.
    const report = await reportWhen(SERVICE, 'an external finding with a holder site', (r) => r.process.some((p) => p.kind === 'external' && p.site), () => `agent log:\n${stderr.slice(-3000)}`);
    const finding = report.process.find((p) => p.kind === 'external')!;
    expect(finding.site).toMatchObject({ siteKind: 'holder', owner: 'pendingRetries', function: 'createUploader', file: WORKER, line: DECLARED_AT });
    expect(finding.site!.path).toMatch(/^pendingRetries \(Array, \d+ items\) ← context of createUploader/);
    expect(report.holders!.skipped).toBeNull();
    expect(report.holders!.pauseMs).toBeGreaterThan(0);
    expect(report.holders!.holders[0]!.offHeapBytes).toBeGreaterThan(1_000_000);
    // Off-heap growth alone brought precise mode (its GC assist makes the post-GC points).
    expect(stderr).toMatch(/precise mode on \([^)]*(external rising|off-heap memory)/);
    // One capture: the agent logged one, and no second was asked within the cool-down.
    expect(stderr.match(/holder capture: /g)).toHaveLength(1);

    // The CLI's table shows the holder.
    const cli = spawnSync(process.execPath, [CLI, 'leaks', '--service', SERVICE, '--url', collector.httpUrl], { encoding: 'utf8', timeout: 60_000 });
    expect(cli.status, cli.stderr).toBe(3);
    const table = cli.stdout;
    expect(table).toMatch(/HELD BY/);
    expect(table).toMatch(/pendingRetries in createUploader \(.*parked-uploads-worker\.js:\d+\)/);
    expect(table).toMatch(/holders \(heap snapshot of .* ms pause/);
  }, 480_000);

  it('skips the capture when the heap is above the budget, and the report says so', async () => {
    const report = await reportWhen(`${SERVICE}-over-budget`, 'a skipped holder capture in the report', (r) => r.holders !== null);
    expect(report.holders!.skipped).toMatch(/heap used \d+ MB is above the pause budget of 16 MB \(HEAPWATCH_HOLDER_MAX_HEAP_MB\)/);
    expect(report.holders!.holders).toEqual([]);
    const finding = report.process.find((p) => p.kind === 'external');
    expect(finding?.site ?? null).toBeNull();
    // The request and its answer are counted.
    const metrics = await (await fetch(`${collector.httpUrl}/metrics`)).text();
    expect(Number(/^heapwatch_holder_requests_asked_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/^heapwatch_holder_requests_answered_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  }, 480_000);

  it('an on-heap leak: the flagged site is held by the Map its code keeps', async () => {
    const report = await reportWhen(`${SERVICE}-enriched`, 'a flagged site with heldBy', (r) => r.leaks.some((l) => l.function === 'enrich' && l.heldBy));
    // The parsed profiles are allocated in enrich (JSON.parse), which keeps the Map's context.
    const leak = report.leaks.find((l) => l.function === 'enrich')!;
    expect(leak.heldBy).toMatchObject({ siteKind: 'holder', owner: 'enriched', function: 'createEnricher', file: ENRICHED, offHeapBytes: 0, match: 'stack' });
    expect(leak.heldBy!.path).toMatch(/^enriched \(Map, \d+ items\) ← context of createEnricher .*, used by enrich$/);
    expect(leak.heldBy!.heapBytes).toBeGreaterThan(1024 * 1024);
  }, 480_000);
});
