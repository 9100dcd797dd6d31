/**
 * How long a steady leak takes to be flagged, from what the sampler can
 * show (docs/detector.md#detection-time). A leak of R bytes per profile
 * sampled every S bytes adds r = R/S samples a profile, a Poisson count, so
 * the rule needs about k samples of growth to tell it from sampling noise;
 * never fewer profiles than the window's minimum plus the alert's streak;
 * and the alert waits until the growth has lasted its minimum growth time
 * D (alert.ts minGrowthMs, measured from the first profile, so D/I + 1
 * profiles):
 *
 *   profiles to flag ~ max(minProfiles + flagAfter - 1, D / I + 1, k / r)
 *   time to flag     ~ max((minProfiles + flagAfter - 1) x I, D + I, k x S / rate)
 *
 * k was measured by replaying synthetic Poisson leaks through the rule and
 * the alert (test/leaks/detection-time.test.ts) on a site with up to 5
 * other churning samples: about 15 at the median, 25 at the 90th
 * percentile; a site under 20 churning samples needs about twice as many.
 */
import { DEFAULT_ALERT } from './alert';
import { DEFAULT_RULE } from './rule';

/** Samples of growth the rule needs: median and 90th percentile, on a site with at most 5 churning samples. */
export const SAMPLES_TO_FLAG = { median: 15, p90: 25 } as const;

/**
 * Profiles at which a leak of `samplesPerProfile` is flagged (median or 90th
 * percentile), as far as the samples and the window decide; with
 * `intervalMs`, also no sooner than the minimum growth time `minGrowthMs`.
 */
export function profilesToFlag(
  samplesPerProfile: number,
  q: keyof typeof SAMPLES_TO_FLAG = 'median',
  intervalMs?: number,
  minGrowthMs: number = DEFAULT_ALERT.minGrowthMs,
): number {
  if (!(samplesPerProfile > 0)) return Infinity;
  const floor = DEFAULT_RULE.minProfiles + DEFAULT_ALERT.flagAfter - 1;
  const wait = intervalMs && intervalMs > 0 ? Math.ceil(minGrowthMs / intervalMs) + 1 : 0;
  return Math.max(floor, wait, Math.ceil(SAMPLES_TO_FLAG[q] / samplesPerProfile));
}

/** Seconds to flag a leak of `bytesPerSecond` at sampling interval `samplingBytes`, profile interval `intervalMs` and minimum growth time `minGrowthMs`. */
export function secondsToFlag(
  bytesPerSecond: number,
  samplingBytes: number,
  intervalMs: number,
  q: keyof typeof SAMPLES_TO_FLAG = 'median',
  minGrowthMs: number = DEFAULT_ALERT.minGrowthMs,
): number {
  return (profilesToFlag((bytesPerSecond * intervalMs) / 1000 / samplingBytes, q, intervalMs, minGrowthMs) * intervalMs) / 1000;
}
