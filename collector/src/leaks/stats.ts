/**
 * Pure statistics for the leak detector. No I/O, no clock: every function
 * takes numbers and returns numbers, so each one is unit-tested on synthetic
 * series (test/leaks/stats.test.ts).
 *
 * Series are indexed by profile (x = 0, 1, 2, ...), not by time: the window
 * is counted in profiles so the same thresholds work at a 500 ms interval in
 * tests and at 60 s in production.
 */

export function median(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  return medianInPlace(Float64Array.from(values));
}

/**
 * The k-th smallest of `a` (0-based) by quickselect, reordering `a`: O(n)
 * on average. Theil-Sen takes the median of n^2/2 pairwise slopes, and
 * sorting them made up most of the detector's time.
 */
function select(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/** Median of `a`, reordering it. */
function medianInPlace(a: Float64Array): number {
  const mid = a.length >> 1;
  if (a.length % 2 === 1) return select(a, mid);
  const hi = select(a, mid);
  // After select, a[0..mid) holds the values <= a[mid]: the lower middle is their maximum.
  let lo = -Infinity;
  for (let i = 0; i < mid; i++) if (a[i]! > lo) lo = a[i]!;
  return (lo + hi) / 2;
}

/** Median absolute deviation, scaled (x1.4826) to estimate a normal sigma. */
export function robustSigma(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const m = median(values);
  return 1.4826 * median(values.map((v) => Math.abs(v - m)));
}

export interface Line {
  /** Change per step of x. */
  slope: number;
  intercept: number;
}

/**
 * Theil-Sen estimator: the median of all pairwise slopes. Robust to up to
 * ~29 % outliers (a batch spike, a missed GC), unlike least squares.
 * O(n^2) pairs; n is a window of at most a few hundred profiles.
 */
export function theilSen(ys: readonly number[], xs?: readonly number[]): Line {
  const n = ys.length;
  const x = (i: number): number => (xs ? xs[i]! : i);
  if (n < 2) return { slope: 0, intercept: n === 1 ? ys[0]! : 0 };
  const slopes = new Float64Array((n * (n - 1)) / 2);
  let m = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = x(j) - x(i);
      if (dx !== 0) slopes[m++] = (ys[j]! - ys[i]!) / dx;
    }
  }
  const slope = m ? medianInPlace(slopes.subarray(0, m)) : 0;
  const intercept = median(ys.map((y, i) => y - slope * x(i)));
  return { slope, intercept };
}

/** Ordinary least-squares slope against x = 0, 1, 2, ... */
export function olsSlope(ys: readonly number[]): number {
  const n = ys.length;
  if (n < 2) return 0;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (i - mx) * (ys[i]! - my);
    sxx += (i - mx) ** 2;
  }
  return sxy / sxx;
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 via erf; |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const t = 1 / (1 + 0.3275911 * (Math.abs(z) / Math.SQRT2));
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-(z * z) / 2);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Ranks 1..n, ties get their average rank. */
export function ranks(values: readonly number[]): number[] {
  const idx = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(values.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[idx[k]![1]] = r;
    i = j + 1;
  }
  return out;
}

/** Sample autocorrelation at lags 0..maxLag. */
export function autocorrelation(values: readonly number[], maxLag: number): number[] {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  let c0 = 0;
  for (const v of values) c0 += (v - mean) ** 2;
  const out: number[] = [];
  for (let k = 0; k <= maxLag; k++) {
    if (c0 === 0) {
      out.push(k === 0 ? 1 : 0);
      continue;
    }
    let ck = 0;
    for (let i = 0; i + k < n; i++) ck += (values[i]! - mean) * (values[i + k]! - mean);
    out.push(ck / c0);
  }
  return out;
}

export interface MannKendall {
  /** Kendall's S: concordant minus discordant pairs. */
  s: number;
  /** Variance of S after the tie and (optionally) autocorrelation corrections. */
  variance: number;
  z: number;
  /** One-sided p-value for an increasing trend. */
  pRising: number;
  /** Hamed-Rao variance inflation n/n* (1 when uncorrected). */
  inflation: number;
}

/**
 * Mann-Kendall trend test. With `hamedRao` (default), the variance of S is
 * inflated by the Hamed & Rao (1998) factor computed from the significant
 * autocorrelations of the ranks of the Theil-Sen-detrended series: heap
 * series are autocorrelated (a long-lived cache entry is in many consecutive
 * profiles), and plain MK then calls noise a trend far more often than its
 * nominal alpha. Follows pyMannKendall's `hamed_rao_modification_test`:
 * only lags whose |rho| exceeds the 95 % band count, and the variance is
 * never reduced.
 */
export function mannKendall(ys: readonly number[], opts: { hamedRao?: boolean } = {}): MannKendall {
  const n = ys.length;
  if (n < 3) return { s: 0, variance: 0, z: 0, pRising: 1, inflation: 1 };
  let s = 0;
  for (let i = 0; i < n - 1; i++) {
    for (let j = i + 1; j < n; j++) s += Math.sign(ys[j]! - ys[i]!);
  }
  const counts = new Map<number, number>();
  for (const y of ys) counts.set(y, (counts.get(y) ?? 0) + 1);
  let tieTerm = 0;
  for (const t of counts.values()) if (t > 1) tieTerm += t * (t - 1) * (2 * t + 5);
  let variance = (n * (n - 1) * (2 * n + 5) - tieTerm) / 18;
  let inflation = 1;
  if (opts.hamedRao !== false && n >= 6) {
    const { slope } = theilSen(ys);
    const r = ranks(ys.map((y, i) => y - slope * i));
    const acf = autocorrelation(r, n - 1);
    const band = 1.96 / Math.sqrt(n);
    let sum = 0;
    for (let k = 1; k < n - 2; k++) {
      const rho = acf[k]!;
      if (Math.abs(rho) > band) sum += (n - k) * (n - k - 1) * (n - k - 2) * rho;
    }
    inflation = Math.max(1, 1 + (2 / (n * (n - 1) * (n - 2))) * sum);
    variance *= inflation;
  }
  const z = variance <= 0 ? 0 : s > 0 ? (s - 1) / Math.sqrt(variance) : s < 0 ? (s + 1) / Math.sqrt(variance) : 0;
  return { s, variance, z, pRising: 1 - normalCdf(z), inflation };
}

/**
 * The size of one sample of a series, estimated from the data: the V8
 * sampler reports whole (scaled) samples, so a site's in-use bytes move in
 * steps of about one sample (~ samplingIntervalBytes for objects smaller
 * than the interval, the object size for larger ones). The interval is not
 * stored, so take a low quantile of the non-zero step sizes: a lower bound
 * on one sample when many samples churn at once. Returns 0 when the series
 * never moves.
 */
export function sampleQuantum(ys: readonly number[]): number {
  const steps: number[] = [];
  for (let i = 1; i < ys.length; i++) {
    const d = Math.abs(ys[i]! - ys[i - 1]!);
    if (d > 0) steps.push(d);
  }
  if (steps.length === 0) return 0;
  steps.sort((a, b) => a - b);
  return steps[Math.floor(steps.length * 0.1)]!;
}

/** Minimum of each of `blocks` consecutive, near-equal slices. */
export function blockMinima(ys: readonly number[], blocks: number): number[] {
  const out: number[] = [];
  const n = ys.length;
  for (let b = 0; b < blocks; b++) {
    const from = Math.floor((b * n) / blocks);
    const to = Math.floor(((b + 1) * n) / blocks);
    if (to <= from) continue;
    let m = Infinity;
    for (let i = from; i < to; i++) m = Math.min(m, ys[i]!);
    out.push(m);
  }
  return out;
}
