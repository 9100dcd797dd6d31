import { describe, expect, it } from 'vitest';
import { detect, gcResets } from '../../collector/src/leaks/detect';
import type { ProfilePoint, SitePoint } from '../../collector/src/leaks/queries';
import { leakSeries } from './synthetic';

const MB = 1 << 20;

function profiles(instance: string, n: number, heap: (i: number) => number, t0 = 0): ProfilePoint[] {
  return Array.from({ length: n }, (_, i) => ({
    instance,
    timeMs: t0 + i * 1000,
    heapUsedBytes: heap(i),
    externalBytes: 0,
    arrayBuffersBytes: 0,
    heapSizeLimitBytes: 4096 * MB,
  }));
}

function points(instance: string, siteId: string, ys: readonly number[], t0 = 0): SitePoint[] {
  return ys.map((bytes, i) => ({ instance, timeMs: t0 + i * 1000, siteId, bytes }));
}

describe('detect', () => {
  it('finds major GCs as heap drops', () => {
    expect(gcResets([10, 12, 14, 8, 9, 10, 9.5])).toEqual([3]);
  });

  it('garbage that climbs between rare major GCs is not a leak until a GC shows it', () => {
    // Every churning site climbs with uncollected garbage until a GC at profile 30.
    const n = 30;
    const garbage = Array.from({ length: n }, (_, i) => (10 + i * 4) * 16384);
    const d = detect(profiles('a', n, (i) => 50 * MB + i * MB), points('a', 'g', garbage));
    expect(d.sites.get('g')?.positive).toBe(false);
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
  });
});
