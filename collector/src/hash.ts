/**
 * Deterministic 64-bit ids for stacks and sites, computed in JS so that
 * every collector (and every restart) derives the same id from the same
 * frames without asking the store. Two 32-bit lanes in the style of
 * MurmurHash3's finaliser; not cryptographic, and it need not be: ids only
 * have to be unique among one service's stacks.
 */

export type Hash64 = readonly [hi: number, lo: number];

/**
 * `hashString` in two steps, for strings that share a prefix: the state
 * after the prefix, then `hashStringSuffix(state, suffix)` equals
 * `hashString(prefix + suffix)`. Ingest hashes `function\0file\0line` for
 * every location; the prefix is one per function.
 */
export interface HashState {
  h1: number;
  h2: number;
  length: number;
}

const SEED: HashState = { h1: 0xdeadbeef, h2: 0x41c6ce57, length: 0 };

export function hashString(s: string): Hash64 {
  return hashStringSuffix(SEED, s);
}

export function hashStringPrefix(prefix: string): HashState {
  let { h1, h2 } = SEED;
  for (let i = 0; i < prefix.length; i++) {
    const ch = prefix.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  return { h1, h2, length: prefix.length };
}

export function hashStringSuffix(state: HashState, suffix: string): Hash64 {
  let h1 = state.h1;
  let h2 = state.h2;
  for (let i = 0; i < suffix.length; i++) {
    const ch = suffix.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  return finalise(h1, h2, state.length + suffix.length);
}

/** Folds an ordered list of hashes into one (order matters: a stack is a path). */
export function combine(parts: readonly Hash64[]): Hash64 {
  let h1 = 0x9e3779b9;
  let h2 = 0x7f4a7c15;
  for (const [a, b] of parts) {
    h1 = Math.imul(rotl(h1 ^ a, 13), 0x85ebca6b) + h2;
    h2 = Math.imul(rotl(h2 ^ b, 17), 0xc2b2ae35) ^ h1;
  }
  return finalise(h1, h2, parts.length);
}

function finalise(h1: number, h2: number, n: number): Hash64 {
  h1 ^= n;
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** The UInt64 as ClickHouse takes and returns it in JSON: a decimal string. */
export function toDecimal([hi, lo]: Hash64): string {
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/**
 * `combine` over hashes held in two parallel lanes, taken in the order
 * `order[start..end)`, written as [hi, lo] into `out`: the same result as
 * `combine(order.map(i => [hi[i], lo[i]]))` without building a tuple per
 * part or for the result (ingest calls this once per sample).
 */
export function combineIndexedInto(
  hi: ArrayLike<number>,
  lo: ArrayLike<number>,
  order: ArrayLike<number>,
  start: number,
  end: number,
  out: Uint32Array,
): void {
  let h1 = 0x9e3779b9;
  let h2 = 0x7f4a7c15;
  for (let k = start; k < end; k++) {
    const i = order[k]!;
    h1 = Math.imul(rotl(h1 ^ hi[i]!, 13), 0x85ebca6b) + h2;
    h2 = Math.imul(rotl(h2 ^ lo[i]!, 17), 0xc2b2ae35) ^ h1;
  }
  // finalise(), inline: it returns a tuple.
  const n = end - start;
  h1 ^= n;
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  out[0] = h1 >>> 0;
  out[1] = h2 >>> 0;
}
