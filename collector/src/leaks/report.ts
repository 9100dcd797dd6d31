/**
 * The leak report: the JSON contract of GET /api/v1/leaks and its table form
 * for `heapwatch leaks`.
 */
import type { Follows, JobsReport, JobTypeReport } from './jobs';
import type { StoredHolder } from '../store/holder-captures';

export interface LeakSite {
  /** The site: the deepest application frame (see model/site.ts). */
  function: string;
  file: string;
  /** Line where the function starts (V8's sampler has no allocation line). */
  line: number;
  /**
   * "application": the site is the user's own code (the deepest application
   * frame). "library": no application frame is on the stack (data that
   * arrives after an await: fetch, sockets, streams), so the site is a
   * dependency's or Node's frame; see docs/detector.md#which-frame-is-the-site.
   */
  siteKind: 'application' | 'library';
  /** The frame that made the allocation, as "fn (file:line)", when it is not the site; else null. */
  allocatedIn: string | null;
  /** The site's heaviest full stack, leaf first, as "fn (file:line)". */
  stack: string[];
  /** Summed over the rising instances (service-wide growth). */
  growthBytesPerHour: number;
  growthBytesPerInterval: number;
  /** In-use bytes of the site at the latest profile, summed over instances. */
  retainedBytes: number;
  /** Instances whose series is rising (while a flagged site is not, those still growing; docs/detector.md#alerts). */
  instances: number;
  /** Profile intervals the rising window spans (longest rising series). */
  intervals: number;
  /** 0..1: 1 - the median Mann-Kendall p-value of those instances, scaled by their share. */
  confidence: number;
  firstFlaggedAt: string;
  /**
   * How sure the site is. 'precise': it kept rising in profiles taken with
   * V8's inlining off (the agent's precise mode), so the bytes are charged
   * to the function that allocated them. 'imprecise': seen with inlining on,
   * where a small function inlined into its caller is charged to the
   * caller; the collector has asked the service's agents for precise mode
   * and the site is refined (confirmed, or replaced by the callee) when
   * their profiles arrive.
   */
  attribution: 'precise' | 'imprecise';
  /**
   * The on-heap holder (an Array, Map or Set) that keeps this site's
   * objects, from the newest holder capture (`holders`); null without one.
   * `match` says how it was tied to the site: 'stack' when the holder's
   * function or the closures that keep it are on the site's stack, 'size'
   * for a library site none names: the holder whose heap is nearest the
   * site's retained bytes, a lead rather than a proof (held-by.ts).
   */
  heldBy: HolderSite | null;
}

export interface ProcessFinding {
  /** 'heap': V8 heap used not returning to baseline; 'external': off-heap (Buffers, ArrayBuffers, addons), which the sampler cannot attribute. */
  kind: 'heap' | 'external';
  instance: string;
  growthBytesPerHour: number;
  /** Seconds until heap used reaches the V8 heap limit at the current trend; null for 'external' or no trend. */
  timeToLimitSeconds: number | null;
  /**
   * Who holds the growth, from the newest holder capture (`holders`): for
   * 'external' the largest off-heap holder (the code that KEEPS the
   * Buffers, not where they were allocated), for 'heap' the largest on-heap
   * holder. Null without a capture, or when it found no holder of the kind.
   */
  site?: HolderSite | null;
}

/** A holder as a finding's site. */
export interface HolderSite {
  siteKind: 'holder';
  function: string;
  file: string;
  line: number;
  /** The variable or property that keeps the objects or Buffers. */
  owner: string;
  path: string;
  offHeapBytes: number;
  heapBytes: number;
  /**
   * 'stack': the holder's code is on the finding's stack; 'size': nearest
   * in size to a library site's retained bytes; 'largest': a process
   * finding's, the largest holder of its kind in the snapshot.
   */
  match: 'stack' | 'size' | 'largest';
}

/** One holder of a capture (docs/detector.md#holders), as the store keeps it. */
export type HolderEntry = StoredHolder;

/** The newest holder capture of the service (one instance, asked on a confirmed finding). */
export interface HoldersReport {
  instance: string;
  capturedAt: string;
  /** Null when the capture was taken; else why it was not (heap above the pause budget, cool-down, failure). */
  skipped: string | null;
  heapUsedBytes: number;
  maxHeapBytes: number;
  /** Main-thread pause of writing the snapshot, ms. */
  pauseMs: number;
  /** Backing stores examined, their bytes, and how many of them no root reached. */
  backingStores: number;
  offHeapBytes: number;
  unreachable: number;
  /** Off-heap holders (offHeapBytes > 0) by off-heap bytes, then on-heap holders (offHeapBytes 0) by heap bytes. */
  holders: HolderEntry[];
}

export interface LeakReport {
  service: string;
  evaluatedAt: string;
  /** Flagged sites only, by growthBytesPerHour descending. */
  leaks: LeakSite[];
  process: ProcessFinding[];
  /**
   * Memory per completed job (leaks/jobs.ts): per job type, jobs per hour
   * and bytes retained per job, and whether the heap grows with jobs or with
   * time. null when no profile in the window carries job counters (no queue
   * integration in the agent, or an agent that predates them).
   */
  jobs: JobsReport | null;
  /** The newest holder capture of the service (within a day), or null. */
  holders: HoldersReport | null;
}

export function bytes(n: number): string {
  const a = Math.abs(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = a;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${n < 0 ? '-' : ''}${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function duration(s: number | null): string {
  if (s === null) return '-';
  if (s < 120) return `${Math.round(s)}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${(s / 3600).toFixed(1)}h`;
  return `${(s / 86400).toFixed(1)}d`;
}

/** A count with a k/M suffix: 950, 12.3k, 1.2 M. */
export function count(n: number): string {
  const a = Math.abs(n);
  if (a < 1000) return String(Math.round(n * 10) / 10);
  if (a < 1e6) return `${(n / 1e3).toFixed(1)}k`;
  if (a < 1e9) return `${(n / 1e6).toFixed(1)} M`;
  return `${(n / 1e9).toFixed(1)} G`;
}

/** "queue/name", or the queue where it has one type. */
export function jobTypeLabel(t: Pick<JobTypeReport, 'queue' | 'name'>): string {
  return t.name ? `${t.queue}/${t.name}` : t.queue || '(no queue)';
}

/** What `follows` means, in a sentence. */
export const FOLLOWS_TEXT: Readonly<Record<Follows, string>> = {
  jobs: 'the heap grows with the jobs finished, not with time',
  time: 'the heap grows with time, not with the jobs finished',
  both: 'the heap grows with the jobs finished and with time besides',
  undetermined: 'jobs ran too steadily to tell growth per job from growth per hour',
  none: 'the heap does not grow',
};

/** "15.7 KiB ± 120 B" */
export function perJob(t: Pick<JobTypeReport, 'retainedBytesPerJob' | 'retainedBytesPerJobError'>): string {
  if (t.retainedBytesPerJob === null) return '-';
  return t.retainedBytesPerJobError === null ? bytes(t.retainedBytesPerJob) : `${bytes(t.retainedBytesPerJob)} ± ${bytes(t.retainedBytesPerJobError)}`;
}

/** "resize: 15.7 KiB retained per job, 1.3 M jobs/day -> 19.8 GiB/day" */
export function retainsSentence(t: JobTypeReport): string {
  const perDay = (t.completedPerHour + t.failedPerHour) * 24;
  return `${jobTypeLabel(t)}: ${bytes(t.retainedBytesPerJob ?? 0)} retained per job, ${count(perDay)} jobs/day -> ${bytes((t.retainedBytesPerHour ?? 0) * 24)}/day`;
}

/** A time in ms: 3.2ms, 450ms, 12s, 5m. */
export function ms(v: number | null): string {
  if (v === null) return '-';
  if (v < 10) return `${v.toFixed(1)}ms`;
  if (v < 10_000) return `${Math.round(v)}ms`;
  return duration(v / 1000);
}

/** The jobs part of the report as lines (after the leak tables). */
export function formatJobs(jobs: JobsReport): string[] {
  const out = [`jobs: ${jobs.intervals} intervals between post-GC profiles of ${jobs.instances} instance(s); ${FOLLOWS_TEXT[jobs.follows]} (heap ${bytes(jobs.heapGrowthBytesPerHour)}/h)`, ''];
  out.push(
    table(
      ['JOB TYPE', 'JOBS/H', 'FAILED/H', 'RETAINED/JOB', 'RETAINED/DAY', 'VERDICT', 'RUN', 'WAIT', 'DEPTH'],
      jobs.types.map((t) => [
        jobTypeLabel(t),
        count(t.completedPerHour),
        count(t.failedPerHour),
        perJob(t),
        t.verdict === 'retains' ? bytes((t.retainedBytesPerHour ?? 0) * 24) : '-',
        t.verdict,
        ms(t.avgRunMs),
        ms(t.avgWaitMs),
        t.queueDepth === null ? '-' : count(t.queueDepth),
      ]),
    ),
  );
  const retaining = jobs.types.filter((t) => t.verdict === 'retains');
  if (retaining.length) out.push('', ...retaining.map(retainsSentence));
  for (const t of retaining) for (const s of t.sites) out.push(`  ${jobTypeLabel(t)} grows ${s.function || '(anonymous)'} (${s.file}:${s.line}) by ${bytes(s.retainedBytesPerJob)} per job`);
  if (jobs.retainedBytesPerJob !== null) out.push('', `all jobs together: ${bytes(jobs.retainedBytesPerJob)} retained per job`);
  if (jobs.typesNotShown > 0) out.push(`${jobs.typesNotShown} more job types not shown`);
  if (jobs.droppedJobs > 0) out.push(`${count(jobs.droppedJobs)} jobs were not counted by type: the agent's job type cap (maxJobTypes) was reached`);
  return out;
}

function table(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** The holder capture as lines: who keeps the off-heap memory, and the collections that hold the most heap. */
export function formatHolders(h: HoldersReport): string[] {
  const head = `holders (heap snapshot of ${h.instance} at ${h.capturedAt}`;
  if (h.skipped) return [`${head}): not taken: ${h.skipped}`];
  const out = [`${head}, ${h.pauseMs} ms pause, ${h.backingStores} backing stores of ${bytes(h.offHeapBytes)}):`];
  if (h.holders.length === 0) out.push('  no holder found');
  for (const x of h.holders) {
    out.push(
      x.offHeapBytes > 0
        ? `  ${bytes(x.offHeapBytes)} off-heap, ${bytes(x.heapBytes)} heap, ${count(x.objects)} buffers: ${x.path}`
        : `  ${bytes(x.heapBytes)} heap, ${count(x.objects)} objects: ${x.path}`,
    );
  }
  return out;
}

/** A holder as the table shows it: the binding, and the function (or module) whose scope keeps it. */
export function holderPlace(s: HolderSite): string {
  return `${s.owner} in ${s.function ? `${s.function} (${s.file}:${s.line})` : `the module scope of ${s.file}`}`;
}

/** The report as the readable table `heapwatch leaks` prints. */
export function formatLeakTable(report: LeakReport): string {
  const out: string[] = [`service ${report.service}, evaluated ${report.evaluatedAt}`, ''];
  if (report.leaks.length === 0) {
    out.push('no leaking allocation sites flagged');
  } else {
    out.push(
      table(
        ['SITE', 'GROWTH/H', 'GROWTH/INTERVAL', 'RETAINED', 'INSTANCES', 'INTERVALS', 'CONFIDENCE', 'ATTRIBUTION', 'SINCE'],
        report.leaks.map((l) => [
          `${l.function || '(anonymous)'} (${l.file}:${l.line})`,
          bytes(l.growthBytesPerHour),
          bytes(l.growthBytesPerInterval),
          bytes(l.retainedBytes),
          String(l.instances),
          String(l.intervals),
          l.confidence.toFixed(3),
          l.attribution,
          l.firstFlaggedAt,
        ]),
      ),
    );
    const top = report.leaks[0]!;
    if (top.allocatedIn) out.push('', `allocated in ${top.allocatedIn}`);
    if (top.siteKind === 'library') {
      out.push(
        'the site is library code: no application frame is on the allocating stack (data that arrives after an await',
        'runs in a later tick, and the sampler records only the synchronous stack); look for the code that awaits or keeps it',
      );
    }
    out.push('', `stack of ${top.function || '(anonymous)'}:`, ...top.stack.map((f) => `  ${f}`));
    if (top.heldBy) {
      const how = top.heldBy.match === 'stack' ? 'its code is on the stack' : 'no frame of the stack names a holder: the one nearest in size to the retained bytes';
      out.push('', `held by ${holderPlace(top.heldBy)} (${how}):`, `  ${top.heldBy.path}`);
    }
    if (report.leaks.some((l) => l.attribution !== 'precise')) {
      out.push(
        '',
        'imprecise: seen with V8 inlining on, so a small function inlined into its caller is charged to the caller;',
        "the collector has asked this service's agents for precise mode, and the site is refined when their profiles arrive.",
      );
    }
  }
  if (report.process.length > 0) {
    out.push(
      '',
      table(
        ['PROCESS', 'INSTANCE', 'GROWTH/H', 'TIME TO HEAP LIMIT', 'HELD BY (HOLDER, NOT ALLOCATION SITE)'],
        report.process.map((p) => [
          p.kind,
          p.instance,
          bytes(p.growthBytesPerHour),
          duration(p.timeToLimitSeconds),
          p.site ? holderPlace(p.site) : '-',
        ]),
      ),
    );
  }
  if (report.holders) out.push('', ...formatHolders(report.holders));
  if (report.jobs) out.push('', ...formatJobs(report.jobs));
  return out.join('\n') + '\n';
}
