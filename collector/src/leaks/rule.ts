/**
 * The decision rule: is one series (one site of one process, or one
 * process's heap) rising? Pure; see test/leaks/rule.test.ts. How it
 * decides, why each check exists and what it was measured against:
 * docs/detector.md.
 *
 * A series is the last `maxProfiles` consecutive profiles of ONE process (a
 * restart starts a new series), indexed by profile, so thresholds are in
 * profiles and hold at any profile interval. It is rising when all four
 * checks pass:
 *  1. trend: Mann-Kendall with the Hamed-Rao autocorrelation correction
 *     (a long-lived object is in many consecutive profiles), p < `alpha`;
 *  2. beyond noise: the Theil-Sen rise exceeds `noiseZ` standard errors of
 *     Poisson sampling and residual scatter, spans `minRiseSamples` samples
 *     (a process gauge: `minRiseBytes`), and is not mostly one jump (a lazy
 *     load is a step; a leak grows job by job);
 *  3. still rising: both halves of the window rise, the recent one at least
 *     `minRecentSlopeRatio` as fast, and the newest profile is above the
 *     last few (a cache that warms up and levels off is not a leak);
 *  4. the floor rises: the minima of blocks (or of GC cycles) rise too (a
 *     buffer flushed back to its floor is not a leak).
 *
 * The V8 sampler counts objects no GC has freed yet, so a window shorter
 * than `profilesWithoutGc` must hold `minGcCycles` major GCs, and its floor
 * is taken per GC cycle (detect.ts picks post-GC profiles where it can).
 * Noise is estimated from the series itself, not from the sampling
 * interval, which the store does not hold.
 */
import { blockMinima, mannKendall, olsSlope, robustSigma, sampleQuantum, theilSen } from './stats';

export interface RuleOptions {
  /** Fewest profiles in a series before it can be called rising. */
  minProfiles: number;
  /** Most recent profiles per series considered. */
  maxProfiles: number;
  /** One-sided Mann-Kendall (Hamed-Rao) significance on the whole window. */
  alpha: number;
  /** Significance each half of the window must reach on its own. */
  halfAlpha: number;
  /** Standard errors the rise must exceed (Poisson and residual noise). */
  noiseZ: number;
  /**
   * The rise must also span at least this many samples (one sample =
   * stats.sampleQuantum): a floor on what can be flagged at all.
   */
  minRiseSamples: number;
  /** Recent-half slope must be at least this fraction of the early half's. */
  minRecentSlopeRatio: number;
  /** Growth in samples the window's slope must predict over the span in which the newest profile must have risen. */
  recentRiseSamples: number;
  /** Number of blocks whose minima form the lower envelope. */
  envelopeBlocks: number;
  /**
   * Whether the series is made of whole sampler samples (a site) and Poisson
   * noise applies, or is a process gauge (heap used) whose noise is GC timing.
   */
  poisson: boolean;
  /**
   * Profiles a window must span to be trusted when no major GC shows in it
   * (see `gcResets` of decideSeries). 0 disables the check.
   */
  profilesWithoutGc: number;
  /** Major GCs a window shorter than profilesWithoutGc must contain. */
  minGcCycles: number;
  /**
   * Bytes the window's rise (its Theil-Sen line, start to end) must reach:
   * a floor on growth that matters, for process gauges, whose warm-up
   * rises smoothly by a few hundred KiB with little scatter to judge it
   * against. 0 for sites, whose floor is minRiseSamples.
   */
  minRiseBytes: number;
}

/**
 * A part of the window (each half, the lower envelope) must rise beyond
 * noiseZ / PART_NOISE_DIVISOR standard errors: it holds fewer profiles than
 * the whole window, whose rise is held to the full noiseZ.
 */
const PART_NOISE_DIVISOR = 1.5;

/** The lower envelope lags the series, so its rise must span this share of minRiseSamples. */
const ENVELOPE_RISE_SHARE = 0.5;

/** The pre-filter compares the mean of the window's last 1/PREFILTER_PARTS with its first. */
const PREFILTER_PARTS = 4;

export const DEFAULT_RULE: RuleOptions = {
  minProfiles: 12,
  maxProfiles: 120,
  alpha: 0.01,
  halfAlpha: 0.1,
  noiseZ: 3,
  // 8: a site that rises from nothing must reach about 3 Poisson standard
  // deviations (8 / sqrt(8) = 2.8). With 4, a node timer list that grew
  // from 0 to 4 samples in its first 20 profiles and then held (ramp-then-hold,
  // every profile post-GC) passed every other check: a quantized step has no
  // residual scatter to measure noise by.
  minRiseSamples: 8,
  minRecentSlopeRatio: 0.5,
  recentRiseSamples: 3,
  envelopeBlocks: 4,
  poisson: true,
  profilesWithoutGc: 240,
  minGcCycles: 2,
  minRiseBytes: 0,
};

/**
 * The floor of each GC cycle from the first reset on (the part before it is
 * still filling with garbage): the cycle's first value where the agent says
 * it was taken right after the major GC (`exact`), else the cycle's minimum.
 */
export function cycleMinima(ys: readonly number[], resets: readonly number[], exact?: readonly boolean[]): number[] {
  const out: number[] = [];
  for (let k = 0; k < resets.length; k++) {
    const start = resets[k]!;
    if (exact?.[start]) {
      out.push(ys[start]!);
      continue;
    }
    const end = k + 1 < resets.length ? resets[k + 1]! : ys.length;
    let m = Infinity;
    for (let i = start; i < end; i++) m = Math.min(m, ys[i]!);
    out.push(m);
  }
  return out;
}

/**
 * How far the largest rise between consecutive profiles stands out of the
 * series' own profile-to-profile scatter (`z` robust sigmas of the
 * increments): a lazy load or a cache filled at once is one jump above
 * increments that are otherwise ~0; a churning site's increments are all
 * large, so none of them stands out.
 */
function largestStep(ys: readonly number[], z: number): number {
  const d: number[] = [];
  for (let i = 1; i < ys.length; i++) d.push(ys[i]! - ys[i - 1]!);
  return Math.max(0, Math.max(...d) - z * robustSigma(d));
}

export interface SeriesVerdict {
  rising: boolean;
  /** First failed check, or 'rising'. */
  reason: 'too-short' | 'no-gc-cycle' | 'not-rising' | 'no-trend' | 'within-noise' | 'too-small' | 'step' | 'plateau' | 'floor-flat' | 'rising';
  /** Theil-Sen slope in bytes per profile over the window. */
  slopePerProfile: number;
  /** One-sided Mann-Kendall (Hamed-Rao) p-value on the window. */
  pRising: number;
  /** Profiles in the window. */
  profiles: number;
  /** Latest value (bytes). */
  last: number;
  /**
   * Not rising and stopped growing: the recent half of the window does not
   * rise (see stillGrowing). What clears a flagged key (alert.ts); a series
   * too short to judge is neither rising nor flat.
   */
  flat: boolean;
}

/**
 * Whether a window still grows at its newest profiles: over the last m
 * profiles (the span in which the window's slope predicts 4 samples, 6 to
 * half the window), the Theil-Sen rise is positive, at least one sample,
 * and at least a third of what the window's slope predicts. A leak keeps
 * its pace; a cache that reached its bound, a released batch or a finished
 * load stopped, which a rising rule judging the whole window sees only
 * later. Looser than the rising checks on purpose: a flagged leak whose
 * evidence dips for a few profiles still grows. See docs/detector.md#alerts.
 */
export function stillGrowing(ys: readonly number[], quantum: number, windowSlope: number = theilSen(ys).slope): boolean {
  const h = ys.length >> 1;
  if (h < 6) return true;
  const slope = Math.max(0, windowSlope);
  const m = quantum > 0 && slope > 0 ? Math.min(h, Math.max(6, Math.ceil((4 * quantum) / slope))) : h;
  const rise = theilSen(ys.slice(ys.length - m)).slope * (m - 1);
  return rise > 0 && rise >= quantum && rise >= (slope * (m - 1)) / 3;
}

/**
 * `gcResets`: indices into `all` of the first profile after each major GC
 * (from the agent's major GC count where it reports one, else guessed from
 * heap used dropping; see detect.ts). `afterGc`, aligned with `all`: which
 * profiles the agent took right after a major GC; such a profile is the
 * exact floor of its GC cycle. The agent's native sampler counts sampled
 * objects no GC has freed yet, so between major GCs every churning site
 * (an LRU evicting, a TTL cache expiring, a flushed buffer) climbs with
 * uncollected garbage and falls back at the next one: measured on the
 * scenario corpus at 500 ms profiles, every such site looked like a leak for
 * the first 20-40 profiles. So a window shorter than `profilesWithoutGc`
 * must contain `minGcCycles` major GCs, and its lower envelope is taken from
 * the GC cycles (the value after each GC) rather than from equal blocks.
 * Omit `gcResets` to skip this (pure series, unit tests).
 */
export function decideSeries(
  all: readonly number[],
  opts: RuleOptions = DEFAULT_RULE,
  gcResets?: readonly number[],
  afterGc?: readonly boolean[],
): SeriesVerdict {
  const v = judge(all, opts, gcResets, afterGc);
  if (v.reason === 'too-short' || v.reason === 'no-gc-cycle') return v;
  // Its newest quarter is no higher than its oldest: flat, and the cheap
  // answer for most sites of a healthy worker.
  if (v.reason === 'not-rising') return { ...v, flat: true };
  const ys = all.length > opts.maxProfiles ? all.slice(all.length - opts.maxProfiles) : all;
  // The verdict's slope is the window's Theil-Sen slope (judge computed it: O(n^2), the detector's largest cost).
  return v.rising ? v : { ...v, flat: !stillGrowing(ys, opts.poisson ? sampleQuantum(ys) : 0, v.slopePerProfile) };
}

function judge(
  all: readonly number[],
  opts: RuleOptions,
  gcResets?: readonly number[],
  afterGc?: readonly boolean[],
): SeriesVerdict {
  const ys = all.length > opts.maxProfiles ? all.slice(all.length - opts.maxProfiles) : all;
  const n = ys.length;
  const last = n ? ys[n - 1]! : 0;
  const base = { slopePerProfile: 0, pRising: 1, profiles: n, last, flat: false };
  if (n < opts.minProfiles) return { ...base, rising: false, reason: 'too-short' };
  // Profiles after a major GC inside the window, as window indices.
  const windowStart = all.length - n;
  const resets = gcResets ? gcResets.filter((i) => i > windowStart && i < all.length).map((i) => i - windowStart) : [];
  const gcGated = gcResets !== undefined && opts.profilesWithoutGc > 0 && n < opts.profilesWithoutGc;
  if (gcGated && resets.length < opts.minGcCycles) return { ...base, rising: false, reason: 'no-gc-cycle' };

  // Cheap pre-filter: most sites of a healthy worker are flat or falling.
  const q = Math.max(1, Math.floor(n / PREFILTER_PARTS));
  const mean = (a: readonly number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
  if (mean(ys.slice(n - q)) <= mean(ys.slice(0, q))) return { ...base, rising: false, reason: 'not-rising' };

  const line = theilSen(ys);
  const mk = mannKendall(ys);
  const verdict = { ...base, slopePerProfile: line.slope, pRising: mk.pRising };
  if (line.slope <= 0 || mk.pRising >= opts.alpha) return { ...verdict, rising: false, reason: 'no-trend' };

  // 2. Beyond noise.
  const from = line.intercept;
  const to = line.intercept + line.slope * (n - 1);
  const rise = to - from;
  const residualSigma = robustSigma(ys.map((y, i) => y - (line.intercept + line.slope * i)));
  const quantum = opts.poisson ? sampleQuantum(ys) : 0;
  if (rise < opts.noiseZ * residualSigma || rise < opts.minRiseSamples * quantum) {
    return { ...verdict, rising: false, reason: 'within-noise' };
  }
  if (rise < opts.minRiseBytes) return { ...verdict, rising: false, reason: 'too-small' };
  if (opts.poisson && rise - largestStep(ys, opts.noiseZ) < opts.minRiseSamples * quantum) {
    return { ...verdict, rising: false, reason: 'step' };
  }

  // 3. Plateau: both halves rise, the recent one not much slower.
  const h = n >> 1;
  const early = ys.slice(0, h);
  const recent = ys.slice(n - h);
  // Least squares here, on purpose: Theil-Sen ignores a one-off step inside
  // a half (most pairs sit on one side of it), which is exactly the growth
  // this comparison must see.
  const earlySlope = olsSlope(early);
  const recentSlope = olsSlope(recent);
  const halfRiseOk = (half: readonly number[], slope: number): boolean =>
    slope * (half.length - 1) >= (opts.noiseZ / PART_NOISE_DIVISOR) * robustSigma(half.map((y, i) => y - slope * i));
  if (
    recentSlope <= 0 ||
    !halfRiseOk(early, earlySlope) ||
    !halfRiseOk(recent, recentSlope) ||
    mannKendall(early).pRising >= opts.halfAlpha ||
    mannKendall(recent).pRising >= opts.halfAlpha ||
    recentSlope < opts.minRecentSlopeRatio * Math.max(earlySlope, 0)
  ) {
    return { ...verdict, rising: false, reason: 'plateau' };
  }
  // ... and still rising now: over the last k profiles, where the window's
  // slope predicts `recentRiseSamples` samples of growth, the site grew.
  // A start-up step that has settled (a lazy load, a cache filled before
  // its first expiry) passes the halves while the step sits in the recent
  // one, but has been flat since; a leak's newest profile is its highest.
  if (opts.poisson && quantum > 0) {
    const k = Math.min(h, Math.max(2, Math.ceil((opts.recentRiseSamples * quantum) / line.slope)));
    if (ys[n - 1]! <= ys[n - 1 - k]!) return { ...verdict, rising: false, reason: 'plateau' };
  }

  // 4. Lower envelope: the minima of equal blocks, or, in a short window
  // gated on GCs, the minima of the GC cycles (the value right after a
  // major GC is the live size without uncollected garbage).
  const exact = afterGc ? afterGc.slice(windowStart, windowStart + n) : undefined;
  const minima = gcGated ? cycleMinima(ys, resets, exact) : blockMinima(ys, opts.envelopeBlocks);
  const envelope = theilSen(minima);
  const firstMin = minima[0] ?? 0;
  const lastMin = minima[minima.length - 1] ?? 0;
  const envelopeOk =
    envelope.slope > 0 &&
    lastMin > firstMin &&
    (minima.length < 3 || lastMin > minima[1]!) &&
    lastMin - firstMin >= (opts.noiseZ / PART_NOISE_DIVISOR) * residualSigma &&
    lastMin - firstMin >= opts.minRiseSamples * ENVELOPE_RISE_SHARE * quantum;
  if (!envelopeOk) return { ...verdict, rising: false, reason: 'floor-flat' };

  return { ...verdict, rising: true, reason: 'rising' };
}

/** At most this many points of a long history are judged (evenly spaced profiles). */
export const HISTORY_POINTS = 120;

/** Evenly spaced indices (at most `points`, the last always included) of a series of `n`. */
export function decimate(n: number, points: number = HISTORY_POINTS): number[] {
  if (n <= points) return Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  for (let k = 0; k < points; k++) out.push(Math.round(((n - 1) * k) / (points - 1)));
  return out;
}

/**
 * Whether a series judged over a longer history than the rule's window
 * (oldest first, already thinned to at most HISTORY_POINTS) still shows the
 * growth of a leak: its newest quarter is above its oldest beyond noise
 * (noiseZ robust sigmas of the residuals around its Theil-Sen line, and
 * minRiseSamples samples), and it has not slowed down: its recent half
 * rises at least minRecentSlopeRatio as fast as its early half where that
 * one rose. A cache that filled and then holds its bound (its sampled count
 * wandering as entries are replaced) fails one or the other; a leak that
 * began late in the history (its early half flat) passes.
 * See docs/detector.md#minimum-growth-time.
 */
export function sustainedOverHistory(ys: readonly number[], opts: RuleOptions = DEFAULT_RULE): boolean {
  const n = ys.length;
  if (n < opts.minProfiles) return true; // no longer than the window: the rule has judged it
  const q = Math.max(1, Math.floor(n / PREFILTER_PARTS));
  const mean = (a: readonly number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
  const rise = mean(ys.slice(n - q)) - mean(ys.slice(0, q));
  const line = theilSen(ys);
  const sigma = robustSigma(ys.map((y, i) => y - (line.intercept + line.slope * i)));
  const quantum = opts.poisson ? sampleQuantum(ys) : 0;
  if (!(rise > 0) || rise < opts.noiseZ * sigma || rise < opts.minRiseSamples * quantum) return false;
  // Not slowed down: wherever the history is split (from a fifth to four
  // fifths of it), the growth after is not, beyond noise, slower than
  // minRecentSlopeRatio of the growth before. A cache that reached its
  // bound is split at its bound by one of them: its fill before, a flat or
  // wandering part after. Noise: each part's rise is a Poisson count of
  // samples (a gauge: none) plus the scatter of its points (from the
  // profile-to-profile steps), both parts' errors together.
  const diffs = ys.slice(1).map((y, i) => y - ys[i]!);
  const scatter2 = (robustSigma(diffs) / Math.SQRT2) ** 2;
  const variance = (rise: number, points: number): number => quantum * Math.max(rise, quantum) + (12 * scatter2) / points;
  for (const at of HISTORY_SPLITS) {
    const k = Math.round(n * at);
    const m = n - k;
    const rise1 = olsSlope(ys.slice(0, k)) * k;
    const rise2 = olsSlope(ys.slice(k)) * m;
    const r = opts.minRecentSlopeRatio;
    const shortfall = (r * rise1) / k - rise2 / m;
    const se = Math.sqrt((r * r * variance(rise1, k)) / (k * k) + variance(rise2, m) / (m * m));
    if (shortfall > 0 && shortfall >= HISTORY_Z * se) return false;
  }
  return true;
}

/** Standard errors by which a history must have slowed down at one of its splits to be a cache at its bound. */
const HISTORY_Z = 2.5;

/** Where sustainedOverHistory splits a history to compare the growth after with the growth before. */
const HISTORY_SPLITS = Array.from({ length: 13 }, (_, i) => 0.2 + 0.05 * i);

