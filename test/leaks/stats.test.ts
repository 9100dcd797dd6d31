import { describe, expect, it } from 'vitest';
import {
  autocorrelation,
  blockMinima,
  mannKendall,
  median,
  normalCdf,
  ranks,
  robustSigma,
  sampleQuantum,
  theilSen,
} from '../../collector/src/leaks/stats';
import { rng } from './synthetic';

describe('stats', () => {
  it('median and robust sigma', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(robustSigma([1, 1, 1, 1])).toBe(0);
    // Quickselect agrees with sorting, ties and even lengths included.
    const r = rng(7);
    for (let t = 0; t < 2000; t++) {
      const xs = Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * 6));
      const s = [...xs].sort((a, b) => a - b);
      const h = s.length >> 1;
      expect(median(xs)).toBe(s.length % 2 ? s[h] : (s[h - 1]! + s[h]!) / 2);
    }
    // One wild outlier barely moves it.
    expect(robustSigma([1, 2, 3, 4, 5, 1e9])).toBeLessThan(4);
  });

  it('Theil-Sen recovers a line through outliers', () => {
    const ys = Array.from({ length: 30 }, (_, i) => 10 + 2 * i);
    ys[5] = 1000;
    ys[20] = -500;
    const l = theilSen(ys);
    expect(l.slope).toBeCloseTo(2, 6);
    expect(l.intercept).toBeCloseTo(10, 6);
  });

  it('normal CDF', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 6);
    expect(normalCdf(1.96)).toBeCloseTo(0.975, 3);
    expect(normalCdf(-2.326)).toBeCloseTo(0.01, 3);
  });

  it('ranks average ties', () => {
    expect(ranks([10, 20, 10, 30])).toEqual([1.5, 3, 1.5, 4]);
  });

  it('Mann-Kendall: monotone series is significant, shuffled noise is not', () => {
    const up = Array.from({ length: 20 }, (_, i) => i);
    const mk = mannKendall(up, { hamedRao: false });
    expect(mk.s).toBe(190);
    // n=20, no ties: Var(S) = 20*19*45/18 = 950.
    expect(mk.variance).toBeCloseTo(950, 6);
    expect(mk.pRising).toBeLessThan(1e-6);
    const r = rng(1);
    const noise = Array.from({ length: 40 }, () => r());
    expect(mannKendall(noise).pRising).toBeGreaterThan(0.01);
  });

  it('Hamed-Rao inflates the variance of an autocorrelated series', () => {
    // AR(1) with phi = 0.6 around a flat mean: plain MK over-calls trends.
    let falsePlain = 0;
    let falseHr = 0;
    for (let seed = 0; seed < 200; seed++) {
      const r = rng(seed);
      let x = 0;
      const ys = Array.from({ length: 60 }, () => (x = 0.6 * x + (r() - 0.5)));
      if (mannKendall(ys, { hamedRao: false }).pRising < 0.01) falsePlain++;
      if (mannKendall(ys).pRising < 0.01) falseHr++;
    }
    expect(falseHr).toBeLessThan(falsePlain);
    // Hamed-Rao is known to stay somewhat liberal at short n (Hamed & Rao 1998, table 3).
    expect(falseHr / 200).toBeLessThan(0.08);
  });

  it('autocorrelation of a constant series is 1 then 0', () => {
    expect(autocorrelation([2, 2, 2], 2)).toEqual([1, 0, 0]);
  });

  it('sample quantum and Poisson rise', () => {
    expect(sampleQuantum([0, 512, 512, 1024, 2048])).toBe(512);
    expect(sampleQuantum([1024, 2048, 1536])).toBe(512);
    expect(sampleQuantum([0, 0, 0])).toBe(0);
  });

  it('block minima', () => {
    expect(blockMinima([5, 1, 7, 2, 9, 3, 8, 4], 4)).toEqual([1, 2, 3, 4]);
  });
});
