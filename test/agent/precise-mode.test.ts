/**
 * Precise mode, end to end in real child processes: the agent preloaded in a
 * worker whose small allocating helper TurboFan inlines into its caller,
 * sending to a real grpc-js server (the collector double) whose responses
 * carry the directive. The collector's own decision to send it is tested in
 * test/e2e/precise-directive.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { trackedResources } from './helpers/cleanups';
import { bytesByTopUserFrame, topOf } from './helpers/collector-double';
import { RUN_CAP_MS, runWithAgent, stopWhen } from './helpers/run-agent';

const { track, collector } = trackedResources();

// The fixture runs until the test has seen what it checks (stopWhen), at most RUN_CAP_MS.
const LEAKY = { HEAPWATCH_INTERVAL_MS: '400', HEAPWATCH_SAMPLING_INTERVAL_BYTES: '65536', FIXTURE_STOP: '1', FIXTURE_RUN_MS: String(RUN_CAP_MS) };
type Received = Awaited<ReturnType<typeof collector>>['received'];

describe('precise mode', () => {
  it('an old-style response (no directive) keeps the default mode: inlining kept, no forced GC', async () => {
    const c = await collector();
    const run = track(runWithAgent('leaky.js', { ...LEAKY, HEAPWATCH_COLLECTOR: c.address }));
    const { code } = await stopWhen(run, c, (all) => all.length >= 4, '4 profiles');
    expect(run.stderr()).toBe('');
    expect(code).toBe(0);
    const reqs = c.received.map((r) => r.request);
    expect(reqs.length).toBeGreaterThanOrEqual(3);
    expect(reqs.every((r) => !r.inliningDisabled)).toBe(true);
    expect(reqs.at(-1)!.agent).toMatchObject({ preciseActivations: 0, preciseTimeMs: 0, forcedGcs: 0 });
    // recordFailure() is inlined into tick(): the sampler charges its bytes to tick.
    expect(topOf(bytesByTopUserFrame(c.received.at(-1)!.profile))).toBe('tick');
  });

  it('the directive turns precise mode on: hot code already optimized is de-inlined, the leaf gets its bytes', async () => {
    // From the 4th acknowledgement on (about 1.6 s in: tick() is long optimized by then).
    const c = await collector(0, (n) => (n >= 4 ? { precise: true, preciseForMs: 60_000, reason: 'test' } : undefined));
    const run = track(
      runWithAgent('leaky.js', {
        ...LEAKY,
        HEAPWATCH_COLLECTOR: c.address,
        HEAPWATCH_LOG_LEVEL: 'info',
        // GC assist's largest budget and a generous pause cap, so that most
        // profiles in precise mode follow a major GC on a loaded machine too.
        HEAPWATCH_GC_ASSIST_BUDGET: '0.2',
        HEAPWATCH_GC_ASSIST_MAX_PAUSE_MS: '1000',
      }),
    );
    // The fixture's retained array turns over in well under a second on a
    // quiet machine, so a post-GC profile taken a while after the switch
    // holds mostly objects allocated in precise mode (a live read still
    // counts old-space garbage from before the switch; the first profile
    // after it is too early). A starved child turns it over more slowly:
    // wait for such a profile, up to the cap.
    const deInlined = (r: Received[number]): boolean => {
      const bytes = bytesByTopUserFrame(r.profile);
      return topOf(bytes) === 'recordFailure' && bytes.get('recordFailure')! > 3 * (bytes.get('tick') ?? 0);
    };
    let firstPreciseAt = 0;
    const { code } = await stopWhen(
      run,
      c,
      (all) => {
        const precise = all.filter((r) => r.request.inliningDisabled);
        if (precise.length && !firstPreciseAt) firstPreciseAt = Date.now();
        return precise.length >= 2 && precise.slice(1).some((r) => r.request.gc!.afterMajorGc && deInlined(r)) && Date.now() - firstPreciseAt > 1500;
      },
      'a post-GC precise profile, after the first, charging the leaf',
    );
    expect(code).toBe(0);
    expect(run.stderr()).toMatch(/precise mode on \(test\) for up to 60 s/);
    const before = c.received.slice(1, 4);
    const after = c.received.filter((r) => r.request.inliningDisabled);
    expect(before.every((r) => !r.request.inliningDisabled)).toBe(true);
    for (const r of before) expect(topOf(bytesByTopUserFrame(r.profile))).toBe('tick');
    expect(after.length).toBeGreaterThanOrEqual(2);
    expect(after.slice(1).some((r) => r.request.gc!.afterMajorGc && deInlined(r))).toBe(true);
    const stats = c.received.at(-1)!.request.agent!;
    expect(stats.preciseActivations).toBe(1);
    expect(stats.preciseSwitchTimeUs).toBeGreaterThan(0);
    expect(stats.preciseTimeMs).toBeGreaterThan(1000);
  });

  it('ends at its bound however often it is renewed, then the cool-down refuses it; inlining comes back', async () => {
    const c = await collector(0, () => ({ precise: true, reason: 'always suspect' }));
    const run = track(
      runWithAgent('leaky.js', {
        ...LEAKY,
        HEAPWATCH_COLLECTOR: c.address,
        HEAPWATCH_PRECISE_MAX_MS: '1000',
        HEAPWATCH_PRECISE_COOLDOWN_MS: '600000',
        HEAPWATCH_LOG_LEVEL: 'info',
      }),
    );
    const { code } = await stopWhen(
      run,
      c,
      (all) => {
        const flags = all.map((r) => r.request.inliningDisabled);
        return flags.includes(true) && flags.length - 1 - flags.lastIndexOf(true) >= 3;
      },
      '3 profiles after precise mode ended',
    );
    expect(code).toBe(0);
    expect(run.stderr()).toMatch(/precise mode off \(bound of 1 s reached\)/);
    const flags = c.received.map((r) => r.request.inliningDisabled);
    const firstOn = flags.indexOf(true);
    expect(firstOn).toBeGreaterThan(0);
    // On for about 1 s (2-4 profiles at 400 ms), then off for the rest of the run.
    const on = flags.filter(Boolean).length;
    expect(on).toBeGreaterThanOrEqual(1);
    expect(on).toBeLessThanOrEqual(4);
    expect(flags.slice(firstOn + on)).not.toContain(true);
    expect(flags.slice(firstOn + on).length).toBeGreaterThanOrEqual(3);
    const stats = c.received.at(-1)!.request.agent!;
    expect(stats.preciseActivations).toBe(1);
    expect(stats.preciseTimeMs).toBeGreaterThanOrEqual(900);
    // Ended by its 1 s bound, late only by a starved timer: without the bound it would last the whole run.
    expect(stats.preciseTimeMs).toBeLessThan(5000);
    // Inlining is back on, and the code optimized without it was deoptimized: tick gets the bytes again.
    expect(topOf(bytesByTopUserFrame(c.received.at(-1)!.profile))).toBe('tick');
  });

  it('precise=false in a directive ends it (at once with no least length, HEAPWATCH_PRECISE_MIN_PROFILES=0); HEAPWATCH_PRECISE=never ignores directives', async () => {
    // On in the answers to requests 2 and 3, cleared from the 4th on.
    const c = await collector(0, (n) => ({ precise: n === 2 || n === 3, preciseForMs: 60_000, reason: n >= 4 ? 'cleared' : 'suspect' }));
    const run = track(runWithAgent('leaky.js', { ...LEAKY, HEAPWATCH_COLLECTOR: c.address, HEAPWATCH_LOG_LEVEL: 'info', HEAPWATCH_PRECISE_MIN_PROFILES: '0' }));
    await stopWhen(run, c, (all) => all.length >= 6, '6 profiles');
    expect(run.stderr()).toMatch(/precise mode off \(collector: cleared\)/);
    const flags = c.received.map((r) => r.request.inliningDisabled);
    expect(flags.length).toBeGreaterThanOrEqual(6);
    expect(flags.slice(0, 2)).toEqual([false, false]);
    expect(flags.slice(2, 4)).toContain(true);
    expect(flags.slice(4)).not.toContain(true);

    const never = await collector(0, () => ({ precise: true }));
    const run2 = track(runWithAgent('leaky.js', { ...LEAKY, HEAPWATCH_COLLECTOR: never.address, HEAPWATCH_PRECISE: 'never' }));
    await stopWhen(run2, never, (all) => all.length >= 3, '3 profiles');
    expect(never.received.length).toBeGreaterThanOrEqual(3);
    expect(never.received.every((r) => !r.request.inliningDisabled && r.request.agent!.preciseActivations === 0)).toBe(true);
  });

  it('HEAPWATCH_PRECISE=always is on from start with no bound: the helper is charged to itself', async () => {
    const c = await collector();
    const run = track(runWithAgent('leaky.js', { ...LEAKY, HEAPWATCH_COLLECTOR: c.address, HEAPWATCH_PRECISE: 'always' }));
    const { code } = await stopWhen(run, c, (all) => all.length >= 4, '4 profiles');
    expect(code).toBe(0);
    expect(c.received.every((r) => r.request.inliningDisabled)).toBe(true);
    expect(topOf(bytesByTopUserFrame(c.received.at(-1)!.profile))).toBe('recordFailure');
  });
});
