/**
 * A small request must not buy a large amount of the collector's time or
 * memory. The 65 KB gzip bomb that inflated into 16.7 M functions stopped
 * the event loop for 25.7 s and took RSS from 277 to 3,301 MiB; six at once
 * stalled it for 152 s at 4.4 GiB. Here six are sent at once to a real
 * collector process, with /healthz asked every 25 ms meanwhile, once with
 * the default limits and once with the inflate ratio out of the way (so the
 * reader's counting pass is what stops them). The bounds are generous for a
 * loaded 2-core machine and still a hundred times below what it was.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ingestProto, type IngestRequest } from '@heapwatch/proto';
import { startCollectorProcess, type RunningCollector } from '../helpers/collector';
import { buildProfile, gzipProfile } from '../helpers/pprof';

let collector: RunningCollector | undefined;
afterEach(async () => {
  await collector?.stop();
  collector = undefined;
});

/** CPU seconds the process has used, all threads: what a request cost, however the machine is shared. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** Profile.function (field 5) `{ id: 1 }`, 16.7 M times: 64 MiB that gzips to ~65 KB. */
function functionBomb(): Buffer {
  const one = Buffer.from([0x2a, 0x02, 0x08, 0x01]);
  const n = 16_700_000;
  const all = Buffer.alloc(one.length * n);
  for (let i = 0; i < n; i++) one.copy(all, i * one.length);
  return zlib.gzipSync(all, { level: 9 });
}

function request(pprofGzip: Buffer, i: number): IngestRequest {
  return {
    profileId: `bomb-${i}-${Math.random()}`,
    service: 'bomber',
    instance: { hostname: 'h', pid: 1, processStartTimeMs: Date.now() - 60_000, threadId: 0 },
    startTimeMs: Date.now() - 1000,
    endTimeMs: Date.now(),
    pprofGzip,
  };
}

/** The longest the collector's event loop was held up since it started (its own measure). */
async function loopDelayMaxMs(c: RunningCollector): Promise<number> {
  const text = await (await fetch(`${c.httpUrl}/metrics`)).text();
  return Number(/^heapwatch_event_loop_delay_max_ms (\d+)$/m.exec(text)![1]);
}

async function attack(args: string[]) {
  collector = await startCollectorProcess({ args });
  const c = collector;
  const client = new (ingestProto().heapwatch.v1.IngestService)(c.grpcAddress, grpc.credentials.createInsecure());
  const send = (req: IngestRequest) =>
    new Promise<grpc.ServiceError | null>((resolve) => client.Ingest(req, { deadline: Date.now() + 120_000 }, (err) => resolve(err)));
  // Warm: one real profile through the whole path.
  expect(await send(request(gzipProfile(buildProfile([{ frames: [['f', '/a.js', 1]], objects: 1, bytes: 8 }])), 0))).toBeNull();
  const bomb = functionBomb();
  expect(bomb.length).toBeLessThan(70_000);
  const rss0 = rssBytes(c.process.pid!);
  let rssMax = rss0;
  let healthMax = 0;
  let done = false;
  const health = (async () => {
    while (!done) {
      const t = performance.now();
      // A failed probe counts as the longest wait there can be.
      const ok = await fetch(`${c.httpUrl}/healthz`).then((res) => res.arrayBuffer().then(() => res.ok), () => false);
      healthMax = Math.max(healthMax, ok ? performance.now() - t : Infinity);
      rssMax = Math.max(rssMax, rssBytes(c.process.pid!));
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const loopBefore = await loopDelayMaxMs(c);
  const cpu0 = cpuSeconds(c.process.pid!);
  const t0 = performance.now();
  const errors = await Promise.all(Array.from({ length: 6 }, (_, i) => send(request(bomb, i))));
  const elapsed = performance.now() - t0;
  const cpu = cpuSeconds(c.process.pid!) - cpu0;
  done = true;
  await health;
  client.close();
  return { errors, elapsed, healthMax, rssGrowth: rssMax - rss0, loopDelayMax: Math.max(loopBefore, await loopDelayMaxMs(c)), cpu };
}

describe('decompression bomb', () => {
  it('six 65 KB bombs at once, default limits: refused by the inflate ratio in seconds, /healthz answering, RSS flat', async () => {
    const r = await attack([]);
    for (const e of r.errors) {
      expect(e?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(e?.details).toMatch(/maxInflateRatio/);
    }
    expect(r.cpu).toBeLessThan(3); // CPU seconds for all six; before: 25.7 s for one
    expect(r.elapsed).toBeLessThan(60_000); // before: 152 s
    // Wall-clock bounds allow for a machine shared by the whole suite; on an
    // idle one both are tens of ms. Before: 25.7 s for one bomb.
    expect(r.healthMax).toBeLessThan(5_000);
    expect(r.loopDelayMax).toBeLessThan(5_000);
    expect(r.rssGrowth).toBeLessThan(200 << 20); // before: +4.1 GiB
  });

  it('six at once with the inflate ratio lifted: the function count stops each before any array is built', async () => {
    const r = await attack(['--limit', 'maxInflateRatio=100000']);
    for (const e of r.errors) {
      expect(e?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(e?.details).toMatch(/maxFunctions/);
    }
    // Six 64 MiB inflations are ~2 s of CPU on an idle machine; before, one bomb was 25.7 s.
    expect(r.cpu).toBeLessThan(10);
    expect(r.elapsed).toBeLessThan(60_000);
    // Wall-clock bounds are loose here: this is the one case that inflates
    // 384 MiB, and on a machine shared by the whole suite the collector is
    // not always scheduled (before: the loop stopped 152 s for six).
    expect(r.loopDelayMax).toBeLessThan(5_000);
    expect(r.healthMax).toBeLessThan(30_000);
    // Each inflates to 64 MiB, two at a time (decode slots), and is freed: not 16.7 M objects each.
    expect(r.rssGrowth).toBeLessThan(600 << 20);
  });
});
