/**
 * The whole path with nothing faked: a real Node worker with the agent
 * preloaded -> gRPC -> the collector (its own process, embedded ClickHouse)
 * -> the HTTP API -> a decoded pprof. And the collector going away and
 * coming back while the worker keeps working.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Profile } from 'pprof-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_REGISTER, ROOT, getJson, startCollectorProcess, tempDir, waitFor, type RunningCollector } from '../helpers/collector';

const INTERVAL_MS = 500;
const WORKER = path.join(ROOT, 'test/fixtures/retaining-worker.js');

interface Service {
  service: string;
  instances: number;
  profiles: number;
}

function startWorker(collector: string, service: string): ChildProcess & { ticks(): number; output(): string } {
  const child = spawn(process.execPath, ['--require', AGENT_REGISTER, WORKER], {
    env: {
      ...process.env,
      HEAPWATCH_COLLECTOR: collector,
      HEAPWATCH_SERVICE: service,
      HEAPWATCH_INTERVAL_MS: String(INTERVAL_MS),
      HEAPWATCH_SAMPLING_INTERVAL_BYTES: String(32 * 1024),
      HEAPWATCH_LABELS: 'env=e2e,queue=payments',
      HEAPWATCH_LOG_LEVEL: 'warn',
      // Inlining off from start, so the merged profile charges the retained
      // bytes to retainPayload() itself; in the default mode TurboFan inlines
      // it into its callers until the collector asks for precise mode
      // (test/e2e/precise-directive.test.ts).
      HEAPWATCH_PRECISE: 'always',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let ticks = 0;
  child.stdout!.on('data', (d: Buffer) => {
    const m = /tick (\d+)\n$/.exec(d.toString());
    if (m) ticks = Number(m[1]);
  });
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return Object.assign(child, { ticks: () => ticks, output: () => out });
}

async function servicesEntry(base: string, service: string): Promise<Service | undefined> {
  const { body } = await getJson<Service[]>(`${base}/api/v1/services`);
  return body.find((s) => s.service === service);
}

/** Retained bytes per function, counting each sample once at its deepest /app frame (here: the fixture file). */
function bytesBySiteFunction(p: Profile, fileSuffix: string): { byFunction: Record<string, number>; total: number } {
  const s = p.stringTable.strings;
  const fns = new Map(p.function.map((f) => [String(f.id), { name: s[Number(f.name)]!, file: s[Number(f.filename)]! }]));
  const frameOf = new Map(p.location.map((l) => [String(l.id), fns.get(String(l.line[0]!.functionId))!]));
  const bytesIndex = p.sampleType.findIndex((t) => s[Number(t.type)] === 'space');
  const byFunction: Record<string, number> = {};
  let total = 0;
  for (const sample of p.sample) {
    const bytes = Number(sample.value[bytesIndex]);
    total += bytes;
    const site = sample.locationId.map((id) => frameOf.get(String(id))!).find((f) => f.file.endsWith(fileSuffix));
    if (site) byFunction[site.name] = (byFunction[site.name] ?? 0) + bytes;
  }
  return { byFunction, total };
}

describe('agent -> collector -> API', () => {
  let collector: RunningCollector;
  let worker: ReturnType<typeof startWorker>;
  const service = 'e2e-payments-worker';

  beforeAll(async () => {
    collector = await startCollectorProcess();
    worker = startWorker(collector.grpcAddress, service);
  });

  afterAll(async () => {
    worker?.kill('SIGKILL');
    await collector?.stop();
  });

  it('lists the worker within two intervals of its first profile', async () => {
    const started = Date.now();
    const entry = await waitFor('the worker in /api/v1/services', () => servicesEntry(collector.httpUrl, service), 20_000, 100);
    expect(entry.instances).toBe(1);
    // Start-up (node, the agent, gRPC connect) is not part of the interval budget.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('exports a merged pprof in which the retaining function holds most retained bytes', async () => {
    await waitFor('six profiles', async () => ((await servicesEntry(collector.httpUrl, service))?.profiles ?? 0) >= 6 || undefined);
    const res = await fetch(`${collector.httpUrl}/api/v1/profile?service=${service}&label.queue=payments`);
    expect(res.status).toBe(200);
    const gz = Buffer.from(await res.arrayBuffer());
    const p = Profile.decode(zlib.gunzipSync(gz));
    const s = p.stringTable.strings;
    expect(p.sampleType.map((t) => `${s[Number(t.type)]}/${s[Number(t.unit)]}`)).toEqual(['objects/count', 'space/bytes']);
    const { byFunction, total } = bytesBySiteFunction(p, 'retaining-worker.js');
    const ranked = Object.entries(byFunction).sort((a, b) => b[1] - a[1]);
    expect(ranked[0]?.[0], JSON.stringify(ranked)).toBe('retainPayload');
    expect(ranked[0]![1] / total).toBeGreaterThan(0.5);
  });

  const go = spawnSync('go', ['version']).status === 0;
  it.skipIf(!go)('the merged pprof opens in go tool pprof (skipped where go is not on the PATH)', async () => {
    await waitFor('six profiles', async () => ((await servicesEntry(collector.httpUrl, service))?.profiles ?? 0) >= 6 || undefined);
    const res = await fetch(`${collector.httpUrl}/api/v1/profile?service=${service}&label.queue=payments`);
    expect(res.status).toBe(200);
    const file = path.join(tempDir('e2e'), 'heap.pb.gz');
    fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const top = execFileSync('go', ['tool', 'pprof', '-top', '-sample_index=space', file], { encoding: 'utf8' });
    expect(top).toMatch(/retainPayload/);
  });

  it('a label filter that matches nothing gives an empty profile, not an error', async () => {
    const res = await fetch(`${collector.httpUrl}/api/v1/profile?service=${service}&label.queue=email`);
    expect(res.status).toBe(200);
    expect(Profile.decode(zlib.gunzipSync(Buffer.from(await res.arrayBuffer()))).sample).toHaveLength(0);
  });

  it('keeps the worker working while the collector is down, and resumes when it is back', async () => {
    const before = (await servicesEntry(collector.httpUrl, service))!.profiles;
    const { grpcPort, dataDir } = collector;
    await collector.stop();
    const ticksAtStop = worker.ticks();
    await new Promise((r) => setTimeout(r, 3 * INTERVAL_MS));
    expect(worker.exitCode).toBeNull();
    expect(worker.ticks()).toBeGreaterThan(ticksAtStop);

    collector = await startCollectorProcess({ dataDir, grpcPort });
    const after = await waitFor(
      'profiles to resume',
      async () => {
        const e = await servicesEntry(collector.httpUrl, service);
        return e && e.profiles >= before + 3 ? e : undefined;
      },
      30_000,
    );
    expect(after.instances).toBe(1);
    expect(worker.exitCode).toBeNull();
  });
});
