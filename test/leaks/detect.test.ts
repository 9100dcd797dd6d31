import { describe, expect, it } from 'vitest';
import { DEFAULT_DETECT, detect, detectInSlices, gcResets, historyWindow, majorGcResets, needsLongerWindow, risingWhilePrecise, sustainedOver } from '../../collector/src/leaks/detect';
import type { ProfilePoint, SitePoint } from '../../collector/src/store/store';
import { cacheSeries, churnSeries, leakSeries, poisson, QUANTUM, retainedSeries, rng } from './synthetic';

const MB = 1 << 20;

function profiles(instance: string, n: number, heap: (i: number) => number, t0 = 0): ProfilePoint[] {
  return Array.from({ length: n }, (_, i) => ({
    instance,
    timeMs: t0 + i * 1000,
    heapUsedBytes: heap(i),
    externalBytes: 0,
    heapSizeLimitBytes: 4096 * MB,
    majorGcs: 0,
    afterMajorGc: false,
  }));
}

/** Profiles from an agent that reports GCs: a major GC every `period` profiles, the first profile after it post-GC. */
function gcProfiles(instance: string, n: number, period: number): ProfilePoint[] {
  return profiles(instance, n, () => 50 * MB).map((p, i) => ({ ...p, majorGcs: Math.floor(i / period), afterMajorGc: i > 0 && i % period === 0 }));
}

function points(instance: string, siteId: string, ys: readonly number[], t0 = 0): SitePoint[] {
  return ys.map((bytes, i) => ({ instance, timeMs: t0 + i * 1000, siteId, bytes }));
}

describe('detect', () => {
  it('in slices, gives the event loop turns and decides exactly as in one go', async () => {
    const n = 60;
    const pts: SitePoint[] = [];
    const profs: ProfilePoint[] = [];
    for (let k = 0; k < 6; k++) {
      profs.push(...gcProfiles(`i${k}`, n, 5));
      for (let site = 0; site < 40; site++) {
        const ys = site % 10 === 0 ? leakSeries(n, 1, 7, site) : churnSeries(n, () => 20, site * 31 + k);
        pts.push(...points(`i${k}`, `s${site}`, ys));
      }
    }
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const sliced = await detectInSlices(profs, pts, DEFAULT_DETECT, 0, 0, 1);
    clearInterval(ticker);
    const whole = detect(profs, pts);
    expect(turns).toBeGreaterThan(0);
    expect([...sliced.sites.values()].filter((x) => x.positive).length).toBeGreaterThan(0);
    expect(sliced).toEqual(whole);
  });

  it('finds major GCs as heap drops', () => {
    expect(gcResets([10, 12, 14, 8, 9, 10, 9.5])).toEqual([3]);
  });

  it('takes GC cycles from the agent\'s major GC count where it reports one', () => {
    expect(majorGcResets([0, 0, 1, 1, 1, 3, 3])).toEqual([2, 5]);
    // Heap used never drops by 25 % here, yet the reported GCs gate and floor the series.
    const n = 40;
    const churn = Array.from({ length: n }, (_, i) => (i % 5 === 0 && i > 0 ? 20 : 20 + (i % 5) * 6) * 16384);
    expect(detect(gcProfiles('a', n, 5), points('a', 'g', churn)).sites.get('g')?.positive).toBe(false);
  });

  it('judges post-GC profiles alone once there are enough: garbage between GCs is ignored, a leak under it is not', () => {
    const n = 60;
    const period = 5; // 11 post-GC profiles in the window
    // A churning site: climbs with uncollected garbage, back to 20 samples after each GC.
    const churn = Array.from({ length: n }, (_, i) => (20 + (i % period) * 8) * 16384);
    const d = detect(gcProfiles('a', n, period), points('a', 'churn', churn));
    expect(d.sites.get('churn')?.positive).toBe(false);
    // A leak of ~1 sample a profile under the same garbage: the post-GC floors rise.
    const leak = leakSeries(n, 1, 7, 0).map((y, i) => y + churn[i]!);
    const d2 = detect(gcProfiles('a', n, period), points('a', 'leak', leak));
    expect(d2.sites.get('leak')).toMatchObject({ positive: true, instancesRising: 1 });
    // Growth is per profile, not per post-GC point: ~1 sample (512 KiB) a profile.
    expect(d2.sites.get('leak')!.growthBytesPerInterval).toBeGreaterThan(0.5 * 512 * 1024);
    expect(d2.sites.get('leak')!.growthBytesPerInterval).toBeLessThan(2 * 512 * 1024);
  });

  it('garbage that climbs between rare major GCs is not a leak until a GC shows it', () => {
    // Every churning site climbs with uncollected garbage until a GC at profile 30.
    const n = 30;
    const garbage = Array.from({ length: n }, (_, i) => (10 + i * 4) * 16384);
    const d = detect(profiles('a', n, (i) => 50 * MB + i * MB), points('a', 'g', garbage));
    expect(d.sites.get('g')?.positive).toBe(false);
    // ... but it is a suspect: the signal on which the collector asks for precise mode's GCs.
    expect(d.sites.get('g')?.suspect).toBe(true);
    // A flat site is not.
    const flat = Array.from({ length: n }, () => 20 * 16384);
    expect(detect(profiles('a', n, () => 50 * MB), points('a', 'f', flat)).sites.get('f')?.suspect).toBe(false);
  });

  it('a leak seen across GC cycles is positive, and restarts are separate series', () => {
    const n = 30;
    const heap = (i: number) => 50 * MB + (i % 6) * 5 * MB;
    const leak = leakSeries(n, 2, 3, 0);
    const d = detect(
      [...profiles('a', n, heap), ...profiles('b', 10, () => 40 * MB, 30_000)],
      [...points('a', 'leak', leak), ...points('b', 'leak', [1, 1, 1, 1, 1, 1, 1, 1, 1, 1].map((x) => x * 16384), 30_000)],
    );
    const site = d.sites.get('leak')!;
    // Instance a stopped 10 profiles before b's newest: it is stale and dropped.
    expect(site.instancesSeen).toBe(1);
    const d2 = detect(profiles('a', n, heap), points('a', 'leak', leak));
    expect(d2.sites.get('leak')).toMatchObject({ positive: true, instancesRising: 1, instancesSeen: 1 });
    expect(d2.sites.get('leak')!.steps.length).toBe(20);
    expect(d2.sites.get('leak')!.steps.at(-1)?.trend).toBe('rising');
    // Each step carries what the alert's minimum growth time needs: the profile's time, the
    // first profile of the judged window (the series is shorter than the window: its start),
    // and when the heap would reach its limit at the site's pace (~1 MiB a second here).
    const last = d2.sites.get('leak')!.steps.at(-1)!;
    expect(last).toMatchObject({ atMs: (n - 1) * 1000, sinceMs: 0 });
    expect(last.timeToLimitMs! / 1000).toBeGreaterThan(2000);
    expect(last.timeToLimitMs! / 1000).toBeLessThan(8000);
    // A service silent for more than 5 of its intervals (collector clock) has no current instance.
    expect(detect(profiles('a', n, heap), points('a', 'leak', leak), undefined, 0, 4_000).sites.get('leak')).toBeDefined();
    const silent = detect(profiles('a', n, heap), points('a', 'leak', leak), undefined, 0, 6_000);
    expect(silent.sites.get('leak')).toBeUndefined();
    expect(silent.process).toEqual([]);
  });

  describe('process findings are judged across GCs', () => {
    /** Profiles every second with a major GC every `period` profiles (post-GC marked on `marked` of them), gauges from `heap` and `ext`. */
    function gauges(n: number, period: number, heap: (i: number) => number, ext: (i: number) => number, marked = (_i: number) => true): ProfilePoint[] {
      return profiles('a', n, heap).map((p, i) => ({
        ...p,
        externalBytes: ext(i),
        majorGcs: 1 + Math.floor(i / period),
        afterMajorGc: i % period === 0 && marked(i),
      }));
    }
    const everyStep = (d: ReturnType<typeof detect>, kind: string) => d.process.find((p) => p.kind === kind)!.steps.map((s) => s.trend);
    const r = rng(11);
    const jitter = () => Math.floor(r() * 3) * MB;

    it('a worker that loads a large table at start, then churns around it: no heap or external finding', () => {
      // 300 MB loaded over the first 4 profiles, 20 MB of garbage a profile
      // between major GCs every 6 profiles, which only the natural GCs mark.
      const heap = (i: number) => 50 * MB + Math.min(i, 4) * 75 * MB + (i % 6) * 20 * MB + jitter();
      const ext = (i: number) => 2 * MB + Math.min(i, 4) * 10 * MB + (i % 6) * 3 * MB;
      for (const n of [40, 80, 120]) {
        const d = detect(gauges(n, 6, heap, ext, (i) => i % 12 === 0), []);
        expect(everyStep(d, 'heap'), `heap at ${n}`).not.toContain('rising');
        expect(everyStep(d, 'external'), `external at ${n}`).not.toContain('rising');
      }
    });

    it('a quiet main thread whose heap climbs with garbage between rare major GCs: no heap finding', () => {
      // One major GC in 40 profiles (a main thread beside busy workers): heap
      // used climbs with garbage for 39 of them. A trailing minimum saw a leak.
      const heap = (i: number) => 8 * MB + (i % 40) * 0.5 * MB + jitter() / 8;
      for (const n of [30, 39, 60]) expect(everyStep(detect(gauges(n, 40, heap, () => MB), []), 'heap'), `at ${n}`).not.toContain('rising');
    });

    it('a batch built and released every few seconds: no external finding', () => {
      const ext = (i: number) => 4 * MB + (i % 3) * 40 * MB + jitter();
      const d = detect(gauges(80, 3, () => 30 * MB + jitter(), ext, (i) => i % 9 === 0), []);
      expect(everyStep(d, 'external')).not.toContain('rising');
    });

    it('off-heap Buffers that really grow: an external finding', () => {
      // A retry buffer of Buffers: 1 MB a profile that no GC frees, under the same batch churn.
      const ext = (i: number) => 4 * MB + i * MB + (i % 3) * 20 * MB + jitter();
      const d = detect(gauges(60, 3, () => 30 * MB + jitter(), ext, (i) => i % 9 === 0), []);
      const e = d.process.find((p) => p.kind === 'external')!;
      expect(e.positive).toBe(true);
      // ~1 MB a profile at one profile a second.
      expect(e.growthBytesPerHour / 3600).toBeGreaterThan(0.7 * MB);
      expect(e.growthBytesPerHour / 3600).toBeLessThan(1.3 * MB);
    });

    it('a warm-up that raises the gauges smoothly after every GC, by less than 2 MiB: no finding', () => {
      // The shape measured on the scenario corpus in a process's first minutes,
      // every profile post-GC (precise mode's GC assist): external +0.5 MiB and
      // heap +1.5 MiB over 30 profiles, with little scatter. A smooth rise passes
      // every noise check; only its size tells it from a leak.
      const heap = (i: number) => 6 * MB + Math.round((1.5 * MB * Math.min(i, 30)) / 30) + (i % 2) * 4096;
      const ext = (i: number) => 2.2 * MB + Math.round((0.5 * MB * Math.min(i, 30)) / 30) + (i % 3) * 1024;
      for (const n of [14, 20, 30]) {
        const d = detect(gauges(n, 1, heap, ext), []);
        expect(everyStep(d, 'heap'), `heap at ${n}`).not.toContain('rising');
        expect(everyStep(d, 'external'), `external at ${n}`).not.toContain('rising');
      }
      // The same shape, ten times larger, is growth that matters.
      const big = detect(gauges(20, 1, (i) => 10 * heap(i), (i) => 10 * ext(i)), []);
      expect(big.process.every((p) => p.positive)).toBe(true);
    });

    it('off-heap growth with no major GC to judge it by makes the gauge a suspect, never a finding', () => {
      // A flat V8 heap and Buffers parked off-heap at 200 KiB a profile: V8 runs
      // no major GC, so the gauge has no post-GC point and no verdict.
      const noGc = profiles('a', 40, () => 8 * MB + (Math.floor(r() * 4) << 16)).map((p, i) => ({ ...p, majorGcs: 1, externalBytes: 2 * MB + i * 200 * 1024 + (i % 4) * 64 * 1024 }));
      const d = detect(noGc, []);
      const ext = d.process.find((p) => p.kind === 'external')!;
      expect(ext.positive).toBe(false);
      expect(ext.suspect).toBe(true);
      expect(d.process.find((p) => p.kind === 'heap')!.suspect).toBe(false);
      // Below the least rise that matters: not even a suspect.
      const small = noGc.map((p, i) => ({ ...p, externalBytes: 2 * MB + i * 20 * 1024 }));
      expect(detect(small, []).process.some((p) => p.suspect)).toBe(false);
      // Before its first major GC the agent reports a count of 0, as an agent
      // that counts none would: the same suspicion, and still no finding.
      const beforeFirstGc = detect(noGc.map((p) => ({ ...p, majorGcs: 0 })), []).process.find((p) => p.kind === 'external')!;
      expect(beforeFirstGc).toMatchObject({ positive: false, suspect: true });
    });

    it('a process warming up before its first major GC: heap used climbing with garbage is no finding', () => {
      // Measured (sawtooth-flush, 500 ms profiles): heap used 5.8 -> 10.7 MB over
      // 18 profiles, a flush every 3, no major GC yet. Its trailing minimum rose
      // by 3 MB and was flagged as if the agent reported no GCs at all.
      const warm = profiles('a', 18, (i) => 5.8 * MB + i * 0.25 * MB + (i % 3) * 0.75 * MB);
      for (let n = 12; n <= 18; n++) expect(everyStep(detect(warm.slice(0, n), []), 'heap'), `at ${n}`).not.toContain('rising');
    });
  });

  describe('attribution', () => {
    const n = 40;
    // Precise mode from profile 25 on: the agent turned inlining off.
    const precise = (list: ProfilePoint[]) => list.map((p, i) => ({ ...p, inliningDisabled: i >= 25 }));

    it('a site still rising over profiles taken with inlining off is precise; before them it is not', () => {
      const ys = leakSeries(n, 3, 11);
      const withPrecise = detect(precise(gcProfiles('a', n, 5)), points('a', 's', ys)).sites.get('s')!;
      expect(withPrecise.positive, JSON.stringify(withPrecise)).toBe(true);
      expect(withPrecise.attribution).toBe('precise');
      const inlined = detect(gcProfiles('a', n, 5), points('a', 's', ys)).sites.get('s')!;
      expect(inlined.positive).toBe(true);
      expect(inlined.attribution).toBe('imprecise');
    });

    it('a caller that stops growing once inlining is off stays imprecise; the callee that takes over is precise', () => {
      // The callee's allocations were charged to the caller until profile 25, then to the callee.
      const all = leakSeries(n, 3, 12);
      const caller = all.map((y, i) => (i < 25 ? y : all[24]!));
      const callee = all.map((y, i) => (i < 25 ? 0 : y - all[24]!));
      const d = detect(precise(gcProfiles('a', n, 5)), [...points('a', 'caller', caller), ...points('a', 'callee', callee)]);
      expect(d.sites.get('caller')!.attribution).toBe('imprecise');
      expect(d.sites.get('callee')!.attribution).toBe('precise');
    });

    it('needs three trailing precise profiles over which the site grew about as its trend says', () => {
      const on = [false, false, true, true, true];
      expect(risingWhilePrecise([1, 2, 3, 4, 5], on, 1)).toBe(true);
      expect(risingWhilePrecise([1, 2, 3, 4, 5], [false, false, false, true, true], 1)).toBe(false);
      expect(risingWhilePrecise([1, 2, 3, 3, 3], on, 1)).toBe(false);
      expect(risingWhilePrecise([1, 2, 3, 3, 4], on, 1)).toBe(true);
      expect(risingWhilePrecise([1, 2, 3, 3, 4], on, 2)).toBe(false);
    });
  });

  it('a leak judged on its post-GC profiles began growing where its whole series began rising, not where precise mode began', () => {
    // Default mode (one major GC every 20 profiles) for 60 profiles, then precise mode: every profile post-GC.
    const n = 100;
    const list = gcProfiles('a', n, 20).map((p, i) => (i >= 60 ? { ...p, majorGcs: i, afterMajorGc: true } : p));
    const leak = leakSeries(n, 2, 21, 2);
    const last = detect(list, points('a', 'leak', leak)).sites.get('leak')!.steps.at(-1)!;
    expect(last.trend).toBe('rising');
    expect(last.sinceMs).toBe(0);
  });

  describe('history beyond the window', () => {
    const n = 600;
    // Precise mode: every profile post-GC. Heap used follows the site.
    const all = (heap: (i: number) => number) => gcProfiles('a', n, 1).map((p, i) => ({ ...p, afterMajorGc: true, heapUsedBytes: heap(i) }));

    it('judges at most 120 evenly spaced profiles of each instance, its post-GC ones where it has enough', () => {
      const w = historyWindow([...all(() => 50 * MB), ...profiles('b', 100, () => 50 * MB)]);
      const a = w.filter((p) => p.instance === 'a');
      expect(a).toHaveLength(120);
      expect(a[0]!.timeMs).toBe(0);
      expect(a.at(-1)!.timeMs).toBe((n - 1) * 1000);
      // b reports no post-GC profile: all of its 100.
      expect(w.filter((p) => p.instance === 'b')).toHaveLength(100);
    });

    it('a cache that filled and holds its bound is not sustained; a leak, and a leak that began late, are', () => {
      // 5,000 entries filled over 60 profiles, then replaced as new keys come: 40 samples that wander.
      const cache = cacheSeries(n, { capacity: 5000, arrivals: () => 5000 / 60, population: Infinity, samplesPerEntry: 40 / 5000, churn: 2 }, 3);
      const leak = leakSeries(n, 0.3, 4, 2);
      const late = leakSeries(n, 0.5, 5, 2).map((y, i) => (i < 450 ? 0 : y - leakSeries(450, 0.5, 5, 2).at(-1)! + 0));
      const w = historyWindow(all((i) => 50 * MB + i * 0.1 * MB));
      const pts = [...points('a', 'cache', cache), ...points('a', 'leak', leak), ...points('a', 'late', late.map((y) => Math.max(0, y)))];
      const v = sustainedOver(['site:cache', 'site:leak', 'site:late', 'site:none', 'heap:a', 'external:a', 'heap:b'], w, pts);
      expect(v.get('site:cache')).toBe(false);
      expect(v.get('site:leak')).toBe(true);
      expect(v.get('site:late')).toBe(true);
      // The heap grows 0.1 MB a profile; external does not move; no history, no answer.
      expect(v.get('heap:a')).toBe(true);
      expect(v.get('external:a')).toBe(false);
      expect(v.has('site:none')).toBe(false);
      expect(v.has('heap:b')).toBe(false);
    });
  });
});

/**
 * Sites of agents that say nothing of their GCs (Pyroscope SDKs,
 * OpenTelemetry): no major GC count, no heap used. Every such site also
 * carries old-space garbage that major GCs free at times nobody reports.
 */
describe('detect: instances without GC information', () => {
  /** Profiles of a foreign agent: no heap used, no GC count. */
  const foreign = (instance: string, n: number): ProfilePoint[] => profiles(instance, n, () => 0);
  /** Garbage a site holds: `perProfile` samples a profile, freed by unreported major GCs `period()` profiles apart. */
  function garbage(n: number, perProfile: number, minPeriod: number, maxPeriod: number, seed: number): number[] {
    const r = rng(seed);
    const period = () => minPeriod + Math.floor(r() * (maxPeriod - minPeriod + 1));
    let next = period();
    let g = 0;
    return Array.from({ length: n }, (_, i) => {
      if (i >= next) [g, next] = [0, i + period()];
      g += poisson(perProfile, r);
      return g * QUANTUM;
    });
  }
  const plus = (a: number[], b: number[]) => a.map((y, i) => y + b[i]!);
  const W = DEFAULT_DETECT.ruleWithoutGc.maxProfiles;

  it('judges a window of 240 profiles, the span trusted without a GC in it; before that, none', () => {
    expect(W).toBe(240);
    const n = 300;
    const leak = plus(leakSeries(n, 1, 21), garbage(n, 2, 15, 40, 22));
    const at = (len: number) => detect(foreign('a', len), points('a', 'leak', leak.slice(0, len))).sites.get('leak')!;
    // 120 profiles were never enough: the old window held no more and waited for GCs that never show.
    expect(at(120).positive).toBe(false);
    expect(at(W - 1).positive).toBe(false);
    expect(at(W - 1).steps).not.toContain('rising');
    expect(at(W)).toMatchObject({ positive: true, instancesRising: 1 });
    // Growth per profile: ~1 sample (512 KiB).
    expect(at(n).growthBytesPerInterval).toBeGreaterThan(0.5 * QUANTUM);
    expect(at(n).growthBytesPerInterval).toBeLessThan(2 * QUANTUM);
    for (const seed of [5, 9, 23]) {
      const other = plus(leakSeries(n, 1, seed), garbage(n, 2, 15, 40, seed + 1));
      expect(detect(foreign('a', n), points('a', 'leak', other)).sites.get('leak')!.positive, `seed ${seed}`).toBe(true);
    }
  });

  it('flags none of the non-leak shapes over 300 profiles, whatever the unreported GCs do', () => {
    const n = 300;
    for (const seed of [1, 2, 3]) {
      const g = (perProfile: number, min = 15, max = 40) => garbage(n, perProfile, min, max, 100 + seed);
      const shapes: Record<string, number[]> = {
        'steady churn': plus(churnSeries(n, () => 30, seed), g(2)),
        'churn under rare GCs (every 80-120 profiles)': plus(churnSeries(n, () => 30, seed), g(1, 80, 120)),
        'warm-up cache': plus(retainedSeries(n, (i) => Math.min(i, 10) * 6, seed, 5), g(2)),
        'LRU filling for 36 profiles, then evicting': plus(retainedSeries(n, (i) => Math.min(i, 36) * 2, seed, 5), g(2)),
        'lazy load at profile 100': plus(retainedSeries(n, (i) => (i < 100 ? 10 : 30), seed, 3), g(2)),
        'ramp for 120 profiles, then hold': plus(retainedSeries(n, (i) => Math.min(i, 120) * 0.3, seed, 3), g(1)),
        'buffer flushed every 4 profiles': plus(Array.from({ length: n }, (_, i) => (5 + (i % 4) * 10) * QUANTUM), g(2)),
      };
      for (const [shape, ys] of Object.entries(shapes)) {
        for (const len of [W, W + 20, W + 40, n]) {
          const site = detect(foreign('a', len), points('a', 's', ys.slice(0, len))).sites.get('s')!;
          expect(site.steps, `${shape}, seed ${seed}, ${len} profiles`).not.toContain('rising');
        }
      }
    }
  });

  it('leaves instances that report GCs or heap used to their own rules, and reads the longer window only for the others', () => {
    const n = 130;
    // A heapwatch agent whose GCs are reported: judged on its post-GC profiles as before.
    const churn = Array.from({ length: n }, (_, i) => (20 + (i % 5) * 8) * 16384);
    expect(detect(gcProfiles('a', n, 5), points('a', 'c', churn)).sites.get('c')!.positive).toBe(false);
    expect(needsLongerWindow(gcProfiles('a', n, 5))).toBe(false);
    expect(needsLongerWindow(profiles('a', n, () => 50 * MB))).toBe(false); // heap used: GCs guessed from it
    expect(needsLongerWindow(foreign('a', 119))).toBe(false); // not yet a full window
    expect(needsLongerWindow([...gcProfiles('b', n, 5), ...foreign('a', 120)])).toBe(true);
  });
});
