/**
 * The detection-time formula (collector/src/leaks/detection-time.ts) against
 * synthetic Poisson leaks replayed profile by profile through the rule and
 * the alert, and what it says about production settings.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ALERT } from '../../collector/src/leaks/alert';
import { profilesToFlag, SAMPLES_TO_FLAG, secondsToFlag } from '../../collector/src/leaks/detection-time';
import { replay } from './replay';
import { leakSeries } from './synthetic';

const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);
const KIB = 1 << 10;

function flaggedAt(series: readonly number[], intervalMs: number): number {
  return replay(series, intervalMs, { untilFlagged: true }).flaggedAt ?? Infinity;
}

describe('detection time', () => {
  // [samples a profile, profile interval]: at 60 s the alert's minimum growth
  // time (13 minutes) is what the window's minimum takes anyway; at 5 s it
  // decides for any leak faster than 15 samples in 13 minutes.
  it.each([
    [0.16, 60_000],
    [0.5, 60_000],
    [1, 60_000],
    [4, 60_000],
    [0.16, 5000],
    [1, 5000],
  ])('a leak of %s samples a profile at a %s ms interval is flagged as the formula says', (rate, intervalMs) => {
    const predicted = profilesToFlag(rate, 'median', intervalMs);
    const p90 = profilesToFlag(rate, 'p90', intervalMs);
    const at = SEEDS.map((s) => flaggedAt(leakSeries(Math.ceil(2 * p90), rate, s, 5), intervalMs)).sort((a, b) => a - b);
    const median = at[at.length >> 1]!;
    // The median within 1.5x of the formula's either way; 90 % of runs within its p90 bound
    // (+25 %; +30 % where the minimum growth time and the samples take about as long: the
    // key must also be rising when the time is up).
    expect(median, `flagged at ${at.join(',')}`).toBeLessThanOrEqual(1.5 * predicted);
    expect(median, `flagged at ${at.join(',')}`).toBeGreaterThanOrEqual(predicted / 1.5);
    const both = Math.abs(SAMPLES_TO_FLAG.p90 / rate - DEFAULT_ALERT.minGrowthMs / intervalMs) < 0.25 * p90;
    expect(at[Math.floor(0.9 * at.length) - 1]!, `flagged at ${at.join(',')}`).toBeLessThanOrEqual((both ? 1.3 : 1.25) * p90);
    // Never before the minimum growth time.
    expect((at[0]! - 1) * intervalMs).toBeGreaterThanOrEqual(DEFAULT_ALERT.minGrowthMs);
  });

  it('production settings: 1 MB a minute at 512 KiB sampling', () => {
    const rate = 1_000_000 / 60;
    // 60 s profiles: the window's minimum decides, 14 minutes (target 15: met at the median).
    expect(secondsToFlag(rate, 512 * KIB, 60_000) / 60).toBe(14);
    // 5 s profiles: the minimum growth time decides, 13 minutes and one profile; the samples
    // alone would take ~8 (target 3: not reachable at 512 KiB without flagging filling caches).
    expect(secondsToFlag(rate, 512 * KIB, 5_000) / 60).toBeCloseTo(13.1, 1);
    expect(secondsToFlag(rate, 512 * KIB, 5_000, 'median', 0) / 60).toBeCloseTo(7.9, 1);
    // At the 90th percentile the samples and the minimum growth time take about as long.
    expect(secondsToFlag(rate, 512 * KIB, 5_000, 'p90') / 60).toBeCloseTo(13.2, 1);
  });
});
