/**
 * Memory per completed job (collector/src/leaks/jobs.ts) on synthetic
 * series whose truth is known: which job type retains, how much per job,
 * and whether the heap follows jobs or time; and the least-squares pieces
 * under it (regression.ts).
 */
import { describe, expect, it } from 'vitest';
import { instanceSeries } from '../../collector/src/leaks/detect';
import { analyzeJobs, DEFAULT_JOBS } from '../../collector/src/leaks/jobs';
import { fSurvival, regularizedBeta, robustFit, weightedFit } from '../../collector/src/leaks/regression';
import type { ProfilePoint } from '../../collector/src/store/store';
import { formatLeakTable } from '../../collector/src/leaks/report';

/** A seeded uniform [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Scenario {
  profiles: number;
  intervalMs: number;
  /** Jobs of each type finished in interval i. */
  jobs: (i: number, r: () => number) => Record<string, number>;
  /** Bytes each job of a type retains. */
  bytesPerJob: Record<string, number>;
  /** Heap growth per second that no job causes. */
  bytesPerSecond?: number;
  /** Post-GC noise, bytes (uniform ±). */
  noise?: number;
  instances?: number;
  seed?: number;
}

function profilesOf(sc: Scenario): ProfilePoint[] {
  const r = rng(sc.seed ?? 1);
  const out: ProfilePoint[] = [];
  for (let n = 0; n < (sc.instances ?? 1); n++) {
    const totals: Record<string, number> = {};
    let retained = 0;
    for (let i = 0; i < sc.profiles; i++) {
      if (i > 0) {
        for (const [type, k] of Object.entries(sc.jobs(i, r))) {
          totals[type] = (totals[type] ?? 0) + k;
          retained += k * (sc.bytesPerJob[type] ?? 0);
        }
        retained += ((sc.bytesPerSecond ?? 0) * sc.intervalMs) / 1000;
      }
      const timeMs = 1_700_000_000_000 + i * sc.intervalMs;
      out.push({
        instance: `host-${n}`,
        timeMs,
        heapUsedBytes: Math.round(20e6 + retained + (r() * 2 - 1) * (sc.noise ?? 20_000)),
        externalBytes: 1e6,
        heapSizeLimitBytes: 4e9,
        majorGcs: i + 1,
        afterMajorGc: true,
        jobs: {
          types: Object.entries(totals).map(([type, completed]) => ({ queue: 'images', name: type, completed, failed: 0, runTimeUs: completed * 2500, waitTimeMs: completed * 7, waited: completed })),
          dropped: 0,
          depths: [{ queue: 'images', waiting: 40 + i }],
        },
      });
    }
  }
  return out;
}

function analyze(sc: Scenario) {
  const profiles = profilesOf(sc);
  return analyzeJobs(instanceSeries(profiles));
}

/** Phases of a few intervals each: one type alone, the other alone, both, neither busy. */
function phases(rateA: number, rateB: number) {
  return (i: number, r: () => number): Record<string, number> => {
    const phase = Math.floor(i / 5) % 4;
    const a = phase === 0 || phase === 2 ? rateA : phase === 3 ? rateA / 3 : 0;
    const b = phase === 1 || phase === 2 ? rateB : phase === 3 ? rateB / 3 : 0;
    return { resize: Math.round(a * (0.8 + 0.4 * r())), email: Math.round(b * (0.8 + 0.4 * r())) };
  };
}

describe('least squares', () => {
  it('recovers exact coefficients and tells an aliased column', () => {
    const x = [[1, 2], [2, 1], [3, 5], [4, 4], [5, 9]];
    const y = x.map(([a, b]) => 3 * a! - 2 * b!);
    const f = weightedFit(x, y, x.map(() => 1));
    expect(f.beta[0]).toBeCloseTo(3, 9);
    expect(f.beta[1]).toBeCloseTo(-2, 9);
    // The second column twice the first: the data cannot tell them apart.
    const twice = x.map(([a]) => [a!, 2 * a!]);
    const g = weightedFit(twice, twice.map(([a]) => 5 * a!), twice.map(() => 1));
    expect(g.p).toBe(1);
    expect(g.se[1]).toBe(Infinity);
    expect(g.beta[0]).toBeCloseTo(5, 9);
  });

  it('down-weights an outlier', () => {
    const x = Array.from({ length: 30 }, (_, i) => [i + 1]);
    const y = x.map(([v]) => 10 * v! + (v! % 3) - 1);
    y[7] = 1e6;
    expect(robustFit(x, y).beta[0]).toBeCloseTo(10, 0);
    expect(weightedFit(x, y, y.map(() => 1)).beta[0]).toBeGreaterThan(100);
  });

  it('computes the F distribution and the incomplete beta function', () => {
    // Tables: F(1, 10) at 4.965 is the 5 % point, F(3, 30) at 4.51 the 1 %.
    expect(fSurvival(4.965, 1, 10)).toBeCloseTo(0.05, 3);
    expect(fSurvival(4.51, 3, 30)).toBeCloseTo(0.01, 3);
    expect(regularizedBeta(0.5, 2, 2)).toBeCloseTo(0.5, 12);
    expect(regularizedBeta(0.3, 1, 1)).toBeCloseTo(0.3, 12);
  });
});

describe('memory per completed job', () => {
  it('names the type that retains, its bytes per job, and the other type flat; growth follows jobs', () => {
    const r = analyze({ profiles: 60, intervalMs: 5000, jobs: phases(150, 150), bytesPerJob: { resize: 16_048, email: 0 } })!;
    expect(r.follows).toBe('jobs');
    const resize = r.types.find((t) => t.name === 'resize')!;
    const email = r.types.find((t) => t.name === 'email')!;
    expect(resize.verdict).toBe('retains');
    expect(Math.abs(resize.retainedBytesPerJob! - 16_048) / 16_048).toBeLessThan(0.05);
    expect(email.verdict).toBe('flat');
    expect(r.types[0]!.name).toBe('resize');
    // Rates, run and wait times, depth.
    expect(resize.completedPerHour).toBeGreaterThan(0);
    expect(resize.avgRunMs).toBeCloseTo(2.5, 5);
    expect(resize.avgWaitMs).toBeCloseTo(7, 5);
    expect(resize.queueDepth).toBe(40 + 59);
    expect(Math.abs(resize.retainedBytesPerHour! / (resize.retainedBytesPerJob! * resize.completedPerHour) - 1)).toBeLessThan(1e-3);
    const text = formatLeakTable({ service: 'w', evaluatedAt: 'now', leaks: [], process: [], jobs: r });
    expect(text).toMatch(/images\/resize: 15\.\d KiB retained per job, [\d.]+ ?[kM]? jobs\/day -> [\d.]+ [MG]iB\/day/);
    expect(text).toContain('the heap grows with the jobs finished, not with time');
  });

  it('works across instances, with post-GC noise of a few percent of an interval’s growth', () => {
    const r = analyze({ profiles: 40, intervalMs: 2000, instances: 3, noise: 50_000, jobs: phases(60, 100), bytesPerJob: { resize: 0, email: 8_000 }, seed: 7 })!;
    expect(r.instances).toBe(3);
    const email = r.types.find((t) => t.name === 'email')!;
    expect(email.verdict).toBe('retains');
    expect(Math.abs(email.retainedBytesPerJob! - 8_000) / 8_000).toBeLessThan(0.1);
    expect(r.types.find((t) => t.name === 'resize')!.verdict).toBe('flat');
  });

  it('says the heap follows time when it grows on a clock whatever the jobs do', () => {
    const r = analyze({ profiles: 60, intervalMs: 5000, jobs: phases(150, 150), bytesPerJob: {}, bytesPerSecond: 20_000 })!;
    expect(r.follows).toBe('time');
    for (const t of r.types) expect(t.verdict).toBe('flat');
  });

  it('at a steady job rate, cannot tell jobs from time, and says so; the per-job figure still holds', () => {
    const r = analyze({ profiles: 60, intervalMs: 5000, jobs: () => ({ resize: 100 }), bytesPerJob: { resize: 4_000 } })!;
    expect(r.follows).toBe('undetermined');
    expect(Math.abs(r.retainedBytesPerJob! - 4_000) / 4_000).toBeLessThan(0.05);
    expect(r.types[0]!.retainedBytesPerJob).toBeCloseTo(4_000, -2);
  });

  it('does not pick one of two types that always run in the same mix', () => {
    const r = analyze({ profiles: 60, intervalMs: 5000, jobs: (i) => ({ resize: 100 + (i % 7) * 20, email: 2 * (100 + (i % 7) * 20) }), bytesPerJob: { resize: 9_000 } })!;
    for (const t of r.types) expect(t.verdict).toBe('unclear');
    // All jobs as one: 9,000 bytes per 3 jobs.
    expect(Math.abs(r.retainedBytesPerJob! - 3_000) / 3_000).toBeLessThan(0.05);
  });

  it('fits at most maxIntervals intervals, the newest of each instance', () => {
    const profiles = profilesOf({ profiles: 60, intervalMs: 5000, instances: 2, jobs: phases(150, 150), bytesPerJob: { resize: 16_048 } });
    const r = analyzeJobs(instanceSeries(profiles), [], { ...DEFAULT_JOBS, maxIntervals: 40 })!;
    expect(r.intervals).toBe(40);
    expect(r.types.find((t) => t.name === 'resize')!.verdict).toBe('retains');
  });

  it('reports nothing for profiles without job counters, and waits for enough intervals', () => {
    const plain = profilesOf({ profiles: 20, intervalMs: 5000, jobs: () => ({}), bytesPerJob: {} }).map((p) => ({ ...p, jobs: undefined }));
    expect(analyzeJobs(instanceSeries(plain))).toBeNull();
    const short = analyze({ profiles: 5, intervalMs: 5000, jobs: phases(100, 100), bytesPerJob: { resize: 5_000 } })!;
    expect(short.follows).toBe('undetermined');
    expect(short.types.every((t) => t.verdict === 'unclear' && t.retainedBytesPerJob === null)).toBe(true);
  });
});
