/**
 * Memory per completed job: from the job counters every profile carries
 * (the agent's queue integrations, IngestRequest.jobs) and the heap after
 * each major GC, which job type retains memory, how much per job, and
 * whether the heap grows with jobs or with time. Pure: no I/O, no clock.
 *
 * Between two consecutive post-GC profiles of one instance the heap grew by
 * Δheap while Δjobs_k jobs of each type k finished over Δt seconds. Across
 * those intervals (of every live instance) a robust least-squares fit
 *
 *     Δheap = Σ_k β_k · Δjobs_k  (+ γ · Δt)
 *
 * gives β_k, the bytes each job of type k leaves retained, and γ, growth
 * that follows the clock rather than any job. Why a fit and not a label on
 * the samples: V8's sampling heap profiler keeps no context per sample, so
 * the heap cannot say which job allocated what (docs/integrations.md).
 *
 * What the data can and cannot tell:
 * - Types are told apart only where their mix varies between intervals. Two
 *   types that always run in the same ratio are one column to any fit: both
 *   are 'unclear', and the service's all-jobs figure still holds.
 * - Jobs are told from time only where the job rate varies. At a steady
 *   rate, "X bytes per job" and "Y bytes per hour" are the same statement;
 *   `follows` is then 'undetermined' and the per-job figures come from the
 *   jobs-only fit.
 * - Flagged sites (sampled, so noisier) are fitted the same way, which says
 *   which type's jobs a leaking site grows with.
 */
import type { ProfileJobs } from '../store/store';
import { HOUR_MS } from '../units';
import type { InstanceSeries } from './detect';
import { median } from './stats';
import { nestedFTest, robustFit, weightedFit, type Fit } from './regression';

export interface JobsOptions {
  /** Significance of the F tests (do jobs, does time, explain the growth). */
  alpha: number;
  /** Share of the explained growth a term must carry to count (jobs vs time). */
  minShare: number;
  /** β/SE a type needs to be said to retain memory. */
  retainsT: number;
  /**
   * Fewest bytes per job that count as retained: below it, a significant β
   * is more likely the fit's own bias (allocator rounding, a Map's amortised
   * growth in the queue client) than a job's leak.
   */
  minBytesPerJob: number;
  /** Service-wide growth a retaining type must cause, bytes per hour. */
  minGrowthBytesPerHour: number;
  /** A type is flat when β + 2 SE stays below this, or below `flatShare` of the largest retaining type's β. */
  flatBytesPerJob: number;
  flatShare: number;
  /** Fewest intervals (post-GC pairs) before anything is judged, and per fitted column. */
  minIntervals: number;
  intervalsPerColumn: number;
  /** Most types fitted on their own (the rest are one column); most types reported. */
  maxFittedTypes: number;
  maxReportedTypes: number;
  /**
   * Most intervals fitted: each instance keeps its newest share of them. A
   * fit costs O(intervals x types²), done some 40 times an evaluation
   * (robust weights, nested fits, each flagged site).
   */
  maxIntervals: number;
}

export const DEFAULT_JOBS: JobsOptions = {
  alpha: 0.001,
  minShare: 0.1,
  retainsT: 3,
  minBytesPerJob: 64,
  minGrowthBytesPerHour: 256 * 1024,
  flatBytesPerJob: 256,
  flatShare: 0.1,
  minIntervals: 8,
  intervalsPerColumn: 4,
  maxFittedTypes: 12,
  maxReportedTypes: 50,
  maxIntervals: 2000,
};

/** What the heap's growth follows; see the module comment. 'none': it does not grow. */
export type Follows = 'jobs' | 'time' | 'both' | 'undetermined' | 'none';

/** A flagged site whose growth follows one job type. */
export interface JobSite {
  function: string;
  file: string;
  line: number;
  retainedBytesPerJob: number;
}

export interface JobTypeReport {
  queue: string;
  /** '' where the queue has one type. */
  name: string;
  /** Jobs finished per hour over the window, all live instances together. */
  completedPerHour: number;
  failedPerHour: number;
  /** The same per profile interval (the instances' median interval). */
  completedPerInterval: number;
  /** Mean processing time and queue wait of the window's jobs, ms; null where unknown. */
  avgRunMs: number | null;
  avgWaitMs: number | null;
  /** The type's queue's waiting jobs at its newest read; null where not read. */
  queueDepth: number | null;
  /** β: bytes retained (after major GCs) per finished job; null when not fitted. */
  retainedBytesPerJob: number | null;
  /** Its standard error. */
  retainedBytesPerJobError: number | null;
  /** β times the type's job rate: what the type adds to the heap an hour. */
  retainedBytesPerHour: number | null;
  /**
   * 'retains': β is significantly positive (β/SE ≥ 3), at least 64 bytes,
   * and adds at least minGrowthBytesPerHour (256 KiB/h). 'flat': β + 2 SE is below a few hundred bytes (or
   * a tenth of the largest retaining type's β). 'unclear': neither (too little
   * data, or the type's mix never varied apart from another's).
   */
  verdict: 'retains' | 'flat' | 'unclear';
  /** Flagged sites whose growth follows this type, by bytes per job. */
  sites: JobSite[];
}

export interface JobsReport {
  /** Intervals between consecutive post-GC profiles fitted, and the instances they came from. */
  intervals: number;
  instances: number;
  follows: Follows;
  /** Post-GC heap growth, all live instances together. */
  heapGrowthBytesPerHour: number;
  /** All jobs as one type: bytes retained per finished job; null when not fitted. */
  retainedBytesPerJob: number | null;
  /** Jobs the agents did not count by type (past their type cap) over the window. */
  droppedJobs: number;
  /** Job types beyond maxReportedTypes, left out of `types`. */
  typesNotShown: number;
  types: JobTypeReport[];
}

/** A flagged site's values, one per profile of each instance's series (detect.siteValues). */
export interface SiteSeries {
  function: string;
  file: string;
  line: number;
  perInstance: ReadonlyMap<string, readonly number[]>;
}

interface TypeTotals {
  queue: string;
  name: string;
  completed: number;
  failed: number;
  runUs: number;
  waitMs: number;
  waited: number;
  /** Jobs per hour, summed over instances. */
  completedPerHour: number;
  failedPerHour: number;
}

const key = (queue: string, name: string): string => `${queue}\0${name}`;

/** A column whose residual on the others keeps less than this share of it is a combination of them. */
const ALIASED_SHARE = 1e-9;

/** Cumulative counters of each type in one profile (absent type: 0). */
function countsOf(jobs: ProfileJobs | undefined): Map<string, ProfileJobs['types'][number]> {
  return new Map((jobs?.types ?? []).map((t) => [key(t.queue, t.name), t]));
}

/** One fitted interval: Δheap, Δt (s), Δjobs per fitted column, and the flagged sites' Δbytes. */
interface Row {
  instance: string;
  dy: number;
  dt: number;
  dj: number[];
  sites: number[];
}

export function analyzeJobs(series: ReadonlyMap<string, InstanceSeries>, sites: readonly SiteSeries[] = [], opts: JobsOptions = DEFAULT_JOBS): JobsReport | null {
  const live = [...series.values()].filter((s) => s.profiles.some((p) => (p.jobs?.types.length ?? 0) > 0 || (p.jobs?.dropped ?? 0) > 0));
  if (live.length === 0) return null;

  // Window totals per type, and per-hour rates summed over instances.
  const totals = new Map<string, TypeTotals>();
  let droppedJobs = 0;
  const depth = new Map<string, { waiting: number; timeMs: number }>();
  for (const s of live) {
    const withJobs = s.profiles.filter((p) => p.jobs);
    const first = withJobs[0]!;
    const last = withJobs[withJobs.length - 1]!;
    const spanMs = last.timeMs - first.timeMs;
    const before = countsOf(first.jobs);
    droppedJobs += Math.max(0, (last.jobs?.dropped ?? 0) - (first.jobs?.dropped ?? 0));
    for (const t of last.jobs?.types ?? []) {
      const b = before.get(key(t.queue, t.name));
      let tot = totals.get(key(t.queue, t.name));
      if (!tot) totals.set(key(t.queue, t.name), (tot = { queue: t.queue, name: t.name, completed: 0, failed: 0, runUs: 0, waitMs: 0, waited: 0, completedPerHour: 0, failedPerHour: 0 }));
      const dc = Math.max(0, t.completed - (b?.completed ?? 0));
      const df = Math.max(0, t.failed - (b?.failed ?? 0));
      tot.completed += dc;
      tot.failed += df;
      tot.runUs += Math.max(0, t.runTimeUs - (b?.runTimeUs ?? 0));
      tot.waitMs += Math.max(0, t.waitTimeMs - (b?.waitTimeMs ?? 0));
      tot.waited += Math.max(0, t.waited - (b?.waited ?? 0));
      if (spanMs > 0) {
        tot.completedPerHour += (dc * HOUR_MS) / spanMs;
        tot.failedPerHour += (df * HOUR_MS) / spanMs;
      }
    }
    for (const p of withJobs) {
      for (const d of p.jobs!.depths) {
        const seen = depth.get(d.queue);
        if (!seen || seen.timeMs < p.timeMs) depth.set(d.queue, { waiting: d.waiting, timeMs: p.timeMs });
      }
    }
  }
  const intervalMs = median(live.map((s) => s.intervalMs).filter((x) => x > 0)) || 0;

  // Fitted columns: the busiest types, then the rest as one.
  const active = [...totals.values()].filter((t) => t.completed + t.failed > 0).sort((a, b) => b.completed + b.failed - (a.completed + a.failed));
  const perInstance = Math.max(1, Math.floor(opts.maxIntervals / live.length));
  const rowsPossible = live.reduce((n, s) => n + Math.min(perInstance, Math.max(0, s.postGc.length - 1)), 0);
  const fittedCount = Math.max(0, Math.min(opts.maxFittedTypes, active.length, Math.floor(rowsPossible / opts.intervalsPerColumn) - 1));
  const fitted = active.slice(0, fittedCount);
  const hasOther = active.length > fittedCount;
  const column = new Map(fitted.map((t, i) => [key(t.queue, t.name), i]));
  const columns = fitted.length + (hasOther ? 1 : 0);

  const rows: Row[] = [];
  for (const s of live) {
    const post = s.postGc;
    for (let k = Math.max(1, post.length - perInstance); k < post.length; k++) {
      const a = s.profiles[post[k - 1]!]!;
      const b = s.profiles[post[k]!]!;
      const ca = countsOf(a.jobs);
      const dj = new Array<number>(columns).fill(0);
      let bad = false;
      for (const t of b.jobs?.types ?? []) {
        const before = ca.get(key(t.queue, t.name));
        const d = t.completed + t.failed - ((before?.completed ?? 0) + (before?.failed ?? 0));
        if (d < 0) bad = true;
        const c = column.get(key(t.queue, t.name)) ?? (hasOther ? columns - 1 : -1);
        if (c >= 0) dj[c]! += d;
      }
      if (bad) continue;
      const values = (sv: SiteSeries): number => {
        const ys = sv.perInstance.get(s.instance);
        return ys ? (ys[post[k]!] ?? 0) - (ys[post[k - 1]!] ?? 0) : 0;
      };
      rows.push({ instance: s.instance, dy: b.heapUsedBytes - a.heapUsedBytes, dt: (b.timeMs - a.timeMs) / 1000, dj, sites: sites.map(values) });
    }
  }

  let heapGrowthBytesPerHour = 0;
  for (const s of live) {
    const mine = rows.filter((r) => r.instance === s.instance);
    const dt = mine.reduce((a, r) => a + r.dt, 0);
    if (dt > 0) heapGrowthBytesPerHour += (mine.reduce((a, r) => a + r.dy, 0) / dt) * 3600;
  }

  const report = (t: TypeTotals, beta: number | null, se: number | null, verdict: JobTypeReport['verdict'], jobSites: JobSite[]): JobTypeReport => {
    const perHour = t.completedPerHour + t.failedPerHour;
    return {
      queue: t.queue,
      name: t.name,
      completedPerHour: round(t.completedPerHour, 1),
      failedPerHour: round(t.failedPerHour, 1),
      completedPerInterval: round((t.completedPerHour * intervalMs) / HOUR_MS, 2),
      avgRunMs: t.completed + t.failed > 0 && t.runUs > 0 ? round(t.runUs / 1000 / (t.completed + t.failed), 3) : null,
      avgWaitMs: t.waited > 0 ? round(t.waitMs / t.waited, 1) : null,
      queueDepth: depth.get(t.queue)?.waiting ?? null,
      retainedBytesPerJob: beta === null ? null : Math.round(beta),
      retainedBytesPerJobError: se === null || !Number.isFinite(se) ? null : Math.round(se),
      retainedBytesPerHour: beta === null ? null : Math.round(beta * perHour),
      verdict,
      sites: jobSites,
    };
  };
  const base = { instances: live.length, heapGrowthBytesPerHour: Math.round(heapGrowthBytesPerHour), droppedJobs };
  const byActivity = [...totals.values()].sort((a, b) => b.completedPerHour + b.failedPerHour - (a.completedPerHour + a.failedPerHour));
  const notFitted = (follows: Follows): JobsReport => ({
    ...base,
    intervals: rows.length,
    follows,
    retainedBytesPerJob: null,
    typesNotShown: Math.max(0, byActivity.length - opts.maxReportedTypes),
    types: byActivity.slice(0, opts.maxReportedTypes).map((t) => report(t, null, null, 'unclear', [])),
  });
  if (columns === 0 || rows.length < Math.max(opts.minIntervals, opts.intervalsPerColumn * (columns + 1))) return notFitted('undetermined');

  // Heap: full fit (jobs + time) for the weights, then the nested fits with them.
  const xFull = rows.map((r) => [...r.dj, r.dt]);
  const y = rows.map((r) => r.dy);
  const w = robustFit(xFull, y).weights;
  const full = weightedFit(xFull, y, w);
  const jobsOnly = weightedFit(rows.map((r) => r.dj), y, w);
  const timeOnly = weightedFit(rows.map((r) => [r.dt]), y, w);
  const nothing: Fit = { beta: [], se: [], rss: y.reduce((a, v, i) => a + w[i]! * v * v, 0), n: rows.length, p: 0, weights: w };
  const sumDt = rows.reduce((a, r) => a + r.dt, 0);
  const jobPart = fitted.reduce((a, _, j) => a + Math.abs(full.beta[j]! * rows.reduce((s, r) => s + r.dj[j]!, 0)), 0);
  const timePart = Math.abs(full.beta[columns]! * sumDt);
  const share = (part: number): number => (jobPart + timePart > 0 ? part / (jobPart + timePart) : 0);
  const jobsMatter = nestedFTest(timeOnly, full) < opts.alpha && share(jobPart) >= opts.minShare;
  const timeMatters = nestedFTest(jobsOnly, full) < opts.alpha && share(timePart) >= opts.minShare;
  const grows = nestedFTest(nothing, full) < opts.alpha;
  const follows: Follows = !grows ? 'none' : jobsMatter && timeMatters ? 'both' : jobsMatter ? 'jobs' : timeMatters ? 'time' : 'undetermined';
  // The per-job figures: with the time term, so that growth on the clock
  // (the runtime's own, a timer's) is not charged to whichever types ran
  // most; without it only where time cannot be told from jobs.
  const withTime = follows !== 'undetermined';
  const model = withTime ? full : jobsOnly;
  const fitSite = (i: number): Fit => {
    const ys = rows.map((r) => r.sites[i]!);
    const xs = rows.map((r) => (withTime ? [...r.dj, r.dt] : r.dj));
    return weightedFit(xs, ys, robustFit(xs, ys).weights);
  };
  const siteFits = sites.map((_, i) => fitSite(i));

  // A column exactly a combination of the others (a fixed mix) gets the
  // joint effect in the fit, whichever column comes first: none of them can
  // be named.
  const xModel = rows.map((r) => (withTime ? [...r.dj, r.dt] : r.dj));
  const confounded = fitted.map((_, j) => {
    const others = xModel.map((x) => x.filter((_, k) => k !== j));
    const own = xModel.map((x) => x[j]!);
    const total = own.reduce((a, v, i) => a + w[i]! * v * v, 0);
    return total > 0 && weightedFit(others, own, w).rss <= ALIASED_SHARE * total;
  });
  const perHourOf = (t: TypeTotals): number => t.completedPerHour + t.failedPerHour;
  const retains = (j: number): boolean => {
    if (confounded[j]) return false;
    const b = model.beta[j]!;
    return b >= opts.minBytesPerJob && b / model.se[j]! >= opts.retainsT && b * perHourOf(fitted[j]!) >= opts.minGrowthBytesPerHour;
  };
  const largest = Math.max(0, ...fitted.map((_, j) => (retains(j) ? model.beta[j]! : 0)));
  const flatBound = Math.max(opts.flatBytesPerJob, opts.flatShare * largest);
  const types: JobTypeReport[] = fitted.map((t, j) => {
    const b = model.beta[j]!;
    const se = model.se[j]!;
    const verdict = retains(j) ? 'retains' : !confounded[j] && Number.isFinite(se) && b + 2 * se < flatBound ? 'flat' : 'unclear';
    const jobSites = sites
      .map((sv, i) => ({ sv, b: siteFits[i]!.beta[j]!, se: siteFits[i]!.se[j]! }))
      .filter((x) => x.b >= opts.minBytesPerJob && x.b / x.se >= opts.retainsT)
      .sort((a, c) => c.b - a.b)
      .map((x) => ({ function: x.sv.function, file: x.sv.file, line: x.sv.line, retainedBytesPerJob: Math.round(x.b) }));
    const known = Number.isFinite(se) && !confounded[j];
    return report(t, known ? b : null, known ? se : null, verdict, known ? jobSites : []);
  });
  const shown = new Set(fitted.map((t) => key(t.queue, t.name)));
  for (const t of byActivity) if (!shown.has(key(t.queue, t.name))) types.push(report(t, null, null, 'unclear', []));
  const order = { retains: 0, unclear: 1, flat: 2 } as const;
  types.sort((a, b) => order[a.verdict] - order[b.verdict] || (b.retainedBytesPerHour ?? 0) - (a.retainedBytesPerHour ?? 0) || b.completedPerHour - a.completedPerHour);

  // All jobs as one type.
  const all = weightedFit(
    rows.map((r) => {
      const total = r.dj.reduce((a, v) => a + v, 0);
      return withTime ? [total, r.dt] : [total];
    }),
    y,
    w,
  );
  return {
    ...base,
    intervals: rows.length,
    follows,
    retainedBytesPerJob: Number.isFinite(all.se[0]!) ? Math.round(all.beta[0]!) : null,
    typesNotShown: Math.max(0, types.length - opts.maxReportedTypes),
    types: types.slice(0, opts.maxReportedTypes),
  };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
