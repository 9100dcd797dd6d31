/**
 * From stored points to per-key decisions: builds one series per instance
 * (per process lifetime: the ingester's instance key changes on restart, so a
 * restart starts a new series), decides each with the rule, then combines
 * instances. Pure: no I/O, no clock.
 */
import type { ProfilePoint, SitePoint } from './queries';
import { DEFAULT_RULE, decideSeries, type RuleOptions, type SeriesVerdict } from './rule';
import { median } from './stats';

export interface DetectOptions {
  rule: RuleOptions;
  /** Rule for process gauges (heap used, external): GC timing, not Poisson sampling, is their noise. */
  processRule: RuleOptions;
  /**
   * An instance whose newest profile is more than this many of its own
   * intervals behind the service's newest profile has stopped (restarted,
   * scaled down): it no longer counts.
   */
  staleProfiles: number;
  /** Share of the instances holding a site that must be rising (at least one). */
  minInstanceFraction: number;
}

export const DEFAULT_DETECT: DetectOptions = {
  rule: DEFAULT_RULE,
  // A process gauge sums every site: a leak under a warm-up that is still
  // settling decelerates the total without stopping, so the plateau ratio
  // is looser; the lower envelope ("does not return to baseline") decides.
  processRule: { ...DEFAULT_RULE, poisson: false, minRecentSlopeRatio: 0.1 },
  staleProfiles: 5,
  minInstanceFraction: 0.3,
};

export interface SiteDecision {
  siteId: string;
  positive: boolean;
  growthBytesPerInterval: number;
  growthBytesPerHour: number;
  retainedBytes: number;
  instancesRising: number;
  instancesSeen: number;
  intervals: number;
  confidence: number;
}

export interface ProcessDecision {
  key: string;
  kind: 'heap' | 'external';
  instance: string;
  positive: boolean;
  growthBytesPerHour: number;
  timeToLimitSeconds: number | null;
}

export interface Detection {
  latestProfileMs: number;
  sites: Map<string, SiteDecision>;
  process: ProcessDecision[];
}

interface InstanceSeries {
  instance: string;
  times: number[];
  index: Map<number, number>;
  intervalMs: number;
  profiles: ProfilePoint[];
}

export function detect(profiles: readonly ProfilePoint[], points: readonly SitePoint[], opts: DetectOptions = DEFAULT_DETECT): Detection {
  const byInstance = new Map<string, ProfilePoint[]>();
  for (const p of profiles) {
    let list = byInstance.get(p.instance);
    if (!list) byInstance.set(p.instance, (list = []));
    list.push(p);
  }
  const latestProfileMs = profiles.reduce((m, p) => Math.max(m, p.timeMs), 0);
  const series = new Map<string, InstanceSeries>();
  for (const [instance, list] of byInstance) {
    list.sort((a, b) => a.timeMs - b.timeMs);
    const times = list.map((p) => p.timeMs);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    const intervalMs = gaps.length ? Math.max(1, median(gaps)) : 0;
    const last = times[times.length - 1]!;
    if (intervalMs > 0 && latestProfileMs - last > opts.staleProfiles * intervalMs) continue;
    series.set(instance, { instance, times, index: new Map(times.map((t, i) => [t, i])), intervalMs, profiles: list });
  }

  // site -> instance -> values (0 where the sampler saw nothing alive).
  const values = new Map<string, Map<string, number[]>>();
  for (const p of points) {
    const s = series.get(p.instance);
    const i = s?.index.get(p.timeMs);
    if (!s || i === undefined) continue; // no commit marker, or outside the window
    let perInstance = values.get(p.siteId);
    if (!perInstance) values.set(p.siteId, (perInstance = new Map()));
    let ys = perInstance.get(p.instance);
    if (!ys) perInstance.set(p.instance, (ys = new Array<number>(s.times.length).fill(0)));
    ys[i] = (ys[i] ?? 0) + p.bytes;
  }

  const sites = new Map<string, SiteDecision>();
  for (const [siteId, perInstance] of values) {
    const verdicts: Array<{ v: SeriesVerdict; s: InstanceSeries }> = [];
    for (const [instance, ys] of perInstance) {
      verdicts.push({ v: decideSeries(ys, opts.rule), s: series.get(instance)! });
    }
    const rising = verdicts.filter((x) => x.v.rising);
    const seen = verdicts.length;
    const positive = rising.length >= 1 && rising.length >= Math.ceil(opts.minInstanceFraction * seen);
    const basis = rising.length ? rising : verdicts;
    const perHour = (x: { v: SeriesVerdict; s: InstanceSeries }): number =>
      x.s.intervalMs > 0 ? (x.v.slopePerProfile * 3_600_000) / x.s.intervalMs : 0;
    sites.set(siteId, {
      siteId,
      positive,
      growthBytesPerInterval: basis.reduce((a, x) => a + x.v.slopePerProfile, 0),
      growthBytesPerHour: basis.reduce((a, x) => a + perHour(x), 0),
      retainedBytes: verdicts.reduce((a, x) => a + x.v.last, 0),
      instancesRising: rising.length,
      instancesSeen: seen,
      intervals: Math.max(0, ...basis.map((x) => x.v.profiles - 1)),
      confidence: rising.length ? (1 - median(rising.map((x) => x.v.pRising))) * (rising.length / seen) : 0,
    });
  }

  const process: ProcessDecision[] = [];
  for (const s of series.values()) {
    const perHour = (slope: number): number => (s.intervalMs > 0 ? (slope * 3_600_000) / s.intervalMs : 0);
    const heap = decideSeries(s.profiles.map((p) => p.heapUsedBytes), opts.processRule);
    const limit = s.profiles[s.profiles.length - 1]!.heapSizeLimitBytes;
    const slopePerSec = s.intervalMs > 0 ? (heap.slopePerProfile * 1000) / s.intervalMs : 0;
    process.push({
      key: `heap:${s.instance}`,
      kind: 'heap',
      instance: s.instance,
      positive: heap.rising,
      growthBytesPerHour: perHour(heap.slopePerProfile),
      timeToLimitSeconds: heap.rising && slopePerSec > 0 && limit > heap.last ? (limit - heap.last) / slopePerSec : null,
    });
    // `external` already includes arrayBuffers (Node's process.memoryUsage docs).
    const ext = decideSeries(s.profiles.map((p) => p.externalBytes), opts.processRule);
    process.push({
      key: `external:${s.instance}`,
      kind: 'external',
      instance: s.instance,
      positive: ext.rising,
      growthBytesPerHour: perHour(ext.slopePerProfile),
      timeToLimitSeconds: null,
    });
  }
  return { latestProfileMs, sites, process };
}
