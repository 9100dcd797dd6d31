/**
 * Synthetic heap-site series that model what the V8 sampling heap profiler
 * reports (docs/sampler.md): each live sampled object stays in the profile until it
 * is freed, so a leak is a Poisson counting process (a random walk with
 * drift), and a churning site is a fresh Poisson draw in every profile.
 * Values are bytes; one sample = `quantum` bytes.
 */

import { rng } from '../../scripts/lib/rng.mjs';

export { rng };

export function poisson(lambda: number, random: () => number): number {
  if (lambda <= 0) return 0;
  if (lambda > 50) {
    // Normal approximation for large means.
    const u = 1 - random();
    const v = random();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * z));
  }
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= random();
  } while (p > l);
  return k - 1;
}

export const QUANTUM = 512 * 1024;

/** A leak of `samplesPerProfile` samples per interval over `churn` samples of transient noise. */
export function leakSeries(n: number, samplesPerProfile: number, seed: number, churn = 0): number[] {
  const r = rng(seed);
  let kept = 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    kept += poisson(samplesPerProfile, r);
    out.push((kept + poisson(churn, r)) * QUANTUM);
  }
  return out;
}

/** Live size follows `level(i)` (in samples) with objects replaced over time: a fresh Poisson draw. */
export function churnSeries(n: number, level: (i: number) => number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => poisson(level(i), r) * QUANTUM);
}

/**
 * Retained objects that are never replaced until released, e.g. a warm-up
 * cache: the count follows a counting process whose rate is the derivative
 * of `target`, and drops to `target` when target falls.
 */
export function retainedSeries(n: number, target: (i: number) => number, seed: number, churn = 0): number[] {
  const r = rng(seed);
  let kept = 0;
  let prev = target(0);
  kept = poisson(prev, r);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = target(i);
    if (t > prev) kept += poisson(t - prev, r);
    else if (t < prev) kept = Math.min(kept, poisson(t, r));
    prev = t;
    out.push((kept + poisson(churn, r)) * QUANTUM);
  }
  return out;
}

/**
 * A bounded cache as the sampler sees it (an LRU over keys that keep coming,
 * as lru-cache and a Map in insertion order are used). Keys arrive at
 * `arrivals(i)` per profile; a key not in the cache is inserted, and once the
 * cache holds `capacity` keys each insert evicts the oldest. A key is new
 * with probability 1 - (keys cached) / `population` (Infinity: every key is
 * new, so the cache fills linearly; a finite population fills it ever more
 * slowly, as a cache of a fixed set of users does). Each inserted entry is
 * sampled with probability `samplesPerEntry` (its size over the sampling
 * interval), so the series counts sampled entries still cached, plus
 * `churn` samples of transient objects, in bytes (QUANTUM a sample).
 */
export function cacheSeries(
  n: number,
  o: { capacity: number; arrivals: (i: number) => number; population: number; samplesPerEntry: number; churn: number },
  seed: number,
): number[] {
  const r = rng(seed);
  let inserted = 0; // keys ever inserted: the cache holds the newest min(inserted, capacity)
  const sampled: number[] = []; // insert positions of the sampled entries, oldest first
  let head = 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const cached = Math.min(inserted, o.capacity);
    const newShare = Number.isFinite(o.population) ? Math.max(0, 1 - cached / o.population) : 1;
    const inserts = poisson(o.arrivals(i) * newShare, r);
    // Sampled entries among this profile's inserts, at uniform positions.
    const k = poisson(inserts * o.samplesPerEntry, r);
    const at = Array.from({ length: k }, () => inserted + r() * inserts).sort((a, b) => a - b);
    sampled.push(...at);
    inserted += inserts;
    while (head < sampled.length && sampled[head]! < inserted - o.capacity) head++;
    out.push((sampled.length - head + poisson(o.churn, r)) * QUANTUM);
  }
  return out;
}
