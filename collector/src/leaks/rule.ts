/**
 * The decision rule: is one series (one site of one process, or one
 * process's heap) rising? Pure; see test/leaks/rule.test.ts.
 *
 * A series is a window of the last `maxProfiles` consecutive profiles of ONE
 * process (a restart starts a new series), indexed by profile, so thresholds
 * are in profiles and work at any profile interval.
 *
 * Why each check exists, and the non-leak shape it defeats:
 *  1. trend: Mann-Kendall with the Hamed-Rao autocorrelation correction,
 *     one-sided p < `alpha`, on the whole window. Heavy churn and large
 *     steady heaps (noise without a trend) fail here. Hamed-Rao because a
 *     long-lived object is in many consecutive profiles, so heap series are
 *     autocorrelated and plain MK over-calls trends.
 *  2. beyond sampling noise: the Theil-Sen rise over the window must be
 *     `noiseZ` standard errors above (a) Poisson sampling noise of the
 *     site's level (quantum estimated from the data: see stats.sampleQuantum)
 *     and (b) the robust scatter of the residuals around the Theil-Sen line.
 *     A site holding a few samples that flicker fails here. The rise must
 *     also span `minRiseSamples` samples, and still do so without the part
 *     of its largest profile-to-profile jump that stands out of the other
 *     increments (largestStep): a leak adds memory job by job, while a rise
 *     that is mostly one jump is a step (a lazy require, JIT code, a cache
 *     filled at once) that stops once taken. Measured: a formatter cache
 *     of lazy-require-jit went from 6 to 13 samples in one profile 5.5 s
 *     after start, then held for 50 profiles.
 *  3. still rising, at a comparable rate (plateau check): the window is cut
 *     into halves; each half must rise on its own (MK p < `halfAlpha`,
 *     positive Theil-Sen slope) and the recent half's slope must be at least
 *     `minRecentSlopeRatio` of the early half's. A warm-up cache, an LRU that
 *     reached capacity, a throughput ramp that then holds, a TTL cache and
 *     lazy require/JIT growth all rise early and flatten: their recent half
 *     is flat. A one-off step is flat in at least one half. And the newest
 *     profile must be above the one k profiles before it, k being the span
 *     in which the window's slope predicts `recentRiseSamples` samples: a
 *     start-up step that settled inside the recent half is flat since.
 *  4. the minima rise too (lower envelope): the minima of `envelopeBlocks`
 *     equal blocks must have a positive Theil-Sen slope and the last block's
 *     minimum must exceed the first's beyond Poisson noise, and the
 *     second's (the first block holds whatever warmed up at process start:
 *     a TTL cache filling before its first expiry overshot and settled,
 *     ttl-cache). A sawtooth
 *     buffer flushed on a timer and a large batch built and released every
 *     few intervals return to the same floor, whatever their peaks do.
 *
 * Which series is judged (detect.ts, decideSite), and why: the product's
 * definition of a leak is memory that does not return to its baseline after
 * GC, but the agent's native sampler also counts objects no GC has freed
 * yet, and anything promoted to old space stays in the profile until the
 * next MAJOR GC (15-40 s apart in the corpus's workers). The agent snapshots
 * right after every major GC and marks those profiles (gc.after_major_gc),
 * and reports its major GC count with every profile. So, per instance:
 *  a. once the window holds DetectOptions.postGcRule.minProfiles (12)
 *     post-GC profiles, the site's series is those profiles alone, judged by
 *     every check above with no GC gating: garbage-free points, where a
 *     churning site is flat and a leak rises;
 *  b. with fewer (profile intervals shorter than the GC period), the whole
 *     series is judged, gated on GC cycles (`gcResets`: the first profile
 *     after each rise of the reported major GC count) and with the lower
 *     envelope taken on each cycle's floor: its post-GC profile where there
 *     is one, else the cycle's minimum;
 *  c. agents that report no GCs (older ones) get the cycles guessed from heap
 *     used dropping by 25 % (detect.ts, gcResets), as before.
 * A window of profilesWithoutGc (240) profiles or more is trusted without
 * GCs in it (an idle worker whose garbage is not growing). What this means
 * for detection time: (a) needs 12 major GCs, (b) needs 2 in the window, so
 * at profile intervals much shorter than the GC period a leak is flagged
 * after a few GC periods, not after a number of profiles. The agent's GC
 * assist (agent/src/gc-assist.ts) forces a major GC before a profile when
 * V8 ran none, within a pause cap and a time budget, so for heaps under
 * that cap every profile is post-GC and (a) applies from the 12th profile.
 *
 * Leaks grow linearly in the number of jobs; the V8 sampler turns that into
 * a Poisson counting process (each leaked sample stays in the profile), i.e.
 * a random walk with drift whose drift/noise ratio grows like sqrt(samples).
 * That is why a slow leak needs a longer window: roughly 15-30 leaked
 * samples in the window are enough to pass every check.
 *
 * Noise is estimated from the data, not from samplingIntervalBytes (which
 * the schema does not hold): the residual scatter around the Theil-Sen line
 * carries the Poisson and churn noise of that very series, and the smallest
 * step between consecutive profiles bounds one sample's size from below.
 *
 * Known limits, measured on synthetic series (test/leaks/rule.test.ts):
 *  - A warm-up still filling when the window first reaches minProfiles
 *    (time constant above ~minProfiles/2 profiles) is, while it lasts, a leak
 *    as far as the data can tell; it is flagged and cleared once it bends
 *    (clearAfter flat profiles). At 60 s profiles that is a warm-up longer
 *    than ~6 minutes.
 *  - A leak whose rate halves within the window (rare: leaks scale with
 *    jobs) fails the plateau ratio until the window holds mostly the slower
 *    part.
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
}

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
};

/**
 * The floor of each GC cycle from the first reset on (the part before it is
 * still filling with garbage): the cycle's first value where the agent says
 * it was taken right after the major GC (`exact`), else the cycle's minimum.
 */
function cycleMinima(ys: readonly number[], resets: readonly number[], exact?: readonly boolean[]): number[] {
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
  reason: 'too-short' | 'no-gc-cycle' | 'not-rising' | 'no-trend' | 'within-noise' | 'step' | 'plateau' | 'floor-flat' | 'rising';
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
export function stillGrowing(ys: readonly number[], quantum: number): boolean {
  const h = ys.length >> 1;
  if (h < 6) return true;
  const slope = Math.max(0, theilSen(ys).slope);
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
  const ys = all.length > opts.maxProfiles ? all.slice(all.length - opts.maxProfiles) : all;
  return v.rising ? v : { ...v, flat: !stillGrowing(ys, opts.poisson ? sampleQuantum(ys) : 0) };
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
  const q = Math.max(1, Math.floor(n / 4));
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
    slope * (half.length - 1) >= (opts.noiseZ / 1.5) * robustSigma(half.map((y, i) => y - slope * i));
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
    lastMin - firstMin >= (opts.noiseZ / 1.5) * residualSigma &&
    lastMin - firstMin >= (opts.minRiseSamples / 2) * quantum;
  if (!envelopeOk) return { ...verdict, rising: false, reason: 'floor-flat' };

  return { ...verdict, rising: true, reason: 'rising' };
}
