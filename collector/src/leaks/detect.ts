/**
 * From stored points to per-key decisions: builds one series per instance
 * (per process lifetime: the ingester's instance key changes on restart, so a
 * restart starts a new series), decides each with the rule, then combines
 * instances. Pure: no I/O, no clock.
 */
import type { Step, Trend } from './alert';
import type { ProfilePoint, SitePoint } from '../store/store';
import { HOUR_MS } from '../units';
import { cycleMinima, decimate, DEFAULT_RULE, decideSeries, HISTORY_POINTS, sustainedOverHistory, type RuleOptions, type SeriesVerdict } from './rule';
import { median, theilSen } from './stats';

export interface DetectOptions {
  rule: RuleOptions;
  /**
   * Rule for a site series made of an instance's post-major-GC profiles
   * only; used once the window holds `minProfiles` of them.
   */
  postGcRule: RuleOptions;
  /** Rule for process gauges (heap used, external): GC timing, not Poisson sampling, is their noise. */
  processRule: RuleOptions;
  /** The same for agents that report no GCs, judged on a trailing minimum of heap used (gaugePoints). */
  processRuleWithoutGc: RuleOptions;
  /**
   * Rule for a site series of an instance that says nothing of its GCs:
   * no major GC count and no heap used (Pyroscope SDKs, OpenTelemetry; see
   * InstanceSeries.noGcInfo). No GC can be seen or guessed in it, so its
   * window only counts once it spans the rule's profilesWithoutGc: the
   * window holds that many (evaluateLeaks reads them, and the ones it
   * replays, for such services).
   */
  ruleWithoutGc: RuleOptions;
  /**
   * An instance whose newest profile is more than this many of its own
   * intervals behind the service's newest profile has stopped (restarted,
   * scaled down): it no longer counts.
   */
  staleProfiles: number;
  /** Share of the instances holding a site that must be rising (at least one). */
  minInstanceFraction: number;
  /**
   * Most new profiles per instance replayed through the rule in one
   * evaluation (each one is a step of the alert counters, see alert.ts).
   */
  maxReplayProfiles: number;
  /**
   * How far back a key about to be flagged is judged besides its window
   * (rule.ts sustainedOverHistory, alert.ts Step.sustained): the window of
   * the rule at the default 60 s profile interval, so that a shorter
   * interval, whose window covers less time, does not flag what the
   * default would not. 0 turns the check off.
   */
  historyMs: number;
  /** Most profiles per instance read for that history (HISTORY_POINTS of them are judged). */
  maxHistoryProfiles: number;
}

/**
 * The least rise of a process gauge (heap used, external) over its judged
 * window that can be a finding. A process's first minutes raise both
 * smoothly, with too little scatter for the noise checks to hold them back:
 * measured on the scenario corpus after major GCs, external by 0.1-0.6 MiB
 * and heap used by about 1 MiB (modules loaded on first use, compiled
 * code, the agent's own buffers). A leak worth a process finding passes it
 * in minutes: 1 MiB a minute over the rule's 12-profile window at the
 * default 60 s interval rises 12 MiB. See docs/detector.md#process-findings.
 */
export const PROCESS_MIN_RISE_BYTES = 2 * 1024 * 1024;

export const DEFAULT_DETECT: DetectOptions = {
  rule: DEFAULT_RULE,
  // Garbage-free points: no GC gating. As many profiles as the plain rule:
  // with 8, once the agent's GC assist made every profile a post-GC one, a
  // throughput ramp of ~8 profiles (ramp-then-hold) was judged while still
  // rising and flagged; 12 leave the plateau check a flat recent half.
  postGcRule: { ...DEFAULT_RULE, profilesWithoutGc: 0 },
  // A process gauge is judged on post-GC points (gaugePoints), where a
  // warm-up decelerates like a site's: the same plateau ratio, so a leak
  // under a still-settling warm-up waits for it to settle.
  processRule: { ...DEFAULT_RULE, poisson: false, minRiseBytes: PROCESS_MIN_RISE_BYTES },
  // A trailing minimum of heap used still carries garbage and lags: a leak
  // under a warm-up decelerates the total without stopping, so the plateau
  // ratio is looser there; the lower envelope decides.
  processRuleWithoutGc: { ...DEFAULT_RULE, poisson: false, minRecentSlopeRatio: 0.1, minRiseBytes: PROCESS_MIN_RISE_BYTES },
  // 240 profiles, the span the rule already trusts without a GC in it
  // (docs/detector.md#profiles-without-gc-information): with 120 such a
  // series was never decided.
  ruleWithoutGc: { ...DEFAULT_RULE, maxProfiles: DEFAULT_RULE.profilesWithoutGc },
  staleProfiles: 5,
  minInstanceFraction: 0.3,
  maxReplayProfiles: 20,
  historyMs: 2 * HOUR_MS,
  // 2 hours at a 5 s interval; at shorter intervals the history is shorter.
  maxHistoryProfiles: 1440,
};

export interface SiteDecision {
  siteId: string;
  positive: boolean;
  /** Steps at each new profile since the previous evaluation, oldest first (the last is `positive`'s). */
  steps: Step[];
  growthBytesPerInterval: number;
  growthBytesPerHour: number;
  retainedBytes: number;
  /** Instances whose series is rising; where none is, those still growing (a flagged site not yet cleared). */
  instancesRising: number;
  instancesSeen: number;
  intervals: number;
  confidence: number;
  /** See siteAttribution. */
  attribution: Attribution;
  /**
   * Not positive, but some instance's whole series rises when judged
   * without waiting for major GCs (the plain rule, no GC gating). Garbage
   * no GC has freed yet rises like that too, so this is never a finding:
   * it is the cheap signal on which the collector asks for precise mode,
   * whose GC assist makes the post-GC evidence that decides.
   */
  suspect: boolean;
}

/**
 * 'precise': the site kept rising over profiles the agent took with
 * inlining off (precise mode), so its bytes are charged to the function
 * that allocated them. 'imprecise': seen with inlining on, where a small
 * function inlined into its caller is charged to the caller: the site may
 * be that caller. A leak is reported at once either way; the collector then
 * asks the service's agents for precise mode, and the attribution is
 * refined when their profiles arrive.
 */
export type Attribution = 'precise' | 'imprecise';

/** Trailing precise profiles a rising series needs before its site counts as precisely attributed. */
export const PRECISE_MIN_PROFILES = 3;

export interface ProcessDecision {
  key: string;
  kind: 'heap' | 'external';
  instance: string;
  positive: boolean;
  steps: Step[];
  growthBytesPerHour: number;
  timeToLimitSeconds: number | null;
  /**
   * Not positive, but the gauge as the agent reports it, garbage included
   * (heap used through its trailing minimum), rises by the rule for agents
   * that report no GCs: never a finding, the signal on which the collector
   * asks for precise mode, whose GC assist makes the post-GC points that
   * decide. A worker whose V8 heap is flat while its Buffers pile up
   * off-heap may run no major GC for hours, and without them its
   * `external` gauge is never judged.
   */
  suspect: boolean;
}

export interface Detection {
  latestProfileMs: number;
  sites: Map<string, SiteDecision>;
  process: ProcessDecision[];
}

export interface InstanceSeries {
  instance: string;
  /** Whether the agent reports its major GC count (else `resets` are guessed from heap used). */
  reportsGc: boolean;
  /**
   * Neither a major GC count nor heap used in any profile: no GC can be
   * seen or guessed (a foreign agent, foreign-heap.ts). Its sites are
   * judged with ruleWithoutGc.
   */
  noGcInfo: boolean;
  /** Profiles newer than the previous evaluation's newest, capped. */
  replay: number;
  /** First profile after each major GC: from the agent's count where it reports one, else gcResets(). */
  resets: number[];
  /** Which profiles the agent took right after a major GC. */
  afterGc: boolean[];
  /** Which profiles the agent took with inlining off (precise mode). */
  inliningOff: boolean[];
  /** Indices of those profiles. */
  postGc: number[];
  times: number[];
  index: Map<number, number>;
  intervalMs: number;
  profiles: ProfilePoint[];
}

/**
 * The post-major-GC profiles (indices) decideSite judges a series cut after
 * its first `len` profiles on, or null when it judges the whole series.
 */
export function judgedPostGc(len: number, s: InstanceSeries, opts: DetectOptions): number[] | null {
  const from = Math.max(0, len - opts.rule.maxProfiles);
  const post: number[] = [];
  for (const i of s.postGc) if (i >= from && i < len) post.push(i);
  return post.length >= opts.postGcRule.minProfiles ? post : null;
}

/**
 * One site of one instance, cut after its first `len` profiles. Once the
 * window (the rule's last maxProfiles profiles) holds postGcRule.minProfiles
 * post-major-GC profiles, the series is those profiles alone: each is the
 * site's live size with no old-space garbage, so churn cannot masquerade as
 * growth. Before that (short intervals, rare GCs, agents that report no
 * GCs) the whole series is judged, gated on GC cycles, with post-GC profiles
 * as the cycles' floors where there are any.
 */
export function decideSite(ys: readonly number[], len: number, s: InstanceSeries, opts: DetectOptions): JudgedVerdict {
  if (s.noGcInfo) {
    const v = decideSeries(len === ys.length ? ys : ys.slice(0, len), opts.ruleWithoutGc, s.resets, s.afterGc);
    return { ...v, from: len - v.profiles };
  }
  const post = judgedPostGc(len, s, opts);
  if (post) {
    const v = decideSeries(post.map((i) => ys[i]!), opts.postGcRule);
    // Slope per post-GC point -> per profile, so growth per hour keeps its meaning.
    const span = post[post.length - 1]! - post[0]!;
    const slopePerProfile = span > 0 ? (v.slopePerProfile * (post.length - 1)) / span : v.slopePerProfile;
    const from = post[Math.max(0, post.length - v.profiles)]!;
    return { ...v, slopePerProfile, last: ys[len - 1]!, from: v.rising ? growingFrom(ys.slice(0, len), from, opts.rule) : from };
  }
  const v = decideSeries(len === ys.length ? ys : ys.slice(0, len), opts.rule, s.resets, s.afterGc);
  return { ...v, from: len - v.profiles };
}

/**
 * Where the growth of a series judged rising on its post-GC points began,
 * at the latest: that window's first point (`from`), or earlier, the start
 * of the window over which the whole series, garbage included, rises (the
 * suspect signal, judged without GC gating). In the default mode post-GC
 * profiles come once precise mode is on, which the growth itself turned on:
 * their window starts after the growth did. Only the alert's minimum growth
 * time uses it, and a flag still needs the rule's verdict at the time.
 */
function growingFrom(ys: readonly number[], from: number, rule: RuleOptions): number {
  const plain = decideSeries(ys, { ...rule, profilesWithoutGc: 0 });
  return plain.rising ? Math.min(from, ys.length - plain.profiles) : from;
}

/** A verdict and where its judged window starts: `from`, an index into the instance's profiles. */
export interface JudgedVerdict extends SeriesVerdict {
  from: number;
}

/**
 * A process gauge (heap used, external) of one instance, cut after its
 * first `len` profiles, judged where garbage cannot fake growth: on its
 * post-major-GC profiles once the window holds processRule.minProfiles of
 * them, else on the floor of each GC cycle (the post-GC profile, else the
 * cycle's minimum), and only once there are that many cycles. Between major
 * GCs heap used climbs with garbage and external with Buffers whose
 * wrappers are not yet collected, for minutes in a quiet main thread or a
 * large heap; a batch built and released climbs and falls. Agents that
 * report no GCs: a trailing minimum of heap used, external as is.
 * gaugePoints: the judged points (profile indices and values), for charts;
 * decideGauge: the verdict, whose slope is per profile and comes from the
 * points' Theil-Sen line whatever the verdict (a flagged finding keeps its
 * growth figure). With fewer than processRule.minProfiles points there is
 * no verdict (too-short).
 */
export function gaugePoints(kind: 'heap' | 'external', values: readonly number[], len: number, s: InstanceSeries, opts: DetectOptions): { idx: number[]; ys: number[] } {
  const rule = opts.processRule;
  if (!s.reportsGc) {
    const { from, ys } = reportedWindow(kind, values, len, opts);
    return { idx: ys.map((_, i) => from + i), ys };
  }
  const from = Math.max(0, len - rule.maxProfiles);
  const post = s.postGc.filter((i) => i >= from && i < len);
  if (post.length >= rule.minProfiles) return { idx: post, ys: post.map((i) => values[i]!) };
  const idx = s.resets.filter((i) => i >= from && i < len);
  return { idx, ys: cycleMinima(len === values.length ? values : values.slice(0, len), idx, s.afterGc) };
}

function decideGauge(kind: 'heap' | 'external', values: readonly number[], len: number, s: InstanceSeries, opts: DetectOptions): JudgedVerdict {
  const { idx, ys } = gaugePoints(kind, values, len, s, opts);
  // Without a reported GC count, only GCs guessed from heap used dropping
  // (gcResets) say the window is more than garbage piling up: a heapwatch
  // agent before its first major GC (a process warming up, its heap used
  // climbing for tens of seconds) reports none either.
  const first = idx[0] ?? 0;
  const v = s.reportsGc
    ? decideSeries(ys, opts.processRule)
    : decideSeries(ys, opts.processRuleWithoutGc, s.resets.filter((i) => i >= first && i < len).map((i) => i - first));
  const span = idx.length > 1 ? idx[idx.length - 1]! - idx[0]! : 0;
  const slope = span > 0 ? (theilSen(ys).slope * (idx.length - 1)) / span : 0;
  const from = idx.length ? idx[Math.max(0, idx.length - v.profiles)]! : Math.max(0, len - 1);
  const last = ys.length ? ys[ys.length - 1]! : (values[len - 1] ?? 0);
  if (!v.rising || !s.reportsGc) return { ...v, slopePerProfile: slope, last, from };
  // As for sites (growingFrom): the gauge as the agent reports it, garbage included.
  const whole = reportedWindow(kind, values, len, opts);
  return { ...v, slopePerProfile: slope, last, from: whole.from + growingFrom(whole.ys, from - whole.from, opts.processRuleWithoutGc) };
}

/**
 * A gauge's window (the process rule's last maxProfiles of its first `len`
 * profiles) as the agent reports it, garbage included: heap used through its
 * trailing minimum, external as is. `from`: the window's first profile.
 */
function reportedWindow(kind: 'heap' | 'external', values: readonly number[], len: number, opts: DetectOptions): { from: number; ys: number[] } {
  const from = Math.max(0, len - opts.processRule.maxProfiles);
  const raw = values.slice(from, len);
  return { from, ys: kind === 'heap' ? trailingMin(raw, HEAP_FLOOR_PROFILES) : raw };
}

/** ProcessDecision.suspect: the gauge's window as reported rises. */
function rawGaugeRising(kind: 'heap' | 'external', values: readonly number[], opts: DetectOptions): boolean {
  return decideSeries(reportedWindow(kind, values, values.length, opts).ys, opts.processRuleWithoutGc).rising;
}

/** Profiles over which heap used's floor is taken (see trailingMin). */
export const HEAP_FLOOR_PROFILES = 6;

/** Minimum of each value and the k-1 before it. */
export function trailingMin(ys: readonly number[], k: number): number[] {
  return ys.map((_, i) => Math.min(...ys.slice(Math.max(0, i - k + 1), i + 1)));
}

/**
 * A drop of heap used by this fraction between two profiles is taken as a
 * major GC. Scavenges also lower heap used, by up to ~20 % in the small heaps
 * measured here (a few MB of young garbage in a 6-15 MB heap).
 */
export const GC_DROP_FRACTION = 0.25;

/** Indices of profiles whose heap used fell by GC_DROP_FRACTION or more since the previous one. */
export function gcResets(heapUsed: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < heapUsed.length; i++) if (heapUsed[i]! < (1 - GC_DROP_FRACTION) * heapUsed[i - 1]!) out.push(i);
  return out;
}

/** Indices of profiles whose reported major GC count rose since the previous one: each starts a GC cycle. */
export function majorGcResets(majorGcs: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < majorGcs.length; i++) if (majorGcs[i]! > majorGcs[i - 1]!) out.push(i);
  return out;
}

/**
 * Whether a site's series kept rising over its trailing run of profiles taken
 * with inlining off: at least PRECISE_MIN_PROFILES of them, over which it
 * grew by at least half of what its trend predicts. A caller that was only
 * charged for an inlined callee's allocations stops growing once inlining
 * is off (the callee's new allocations go to the callee), so it stays
 * 'imprecise' until it clears; the function really allocating keeps rising.
 */
export function risingWhilePrecise(ys: readonly number[], inliningOff: readonly boolean[], slopePerProfile: number): boolean {
  let run = 0;
  while (run < ys.length && inliningOff[ys.length - 1 - run]) run++;
  if (run < PRECISE_MIN_PROFILES) return false;
  const grew = ys[ys.length - 1]! - ys[ys.length - run]!;
  return grew > 0 && grew >= 0.5 * slopePerProfile * (run - 1);
}

/** One verdict as an alert step. */
export function trendOf(v: SeriesVerdict): Trend {
  return v.rising ? 'rising' : v.flat ? 'flat' : 'growing';
}

/** One instance's verdict at one profile, with what the alert's minimum growth time needs (alert.ts Step). */
interface InstanceStep {
  v: SeriesVerdict;
  atMs: number;
  sinceMs: number;
  timeToLimitMs: number | null;
}

/**
 * The step of an instance's verdict `v` on its first `len` profiles: the
 * profile's time, the time of the judged window's first profile, and when
 * the instance's heap would reach its limit if it kept growing at the
 * verdict's slope (`heapShare`: the share of that slope the heap grows by; 1
 * for a site, whose bytes are heap, or the heap itself; 0 for off-heap).
 */
function instanceStep(v: JudgedVerdict, len: number, s: InstanceSeries, heapShare: number): InstanceStep {
  const p = s.profiles[len - 1]!;
  const perMs = s.intervalMs > 0 ? (heapShare * v.slopePerProfile) / s.intervalMs : 0;
  const headroom = p.heapSizeLimitBytes - p.heapUsedBytes;
  return {
    v,
    atMs: s.times[len - 1]!,
    sinceMs: s.times[Math.min(len - 1, Math.max(0, v.from))]!,
    timeToLimitMs: perMs > 0 && p.heapSizeLimitBytes > 0 ? Math.max(0, headroom) / perMs : null,
  };
}

/**
 * Combines per-instance steps aligned on their last profile: rising where
 * enough instances rise (minFraction), flat where every instance is flat,
 * growing otherwise. A rising step's growth began at the earliest judged
 * window of its rising instances, and reaches a heap limit at the soonest.
 */
function combineSteps(perInstance: readonly InstanceStep[][], minFraction: number): Step[] {
  const steps = Math.max(0, ...perInstance.map((v) => v.length));
  const out: Step[] = [];
  for (let back = steps - 1; back >= 0; back--) {
    let seen = 0;
    let flat = 0;
    let atMs = 0;
    const rising: InstanceStep[] = [];
    for (const v of perInstance) {
      const x = v[v.length - 1 - back];
      if (!x) continue;
      seen++;
      atMs = Math.max(atMs, x.atMs);
      if (x.v.rising) rising.push(x);
      else if (x.v.flat) flat++;
    }
    const trend: Trend = rising.length >= 1 && rising.length >= Math.ceil(minFraction * seen) ? 'rising' : flat === seen ? 'flat' : 'growing';
    const limits = rising.flatMap((x) => (x.timeToLimitMs === null ? [] : [x.timeToLimitMs]));
    out.push({
      trend,
      atMs,
      sinceMs: rising.length ? Math.min(...rising.map((x) => x.sinceMs)) : atMs,
      timeToLimitMs: limits.length ? Math.min(...limits) : null,
    });
  }
  return out;
}

/**
 * One series per live instance: its profiles oldest first, where its GC
 * cycles start, which profiles follow a major GC. Instances that stopped
 * (staleProfiles behind the newest, counting `silentMs`: how long, on the
 * collector's clock, no new profile has arrived for the service, so a
 * service that stopped altogether drops out too) are left out.
 */
export function instanceSeries(
  profiles: readonly ProfilePoint[],
  opts: DetectOptions = DEFAULT_DETECT,
  prevLatestProfileMs = 0,
  silentMs = 0,
): Map<string, InstanceSeries> {
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
    if (intervalMs > 0 && latestProfileMs - last + silentMs > opts.staleProfiles * intervalMs) continue;
    const fresh = times.filter((t) => t > prevLatestProfileMs).length;
    // An agent that reports GCs says exactly where each cycle starts;
    // otherwise a large drop of heap used is the best guess.
    const reported = list.some((p) => p.majorGcs > 0);
    const noGcInfo = !reported && list.every((p) => p.heapUsedBytes === 0);
    const resets = reported ? majorGcResets(list.map((p) => p.majorGcs)) : gcResets(list.map((p) => p.heapUsedBytes));
    const afterGc = list.map((p) => p.afterMajorGc);
    const postGc = afterGc.flatMap((x, i) => (x ? [i] : []));
    const inliningOff = list.map((p) => p.inliningDisabled === true);
    series.set(instance, { instance, reportsGc: reported, noGcInfo, replay: Math.max(1, Math.min(fresh, opts.maxReplayProfiles)), resets, afterGc, inliningOff, postGc, times, index: new Map(times.map((t, i) => [t, i])), intervalMs, profiles: list });
  }
  return series;
}

/**
 * Whether evaluateLeaks should read `ruleWithoutGc.maxProfiles` (and
 * `maxReplayProfiles` more) profiles per instance rather than the rule's:
 * some instance without GC information has filled the rule's window
 * (`profiles`: what it read with that window).
 */
export function needsLongerWindow(profiles: readonly ProfilePoint[], opts: DetectOptions = DEFAULT_DETECT): boolean {
  if (opts.ruleWithoutGc.maxProfiles <= opts.rule.maxProfiles) return false;
  const counts = new Map<string, number>();
  const informed = new Set<string>();
  for (const p of profiles) {
    counts.set(p.instance, (counts.get(p.instance) ?? 0) + 1);
    if (p.majorGcs > 0 || p.heapUsedBytes > 0) informed.add(p.instance);
  }
  return [...counts].some(([instance, n]) => n >= opts.rule.maxProfiles && !informed.has(instance));
}

/** Each site's in-use bytes per instance, one value per profile of the instance's series (0 where the sampler saw nothing alive). */
export function siteValues(points: readonly SitePoint[], series: ReadonlyMap<string, InstanceSeries>): Map<string, Map<string, number[]>> {
  return finish(siteValueSteps(points, series));
}

/** Runs a generator of work to its end, without pausing. */
function finish<T>(steps: Generator<void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** siteValues' work, yielding every 4,096 points (a service's window can hold millions). */
function* siteValueSteps(points: readonly SitePoint[], series: ReadonlyMap<string, InstanceSeries>): Generator<void, Map<string, Map<string, number[]>>> {
  const values = new Map<string, Map<string, number[]>>();
  let n = 0;
  for (const p of points) {
    if ((++n & 4095) === 0) yield;
    const s = series.get(p.instance);
    const i = s?.index.get(p.timeMs);
    if (!s || i === undefined) continue; // no commit marker, or outside the window
    let perInstance = values.get(p.siteId);
    if (!perInstance) values.set(p.siteId, (perInstance = new Map()));
    let ys = perInstance.get(p.instance);
    if (!ys) perInstance.set(p.instance, (ys = new Array<number>(s.times.length).fill(0)));
    ys[i] = (ys[i] ?? 0) + p.bytes;
  }
  return values;
}

/**
 * `prevLatestProfileMs`: the newest profile the previous evaluation saw;
 * profiles after it are replayed one by one (at most maxReplayProfiles).
 * `silentMs`: see instanceSeries.
 */
export function detect(
  profiles: readonly ProfilePoint[],
  points: readonly SitePoint[],
  opts: DetectOptions = DEFAULT_DETECT,
  prevLatestProfileMs = 0,
  silentMs = 0,
): Detection {
  return finish(detection(profiles, points, opts, prevLatestProfileMs, silentMs));
}

/**
 * detect, giving the event loop a turn whenever it has run for `sliceMs`:
 * a service of many instances and sites takes seconds to judge (2-3 s of
 * one core for 2,000 instances of 5,000-stack profiles, measured by
 * bench/ingest-load.mjs), and the collector's ingest, health and API
 * answers must not wait for it.
 */
export async function detectInSlices(
  profiles: readonly ProfilePoint[],
  points: readonly SitePoint[],
  opts: DetectOptions = DEFAULT_DETECT,
  prevLatestProfileMs = 0,
  silentMs = 0,
  sliceMs = 10,
): Promise<Detection> {
  const steps = detection(profiles, points, opts, prevLatestProfileMs, silentMs);
  let sliceStart = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

/** detect's work, yielding after each site and each instance's process series. */
function* detection(
  profiles: readonly ProfilePoint[],
  points: readonly SitePoint[],
  opts: DetectOptions,
  prevLatestProfileMs: number,
  silentMs: number,
): Generator<void, Detection> {
  const latestProfileMs = profiles.reduce((m, p) => Math.max(m, p.timeMs), 0);
  const series = instanceSeries(profiles, opts, prevLatestProfileMs, silentMs);
  const values = yield* siteValueSteps(points, series);

  const sites = new Map<string, SiteDecision>();
  for (const [siteId, perInstance] of values) {
    const verdicts: Array<{ v: SeriesVerdict; s: InstanceSeries; ys: number[] }> = [];
    const stepVerdicts: InstanceStep[][] = [];
    for (const [instance, ys] of perInstance) {
      const s = series.get(instance)!;
      const replayed: InstanceStep[] = [];
      for (let j = Math.min(s.replay, ys.length) - 1; j >= 0; j--) replayed.push(instanceStep(decideSite(ys, ys.length - j, s, opts), ys.length - j, s, 1));
      stepVerdicts.push(replayed);
      verdicts.push({ v: replayed[replayed.length - 1]!.v, s, ys });
    }
    const rising = verdicts.filter((x) => x.v.rising);
    const seen = verdicts.length;
    const positive = rising.length >= 1 && rising.length >= Math.ceil(opts.minInstanceFraction * seen);
    // Growth and confidence from the rising instances; while a flagged site
    // dips, from those still growing (not 0 instances at confidence 0).
    const growing = verdicts.filter((x) => !x.v.flat);
    const backing = rising.length ? rising : growing;
    const basis = backing.length ? backing : verdicts;
    const perHour = (x: { v: SeriesVerdict; s: InstanceSeries }): number =>
      x.s.intervalMs > 0 ? (x.v.slopePerProfile * HOUR_MS) / x.s.intervalMs : 0;
    const steps = combineSteps(stepVerdicts, opts.minInstanceFraction);
    sites.set(siteId, {
      siteId,
      positive,
      steps,
      growthBytesPerInterval: basis.reduce((a, x) => a + x.v.slopePerProfile, 0),
      growthBytesPerHour: basis.reduce((a, x) => a + perHour(x), 0),
      retainedBytes: verdicts.reduce((a, x) => a + x.v.last, 0),
      instancesRising: backing.length,
      instancesSeen: seen,
      intervals: Math.max(0, ...basis.map((x) => x.v.profiles - 1)),
      confidence: backing.length ? (1 - median(backing.map((x) => x.v.pRising))) * (backing.length / seen) : 0,
      attribution: basis.every((x) => risingWhilePrecise(x.ys, x.s.inliningOff, x.v.slopePerProfile)) ? 'precise' : 'imprecise',
      suspect: !positive && verdicts.some((x) => decideSeries(x.ys, opts.rule).rising),
    });
    yield;
  }

  const process: ProcessDecision[] = [];
  for (const s of series.values()) {
    const perHour = (slope: number): number => (s.intervalMs > 0 ? (slope * HOUR_MS) / s.intervalMs : 0);
    const judge = (kind: 'heap' | 'external', values: readonly number[]): { steps: Step[]; now: SeriesVerdict; suspect: boolean } => {
      const steps: InstanceStep[] = [];
      for (let j = Math.min(s.replay, values.length) - 1; j >= 0; j--) {
        const len = values.length - j;
        steps.push(instanceStep(decideGauge(kind, values, len, s, opts), len, s, kind === 'heap' ? 1 : 0));
      }
      const now = steps[steps.length - 1]!.v;
      return { steps: combineSteps([steps], 1), now, suspect: !now.rising && !s.noGcInfo && rawGaugeRising(kind, values, opts) };
    };
    const heap = judge('heap', s.profiles.map((p) => p.heapUsedBytes));
    const limit = s.profiles[s.profiles.length - 1]!.heapSizeLimitBytes;
    const slopePerSec = s.intervalMs > 0 ? (heap.now.slopePerProfile * 1000) / s.intervalMs : 0;
    process.push({
      key: `heap:${s.instance}`,
      kind: 'heap',
      instance: s.instance,
      positive: heap.now.rising,
      suspect: heap.suspect,
      steps: heap.steps,
      growthBytesPerHour: perHour(heap.now.slopePerProfile),
      // Reported only while flagged (index.ts); "where the trend allows" = a positive slope.
      timeToLimitSeconds: slopePerSec > 0 && limit > heap.now.last ? (limit - heap.now.last) / slopePerSec : null,
    });
    // `external` already includes arrayBuffers (Node's process.memoryUsage docs).
    const ext = judge('external', s.profiles.map((p) => p.externalBytes));
    process.push({
      key: `external:${s.instance}`,
      kind: 'external',
      instance: s.instance,
      positive: ext.now.rising,
      suspect: ext.suspect,
      steps: ext.steps,
      growthBytesPerHour: perHour(ext.now.slopePerProfile),
      timeToLimitSeconds: null,
    });
    yield;
  }
  return { latestProfileMs, sites, process };
}

/**
 * The profiles a key's history is judged on (sustainedOver), per instance:
 * of the profiles `history` holds (profilePoints over historyMs), the
 * post-major-GC ones where there are postGcRule.minProfiles of them (the
 * same garbage-free points the window is judged on), else all; at most
 * HISTORY_POINTS, evenly spaced, the newest always in.
 */
export function historyWindow(history: readonly ProfilePoint[], opts: DetectOptions = DEFAULT_DETECT): ProfilePoint[] {
  const byInstance = new Map<string, ProfilePoint[]>();
  for (const p of history) {
    let list = byInstance.get(p.instance);
    if (!list) byInstance.set(p.instance, (list = []));
    list.push(p);
  }
  const out: ProfilePoint[] = [];
  for (const list of byInstance.values()) {
    list.sort((a, b) => a.timeMs - b.timeMs);
    const post = list.filter((p) => p.afterMajorGc);
    const judged = post.length >= opts.postGcRule.minProfiles ? post : list;
    for (const i of decimate(judged.length, HISTORY_POINTS)) out.push(judged[i]!);
  }
  return out;
}

/**
 * For each of `keys` ('site:<id>', 'heap:<instance>', 'external:<instance>')
 * that has a history longer than its window in `window` (historyWindow) and
 * `points` (sitePoints over that window): whether its growth is sustained
 * over that history, on at least one instance (rule.ts
 * sustainedOverHistory). Keys without such a history are left out.
 */
export function sustainedOver(keys: Iterable<string>, window: readonly ProfilePoint[], points: readonly SitePoint[], opts: DetectOptions = DEFAULT_DETECT): Map<string, boolean> {
  const series = new Map<string, ProfilePoint[]>();
  for (const p of window) {
    let list = series.get(p.instance);
    if (!list) series.set(p.instance, (list = []));
    list.push(p);
  }
  const index = new Map<string, Map<number, number>>();
  for (const [instance, list] of series) index.set(instance, new Map(list.map((p, i) => [p.timeMs, i])));
  const siteYs = new Map<string, Map<string, number[]>>();
  for (const p of points) {
    const i = index.get(p.instance)?.get(p.timeMs);
    if (i === undefined) continue;
    let perInstance = siteYs.get(p.siteId);
    if (!perInstance) siteYs.set(p.siteId, (perInstance = new Map()));
    let ys = perInstance.get(p.instance);
    if (!ys) perInstance.set(p.instance, (ys = new Array<number>(series.get(p.instance)!.length).fill(0)));
    ys[i] = (ys[i] ?? 0) + p.bytes;
  }
  const out = new Map<string, boolean>();
  for (const key of keys) {
    const colon = key.indexOf(':');
    const kind = key.slice(0, colon);
    const rest = key.slice(colon + 1);
    if (kind === 'site') {
      const perInstance = siteYs.get(rest);
      if (perInstance) out.set(key, [...perInstance.values()].some((ys) => sustainedOverHistory(ys, opts.postGcRule)));
    } else if (kind === 'heap' || kind === 'external') {
      const list = series.get(rest);
      // Gauges are judged across major GCs only: a history without post-GC points is not judged.
      if (list && list.every((p) => p.afterMajorGc)) {
        const ys = list.map((p) => (kind === 'heap' ? p.heapUsedBytes : p.externalBytes));
        out.set(key, sustainedOverHistory(ys, opts.processRule));
      }
    }
  }
  return out;
}
