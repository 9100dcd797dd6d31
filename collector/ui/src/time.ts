/**
 * Times in the UI's address bar: `now`, `now-15m`, `now-2h`, `now-7d`, an
 * ISO 8601 time or Unix milliseconds, so a link can mean "the last hour"
 * or a fixed range.
 */
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseTime(text: string, now: number): number {
  const t = text.trim();
  const rel = /^now(?:-(\d+(?:\.\d+)?)([smhd]))?$/.exec(t);
  if (rel) return rel[1] ? now - Number(rel[1]) * UNITS[rel[2]!]! : now;
  if (/^\d+$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  if (!Number.isFinite(ms)) throw new Error(`${JSON.stringify(text)} is not a time: use now, now-1h, an ISO 8601 time or Unix ms`);
  return ms;
}

export interface Range {
  from: string;
  to: string;
}

export function resolve(r: Range, now: number): { fromMs: number; toMs: number } {
  const fromMs = parseTime(r.from, now);
  const toMs = parseTime(r.to, now);
  if (fromMs > toMs) throw new Error(`from (${r.from}) is after to (${r.to})`);
  return { fromMs, toMs };
}
