/**
 * Least squares for the job analysis (jobs.ts): a robust (Huber) linear fit
 * through the origin of a few columns, with standard errors, and the F test
 * that compares two nested fits. Pure: numbers in, numbers out
 * (test/leaks/jobs.test.ts).
 */
import { robustSigma } from './stats';

export interface Fit {
  /** One coefficient per column; 0 for a column the data cannot tell from the others (aliased). */
  beta: number[];
  /** Standard error of each coefficient; Infinity where aliased. */
  se: number[];
  /** Weighted residual sum of squares. */
  rss: number;
  /** Rows and identified columns. */
  n: number;
  p: number;
  /** Row weights the fit ended with (1 = a typical row; below 1 = an outlier, down-weighted). */
  weights: number[];
}

/** Huber's tuning constant: 95 % efficiency on normal noise. */
const HUBER_K = 1.345;
const IRLS_ITERATIONS = 10;
/**
 * A pivot this small, relative to its column's own scale, means the column
 * is (nearly) a combination of the columns before it: the data cannot tell
 * their effects apart.
 */
const ALIAS_TOLERANCE = 1e-9;

/**
 * Weighted least squares of y on the columns of `x` (rows of equal length),
 * no intercept, by Cholesky of XᵀWX with columns scaled to unit norm.
 */
export function weightedFit(x: readonly (readonly number[])[], y: readonly number[], w: readonly number[]): Fit {
  const n = y.length;
  const p = x[0]?.length ?? 0;
  const scale = new Array<number>(p).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) scale[j]! += w[i]! * x[i]![j]! ** 2;
  for (let j = 0; j < p; j++) scale[j] = scale[j]! > 0 ? Math.sqrt(scale[j]!) : 0;
  // A = XᵀWX and b = XᵀWy of the scaled columns.
  const a = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  const b = new Array<number>(p).fill(0);
  for (let i = 0; i < n; i++) {
    const wi = w[i]!;
    if (wi === 0) continue;
    for (let j = 0; j < p; j++) {
      const xj = scale[j]! > 0 ? x[i]![j]! / scale[j]! : 0;
      if (xj === 0) continue;
      b[j]! += wi * xj * y[i]!;
      for (let k = 0; k <= j; k++) {
        const xk = scale[k]! > 0 ? x[i]![k]! / scale[k]! : 0;
        a[j]![k]! += wi * xj * xk;
      }
    }
  }
  // Cholesky A = LLᵀ; an aliased column gets a unit pivot and no effect.
  const l = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  const aliased = new Array<boolean>(p).fill(false);
  for (let j = 0; j < p; j++) {
    let d = a[j]![j]!;
    for (let k = 0; k < j; k++) d -= l[j]![k]! ** 2;
    if (scale[j] === 0 || d <= ALIAS_TOLERANCE) {
      aliased[j] = true;
      l[j]![j] = 1;
      continue;
    }
    l[j]![j] = Math.sqrt(d);
    for (let i = j + 1; i < p; i++) {
      let s = a[i]![j]!;
      for (let k = 0; k < j; k++) s -= l[i]![k]! * l[j]![k]!;
      l[i]![j] = s / l[j]![j]!;
    }
  }
  const solve = (rhs: number[]): number[] => {
    const z = rhs.map((v, j) => (aliased[j] ? 0 : v));
    for (let i = 0; i < p; i++) {
      if (aliased[i]) continue;
      let s = z[i]!;
      for (let k = 0; k < i; k++) if (!aliased[k]) s -= l[i]![k]! * z[k]!;
      z[i] = s / l[i]![i]!;
    }
    for (let i = p - 1; i >= 0; i--) {
      if (aliased[i]) continue;
      let s = z[i]!;
      for (let k = i + 1; k < p; k++) if (!aliased[k]) s -= l[k]![i]! * z[k]!;
      z[i] = s / l[i]![i]!;
    }
    return z;
  };
  const scaled = solve(b);
  const beta = scaled.map((v, j) => (aliased[j] || scale[j] === 0 ? 0 : v / scale[j]!));
  let rss = 0;
  for (let i = 0; i < n; i++) {
    let fitted = 0;
    for (let j = 0; j < p; j++) fitted += x[i]![j]! * beta[j]!;
    rss += w[i]! * (y[i]! - fitted) ** 2;
  }
  const identified = aliased.filter((v) => !v).length;
  const df = n - identified;
  const s2 = df > 0 ? rss / df : Infinity;
  const se = beta.map((_, j) => {
    if (aliased[j]) return Infinity;
    const e = new Array<number>(p).fill(0);
    e[j] = 1;
    const inv = solve(e)[j]!; // (AᵀA)⁻¹ diagonal, scaled columns
    return Math.sqrt(Math.max(0, s2 * inv)) / scale[j]!;
  });
  return { beta, se, rss, n, p: identified, weights: [...w] };
}

/** Huber-weighted least squares: rows far off the fit (a profile caught mid-batch) weigh less. */
export function robustFit(x: readonly (readonly number[])[], y: readonly number[]): Fit {
  let w = new Array<number>(y.length).fill(1);
  let fit = weightedFit(x, y, w);
  for (let it = 0; it < IRLS_ITERATIONS; it++) {
    const r = y.map((v, i) => v - x[i]!.reduce((s, xj, j) => s + xj * fit.beta[j]!, 0));
    const sigma = robustSigma(r);
    if (!(sigma > 0)) break;
    const next = r.map((ri) => (Math.abs(ri) <= HUBER_K * sigma ? 1 : (HUBER_K * sigma) / Math.abs(ri)));
    if (next.every((v, i) => Math.abs(v - w[i]!) < 1e-6)) break;
    w = next;
    fit = weightedFit(x, y, w);
  }
  return fit;
}

/**
 * P-value of the F test that the `full` fit explains the data better than
 * the `reduced` one nested in it (same rows and weights): small when the
 * columns `full` adds matter.
 */
export function nestedFTest(reduced: Fit, full: Fit): number {
  const d1 = full.p - reduced.p;
  const d2 = full.n - full.p;
  if (d1 <= 0 || d2 <= 0) return 1;
  if (!(full.rss > 0)) return reduced.rss > 0 ? 0 : 1;
  const f = (Math.max(0, reduced.rss - full.rss) / d1) / (full.rss / d2);
  return fSurvival(f, d1, d2);
}

/** P(F > f) for the F(d1, d2) distribution. */
export function fSurvival(f: number, d1: number, d2: number): number {
  if (!(f > 0)) return 1;
  return regularizedBeta(d2 / (d2 + d1 * f), d2 / 2, d1 / 2);
}

/** ln Γ(x), Lanczos (g = 7, n = 9); |error| < 1e-13 for x > 0. */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let s = c[0]!;
  for (let i = 1; i < 9; i++) s += c[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/** The regularized incomplete beta function I_x(a, b), by its continued fraction (Lentz). */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
  if (x > (a + 1) / (a + b + 2)) return 1 - regularizedBeta(1 - x, b, a);
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-14) break;
  }
  return (front * h) / a;
}
