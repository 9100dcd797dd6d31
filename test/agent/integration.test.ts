/**
 * Integration: real Node child processes with the agent preloaded, sending
 * to a real grpc-js server (a test double of the collector).
 */
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { trackedResources } from './helpers/cleanups';
import { bytesByTopUserFrame, topOf } from './helpers/collector-double';
import { RUN_CAP_MS, runWithAgent, stopWhen } from './helpers/run-agent';

const { track, collector, defer } = trackedResources();
const forcedGcLines = (run: { stdout(): string }): number => run.stdout().match(/^gc \d+ \d+$/gm)?.length ?? 0;
const str = (p: { stringTable: { strings: string[] } }, i: number | bigint): string => p.stringTable.strings[Number(i)] ?? '';

describe('agent preloaded with --require', () => {
  it('sends profiles with identity, labels, token and the retaining function', async () => {
    const c = await collector();
    const run = track(
      runWithAgent('leaky.js', {
        HEAPWATCH_COLLECTOR: c.address,
        HEAPWATCH_INTERVAL_MS: '500',
        HEAPWATCH_LABELS: 'env=test, team=core',
        HEAPWATCH_TOKEN: 's3cret',
        HEAPWATCH_SAMPLING_INTERVAL_BYTES: '65536',
        HEAPWATCH_PRECISE: 'always',
        FIXTURE_RUN_MS: String(RUN_CAP_MS),
        FIXTURE_STOP: '1',
      }),
    );
    await stopWhen(run, c, (all) => all.length >= 3, '3 interval profiles');
    const { code } = await run.exited;
    expect(run.stderr()).toBe('');
    expect(code).toBe(0);
    expect(run.stdout()).toContain('stopped');
    // 3 interval profiles (or more) plus the one stop() takes.
    expect(c.received.length).toBeGreaterThanOrEqual(4);
    const ids = new Set(c.received.map((r) => r.request.profileId));
    expect(ids.size).toBe(c.received.length);

    const first = c.received[0]!;
    const req = first.request;
    expect(req.service).toBe('leaky'); // main script basename
    expect(req.labels).toEqual({ env: 'test', team: 'core' });
    expect(first.authorization).toBe('Bearer s3cret');
    expect(req.instance).toMatchObject({ pid: run.child.pid, threadId: 0, runtimeVersion: process.version, agentVersion: '0.1.0' });
    expect(req.instance!.processStartTimeMs).toBeGreaterThan(Date.now() - 60_000);
    expect(req.memory!.heapSizeLimitBytes).toBeGreaterThan(0);
    expect(req.memory!.rssBytes).toBeGreaterThan(req.memory!.heapUsedBytes);
    expect(req.endTimeMs).toBeGreaterThan(req.startTimeMs);
    // Consecutive snapshots chain: each window starts where the previous ended.
    for (let i = 1; i < c.received.length; i++) {
      expect(c.received[i]!.request.startTimeMs).toBe(c.received[i - 1]!.request.endTimeMs);
    }
    const last = c.received.at(-1)!;
    expect(last.request.agent!.profilesSent).toBe(c.received.length - 1);
    expect(last.request.agent!.samplingTimeUs).toBeGreaterThan(0);
    expect(last.request.agent!.profilesDropped).toBe(0);

    const p = last.profile;
    expect(p.sampleType.map((t) => `${str(p, t.type)}/${str(p, t.unit)}`)).toEqual(['objects/count', 'space/bytes']);
    expect(Number(p.period)).toBe(65536);
    expect(Number(p.timeNanos)).toBe(last.request.endTimeMs * 1e6);
    expect(Number(p.durationNanos)).toBe((last.request.endTimeMs - last.request.startTimeMs) * 1e6);
    const fn = p.function.find((f) => str(p, f.name) === 'recordFailure');
    expect(fn, 'recordFailure is a function in the profile').toBeDefined();
    expect(str(p, fn!.filename)).toMatch(/fixtures\/leaky\.js$/);
    const loc = p.location.find((l) => l.line.some((ln) => ln.functionId === fn!.id));
    expect(Number(loc!.line[0]!.line)).toBe(5); // the line where recordFailure starts
    // In precise mode inlining is off: the leak is charged to the small helper, not the loop.
    expect(topOf(bytesByTopUserFrame(p))).toBe('recordFailure');
  });

  it('marks snapshots taken right after a major GC, and counts major GCs', async () => {
    const c = await collector();
    // GCs every 700 ms, ticks every 500 ms: some ticks find a post-GC capture, some do not.
    const run = track(
      runWithAgent('gc-forcing.js', {
        NODE_OPTIONS: '--expose-gc',
        HEAPWATCH_COLLECTOR: c.address,
        HEAPWATCH_INTERVAL_MS: '500',
        // V8's own GCs only: the agent forcing none of its own (GcAssist).
        HEAPWATCH_GC_ASSIST_BUDGET: '0',
        HEAPWATCH_SAMPLING_INTERVAL_BYTES: '65536',
        FIXTURE_RUN_MS: String(RUN_CAP_MS),
        FIXTURE_GC_EVERY_MS: '700',
      }),
    );
    // Until the ticks have shown what is checked below (a loaded machine runs fewer in a given time).
    await stopWhen(
      run,
      c,
      (all) => all.length >= 5 && all.filter((r) => r.request.gc!.afterMajorGc).length >= 2 && forcedGcLines(run) >= 4,
      '5 profiles, 2 of them post-GC, after 4 forced GCs',
    );
    const { code } = await run.exited;
    expect(run.stderr()).toBe('');
    expect(code).toBe(0);
    expect(run.stdout()).toContain('stopped');
    const forcedAt = [...run.stdout().matchAll(/^gc (\d+) (\d+)$/gm)].map((m) => Number(m[2]));
    expect(forcedAt.length).toBeGreaterThanOrEqual(4);
    const reqs = c.received.map((r) => r.request);
    expect(reqs.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < reqs.length; i++) {
      // Windows still chain, and time never goes back although a post-GC snapshot is older than its tick.
      expect(reqs[i]!.startTimeMs).toBe(reqs[i - 1]!.endTimeMs);
      expect(reqs[i]!.endTimeMs).toBeGreaterThanOrEqual(reqs[i - 1]!.endTimeMs);
      expect(reqs[i]!.gc!.majorGcs).toBeGreaterThanOrEqual(reqs[i - 1]!.gc!.majorGcs);
    }
    const post = reqs.filter((r) => r.gc!.afterMajorGc);
    expect(post.length, 'some ticks sent a post-GC snapshot').toBeGreaterThanOrEqual(2);
    for (const r of post) {
      // Taken just after the GC it names: within 250 ms of its end (a setImmediate on a loaded machine).
      expect(r.gc!.lastMajorGcEndMs).toBeGreaterThan(0);
      expect(r.endTimeMs).toBeGreaterThanOrEqual(r.gc!.lastMajorGcEndMs);
      expect(r.endTimeMs - r.gc!.lastMajorGcEndMs).toBeLessThan(250);
      expect(Number(c.received.find((x) => x.request === r)!.profile.timeNanos)).toBe(r.endTimeMs * 1e6);
    }
    // At least one of them follows a forced GC (printed right after gc() returned); V8 may add natural ones.
    expect(post.some((r) => forcedAt.some((t) => Math.abs(t - r.gc!.lastMajorGcEndMs) < 250))).toBe(true);
    // stop()'s last profile reads the heap now: live, not post-GC.
    const last = reqs.at(-1)!;
    expect(last.gc!.afterMajorGc).toBe(false);
    // Every forced GC is a major GC the agent counted (V8 may add its own).
    expect(last.gc!.majorGcs).toBeGreaterThanOrEqual(forcedAt.length);
  });

  it('takes post-GC captures at most once per quarter interval, however often V8 runs a major GC', async () => {
    const c = await collector();
    // A major GC every 40 ms; a 2 s interval allows a capture every 500 ms.
    const run = track(
      runWithAgent('gc-forcing.js', {
        NODE_OPTIONS: '--expose-gc',
        HEAPWATCH_COLLECTOR: c.address,
        HEAPWATCH_INTERVAL_MS: '2000',
        HEAPWATCH_GC_ASSIST_BUDGET: '0',
        HEAPWATCH_SAMPLING_INTERVAL_BYTES: '65536',
        FIXTURE_RUN_MS: String(RUN_CAP_MS),
        FIXTURE_GC_EVERY_MS: '40',
      }),
    );
    // At least 4.5 s, and until two ticks sent post-GC captures (each its own capture).
    const startedAt = Date.now();
    await stopWhen(run, c, (all) => Date.now() - startedAt >= 4500 && all.filter((r) => r.request.gc!.afterMajorGc).length >= 2, '2 post-GC ticks');
    const { code } = await run.exited;
    expect(run.stderr()).toBe('');
    expect(code).toBe(0);
    const stats = JSON.parse(/^stats (.*)$/m.exec(run.stdout())![1]!) as { majorGcs: number; postGcCaptures: number; elapsedMs: number };
    // Many major GCs were noticed (on a loaded machine fewer than 4500 / 40 run)...
    expect(stats.majorGcs).toBeGreaterThanOrEqual(20);
    // ...but captures are spaced: one per 500 ms, plus one for each tick that waited for a GC.
    const bound = Math.floor(stats.elapsedMs / 500) + Math.floor(stats.elapsedMs / 2000) + 2;
    expect(stats.postGcCaptures).toBeGreaterThanOrEqual(2);
    expect(stats.postGcCaptures).toBeLessThanOrEqual(bound);
    expect(stats.postGcCaptures).toBeLessThan(stats.majorGcs / 2);
    // The ticks still send snapshots taken right after a major GC.
    const ticks = c.received.map((r) => r.request).slice(0, -1);
    expect(ticks.length).toBeGreaterThanOrEqual(1);
    expect(ticks.filter((r) => r.gc!.afterMajorGc).length).toBeGreaterThanOrEqual(1);
  });

  it('forces a major GC before each profile of a worker whose V8 runs none (GcAssist), and counts it', async () => {
    const c = await collector();
    const run = track(
      runWithAgent('quiet-worker.js', {
        HEAPWATCH_COLLECTOR: c.address,
        HEAPWATCH_INTERVAL_MS: '300',
        // GC assist works in precise mode only.
        HEAPWATCH_PRECISE: 'always',
        // The largest budget: each pause of a few ms allows the next one a few tens of ms later.
        HEAPWATCH_GC_ASSIST_BUDGET: '0.2',
        FIXTURE_RUN_MS: String(RUN_CAP_MS),
      }),
    );
    await stopWhen(run, c, (all) => all.length >= 7 && all.filter((r) => r.request.gc!.afterMajorGc).length >= 2, '7 profiles, 2 of them post-GC');
    const { code } = await run.exited;
    expect(run.stderr()).toBe('');
    expect(code).toBe(0);
    const stats = JSON.parse(/^stats (.*)$/m.exec(run.stdout())![1]!) as { forcedGcs: number; forcedGcTimeUs: number; forcedGcsSkipped: number };
    const reqs = c.received.map((r) => r.request);
    const ticks = reqs.slice(0, -1); // the last one is stop()'s live read
    expect(ticks.length).toBeGreaterThanOrEqual(6);
    const post = ticks.filter((r) => r.gc!.afterMajorGc);
    // Every tick had a post-GC snapshot, most of them forced, except where
    // GC assist skipped a due GC and counted it: on a loaded machine a
    // pause's wall time stretches, and the budget waits 5 pauses after it.
    expect(post.length).toBeGreaterThanOrEqual(2);
    expect(ticks.length - post.length).toBeLessThanOrEqual(stats.forcedGcsSkipped);
    expect(stats.forcedGcs + stats.forcedGcsSkipped).toBeGreaterThanOrEqual(ticks.length - 2);
    expect(stats.forcedGcTimeUs).toBeGreaterThan(0);
    // The same counters reach the collector with every request.
    const sent = reqs.at(-1)!.agent!;
    expect(sent.forcedGcs).toBe(stats.forcedGcs);
    expect(sent.forcedGcTimeUs).toBe(stats.forcedGcTimeUs);
    for (let i = 1; i < ticks.length; i++) {
      if (!ticks[i]!.gc!.afterMajorGc) continue;
      // A forced GC counts as a major GC exactly once (its sentinel callback is not counted again).
      expect(ticks[i]!.gc!.majorGcs).toBeGreaterThan(ticks[i - 1]!.gc!.majorGcs);
      expect(ticks[i]!.endTimeMs - ticks[i]!.gc!.lastMajorGcEndMs).toBeLessThan(250);
    }
    expect(ticks.at(-1)!.gc!.majorGcs - ticks[0]!.gc!.majorGcs).toBeLessThanOrEqual(ticks.length + 2);
  });

  it('with a GcAssist budget of 0 the agent forces no GC, even in precise mode', async () => {
    const c = await collector();
    const run = track(
      runWithAgent('quiet-worker.js', {
        HEAPWATCH_COLLECTOR: c.address,
        HEAPWATCH_INTERVAL_MS: '300',
        HEAPWATCH_PRECISE: 'always',
        HEAPWATCH_GC_ASSIST_BUDGET: '0',
        FIXTURE_RUN_MS: String(RUN_CAP_MS),
      }),
    );
    await stopWhen(run, c, (all) => all.length >= 6, '6 profiles');
    const { code } = await run.exited;
    expect(code).toBe(0);
    const stats = JSON.parse(/^stats (.*)$/m.exec(run.stdout())![1]!) as { forcedGcs: number };
    expect(stats.forcedGcs).toBe(0);
    // A quiet worker: V8 runs few major GCs of its own, so most ticks are live reads.
    const ticks = c.received.slice(0, -1).map((r) => r.request);
    expect(ticks.filter((r) => !r.gc!.afterMajorGc).length).toBeGreaterThan(ticks.length / 2);
  });

  it('precise mode without disableInlining keeps inlining: the optimizer charges the helper to its caller', async () => {
    const c = await collector();
    const run = track(
      runWithAgent('leaky.js', {
        HEAPWATCH_COLLECTOR: c.address,
        HEAPWATCH_INTERVAL_MS: '500',
        HEAPWATCH_PRECISE: 'always',
        HEAPWATCH_DISABLE_INLINING: 'false',
        HEAPWATCH_SAMPLING_INTERVAL_BYTES: '65536',
        FIXTURE_RUN_MS: String(RUN_CAP_MS),
        FIXTURE_STOP: '1',
      }),
    );
    await stopWhen(run, c, (all) => all.length >= 4, '4 profiles');
    await run.exited;
    const last = c.received.at(-1);
    expect(last).toBeDefined();
    expect(c.received.some((r) => r.request.inliningDisabled)).toBe(false);
    const byFrame = bytesByTopUserFrame(last!.profile);
    expect(topOf(byFrame)).toBe('tick');
  });

  it('a worker thread runs its own agent, identified by its thread id', async () => {
    const c = await collector();
    const run = track(
      runWithAgent('with-worker.js', { HEAPWATCH_COLLECTOR: c.address, HEAPWATCH_INTERVAL_MS: '400', FIXTURE_RUN_MS: String(RUN_CAP_MS) }),
    );
    await stopWhen(
      run,
      c,
      (all) => all.some((r) => r.request.instance!.threadId === 0) && all.some((r) => r.request.instance!.threadId === 1),
      'profiles from the main thread and worker 1',
    );
    const pids = new Set(c.received.map((r) => r.request.instance!.pid));
    expect([...pids]).toEqual([run.child.pid]);
    const threads = new Set(c.received.map((r) => r.request.instance!.threadId));
    expect([...threads].sort()).toEqual([0, 1]);
    const { code } = await run.exited;
    expect(code).toBe(0);
  });

  it('speaks gRPC without loading @grpc/grpc-js or protobufjs into the host, nor what a plain JavaScript host does not need', async () => {
    const c = await collector();
    const run = track(runWithAgent('loaded-modules.js', { HEAPWATCH_COLLECTOR: c.address }));
    const { code } = await run.exited;
    expect(code).toBe(0);
    // @datadog/pprof's heap profiler alone (not its wall-time profiler); no source-map library without a source map.
    expect(JSON.parse(run.stdout().trim())).toEqual({ profilesSent: 1, grpcJs: 0, protobufjs: false, pprofHeapProfiler: true, pprofTimeProfiler: false, traceMapping: false });
    expect(c.received).toHaveLength(1);
  });

  it('bad env values are warned about and ignored; the agent still works', async () => {
    const c = await collector();
    const run = track(
      runWithAgent('leaky.js', {
        HEAPWATCH_COLLECTOR: c.address,
        HEAPWATCH_INTERVAL_MS: '400',
        HEAPWATCH_SAMPLING_INTERVAL_BYTES: 'banana',
        HEAPWATCH_LABELS: 'novalue',
        FIXTURE_RUN_MS: '1500',
      }),
    );
    await c.waitFor((all) => all.length >= 1, 6000, 'a profile');
    await run.exited;
    expect(run.stderr()).toContain('[heapwatch] warn: ignoring HEAPWATCH_SAMPLING_INTERVAL_BYTES="banana"');
    expect(run.stderr()).toContain('[heapwatch] warn: ignoring HEAPWATCH_LABELS="novalue"');
    expect(Number(c.received[0]!.profile.period)).toBe(524288);
    expect(c.received[0]!.request.labels).toEqual({});
  });

  /** A "collector" that accepts TCP and never says a word; closed after the test. */
  async function blackHole(): Promise<{ port: number; sockets: net.Socket[] }> {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    defer(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    return { port: (server.address() as net.AddressInfo).port, sockets };
  }

  it('the host exits promptly while the collector accepts TCP and never answers', async () => {
    const { port, sockets } = await blackHole();
    const run = track(
      runWithAgent('leaky.js', {
        HEAPWATCH_COLLECTOR: `127.0.0.1:${port}`,
        HEAPWATCH_INTERVAL_MS: '200',
        HEAPWATCH_TIMEOUT_MS: '30000',
        FIXTURE_RUN_MS: '1500',
      }),
    );
    const { code, atMs } = await run.exited;
    expect(sockets.length, 'the agent did connect').toBeGreaterThan(0);
    const doneAt = Number(/done (\d+)/.exec(run.stdout())?.[1]);
    expect(code).toBe(0);
    expect(atMs - doneAt).toBeLessThan(2000);
  });

  it('stop() against a collector that never answers resolves by its deadline', async () => {
    const { port } = await blackHole();
    const run = track(
      runWithAgent('leaky.js', {
        HEAPWATCH_COLLECTOR: `127.0.0.1:${port}`,
        HEAPWATCH_INTERVAL_MS: '300',
        HEAPWATCH_STOP_TIMEOUT_MS: '800',
        FIXTURE_RUN_MS: '1000',
        FIXTURE_STOP: '1',
      }),
    );
    const { code, atMs } = await run.exited;
    const doneAt = Number(/done (\d+)/.exec(run.stdout())?.[1]);
    expect(code).toBe(0);
    expect(run.stdout()).toContain('stopped');
    // Held for the 800 ms stop deadline (the host awaited it), not the 10 s RPC deadline.
    expect(atMs - doneAt).toBeGreaterThanOrEqual(700);
    expect(atMs - doneAt).toBeLessThan(2500);
  });

  it('collector down then up: profiles resume, drops are counted within the queue bound', async () => {
    const first = await collector();
    const port = first.port;
    const run = track(
      runWithAgent('leaky.js', {
        HEAPWATCH_COLLECTOR: first.address,
        HEAPWATCH_INTERVAL_MS: '500',
        HEAPWATCH_MAX_QUEUE_PROFILES: '3',
        HEAPWATCH_TIMEOUT_MS: '1000',
        FIXTURE_RUN_MS: String(RUN_CAP_MS),
      }),
    );
    await first.waitFor((all) => all.length >= 1, RUN_CAP_MS, 'a first profile');
    await first.close();
    // Snapshots into a queue of 3 until it overflows twice (the agent says so once per burst, on the first drop).
    const down = Date.now();
    while (!/dropping profiles/.test(run.stderr())) {
      expect(Date.now() - down, 'the queue overflowed while the collector was down').toBeLessThan(RUN_CAP_MS);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 1000)); // two more 500 ms ticks: a second drop
    const second = await collector(port);
    const backAt = Date.now();
    await second.waitFor((all) => all.some((r) => r.request.agent!.profilesDropped > 0), 8000, 'profiles after restart');
    const resumed = second.received[0]!;
    expect(resumed.atMs - backAt).toBeLessThan(5000);
    const stats = second.received.find((r) => r.request.agent!.profilesDropped > 0)!.request.agent!;
    expect(stats.sendFailures).toBeGreaterThan(0);
    expect(stats.queueLength).toBeLessThanOrEqual(3);
    expect(stats.profilesDropped).toBeGreaterThanOrEqual(1);
    expect(run.stderr().match(/dropping profiles/g)?.length ?? 0).toBe(1); // once per burst
    expect(run.stderr().match(/collector unreachable/g)?.length ?? 0).toBe(1);
    run.child.kill('SIGKILL');
  }, 2 * RUN_CAP_MS);
});

describe('agent preloaded with --import (ESM)', () => {
  it('is one instance even when the script also imports and requires it', async () => {
    const c = await collector();
    const run = track(
      runWithAgent('esm-both.mjs', { HEAPWATCH_COLLECTOR: c.address, HEAPWATCH_INTERVAL_MS: '500', FIXTURE_RUN_MS: String(RUN_CAP_MS) }, 'import'),
    );
    await stopWhen(run, c, (all) => all.length >= 2, '2 profiles');
    const { code } = await run.exited;
    expect(code).toBe(0);
    expect(JSON.parse(run.stdout().trim())).toEqual({
      importedRunning: true,
      requiredRunning: true,
      sameModule: true,
      startedAgain: true,
      hasSingleton: true,
    });
    expect(c.received.length).toBeGreaterThanOrEqual(2);
    expect(c.received[0]!.request.service).toBe('esm-both');
    // One sampler: at the 500 ms interval, not the 200 ms the second start() asked for.
    expect(c.received.length).toBeLessThanOrEqual(6);
    const names = new Set(c.received.at(-1)!.profile.function.map((f) => str(c.received.at(-1)!.profile, f.name)));
    expect(names.has('hold')).toBe(true);
  });
});
