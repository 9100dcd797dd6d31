/**
 * The evidence behind a leak report, for people to look at: for each flagged
 * site, its in-use bytes at every profile of the window the detector reads,
 * per instance, with the points the rule judged and the Theil-Sen line
 * through them; for each instance, heap used and the floor the heap rule
 * judges. Read from the store now, through the detector's own series
 * building (detect.ts), so it shows what an evaluation now would judge.
 */
import { siteId } from '../model/site';
import type { TenantStore } from '../store/store';
import { decideSite, HEAP_FLOOR_PROFILES, instanceSeries, judgedPostGc, siteValues, trailingMin, type DetectOptions } from './detect';
import type { LeakReport } from './report';
import { theilSen } from './stats';

export interface TrendLine {
  fromMs: number;
  fromBytes: number;
  toMs: number;
  toBytes: number;
  bytesPerHour: number;
}

export interface EvidencePoint {
  /** Profile time, Unix ms. */
  t: number;
  bytes: number;
  /** The agent took this profile right after a major GC. */
  postGc: boolean;
  /** The rule judged this point (post-GC points once there are enough of them, else every point). */
  judged: boolean;
}

export interface SiteInstanceEvidence {
  instance: string;
  /** The rule's verdict on this instance's series now. */
  rising: boolean;
  /** 'post-gc': the post-GC points alone; 'all': the whole series, gated on GC cycles. */
  judgedOn: 'post-gc' | 'all';
  points: EvidencePoint[];
  /** Theil-Sen line through the judged points, against time. */
  trend: TrendLine | null;
}

export interface SiteEvidence {
  siteId: string;
  function: string;
  file: string;
  line: number;
  instances: SiteInstanceEvidence[];
}

export interface HeapPoint {
  t: number;
  heapUsedBytes: number;
  /** Trailing minimum of heap used over HEAP_FLOOR_PROFILES profiles: the series the heap rule judges. */
  floorBytes: number;
  postGc: boolean;
}

export interface HeapEvidence {
  instance: string;
  heapSizeLimitBytes: number;
  points: HeapPoint[];
  /** Theil-Sen line through the floor's last rule.maxProfiles points. */
  trend: TrendLine | null;
}

export interface LeakEvidence {
  service: string;
  /** The report whose flagged sites are shown. */
  evaluatedAt: string;
  sites: SiteEvidence[];
  heap: HeapEvidence[];
}

function trendOf(ts: readonly number[], ys: readonly number[]): TrendLine | null {
  if (ts.length < 2) return null;
  const t0 = ts[0]!;
  const line = theilSen(ys, ts.map((t) => t - t0));
  const tN = ts[ts.length - 1]!;
  return {
    fromMs: t0,
    fromBytes: line.intercept,
    toMs: tN,
    toBytes: line.intercept + line.slope * (tN - t0),
    bytesPerHour: line.slope * 3_600_000,
  };
}

/** The evidence behind `report`, over the window evaluateLeaks reads with the same options (index.ts: leakEvidence). */
export async function readEvidence(store: TenantStore, report: LeakReport, o: DetectOptions, lookbackMs: number): Promise<LeakEvidence> {
  const profiles = await store.profilePoints(report.service, o.rule.maxProfiles, lookbackMs);
  const series = instanceSeries(profiles, o);
  const wanted = new Map(report.leaks.map((l) => [siteId({ function: l.function, file: l.file, line: l.line }), l]));
  const points = wanted.size ? (await store.sitePoints(report.service, profiles)).filter((p) => wanted.has(p.siteId)) : [];
  const values = siteValues(points, series);

  const sites: SiteEvidence[] = [];
  for (const [id, leak] of wanted) {
    const instances: SiteInstanceEvidence[] = [];
    for (const [instance, ys] of values.get(id) ?? []) {
      const s = series.get(instance)!;
      const post = judgedPostGc(ys.length, s, o);
      const from = Math.max(0, ys.length - o.rule.maxProfiles);
      const judged = new Set(post ?? ys.map((_, i) => i).filter((i) => i >= from));
      const idx = [...judged].sort((a, b) => a - b);
      instances.push({
        instance,
        rising: decideSite(ys, ys.length, s, o).rising,
        judgedOn: post ? 'post-gc' : 'all',
        points: ys.map((bytes, i) => ({ t: s.times[i]!, bytes, postGc: s.afterGc[i]!, judged: judged.has(i) })),
        trend: trendOf(idx.map((i) => s.times[i]!), idx.map((i) => ys[i]!)),
      });
    }
    sites.push({ siteId: id, function: leak.function, file: leak.file, line: leak.line, instances });
  }

  const heap: HeapEvidence[] = [];
  for (const s of series.values()) {
    const used = s.profiles.map((p) => p.heapUsedBytes);
    const floor = trailingMin(used, HEAP_FLOOR_PROFILES);
    const tail = Math.max(0, floor.length - o.processRule.maxProfiles);
    heap.push({
      instance: s.instance,
      heapSizeLimitBytes: s.profiles[s.profiles.length - 1]!.heapSizeLimitBytes,
      points: s.profiles.map((p, i) => ({ t: p.timeMs, heapUsedBytes: p.heapUsedBytes, floorBytes: floor[i]!, postGc: p.afterMajorGc })),
      trend: trendOf(s.times.slice(tail), floor.slice(tail)),
    });
  }
  return { service: report.service, evaluatedAt: report.evaluatedAt, sites, heap };
}
