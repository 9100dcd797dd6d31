/** The collector's HTTP API as the pages use it (same origin). */
import type { LeakEvidence } from '../../src/leaks/evidence';
import type { LeakReport } from '../../src/leaks/report';
import type { FlameTree } from '../../src/query/flamegraph';
import type { ServiceSummary } from '../../src/store/store';

export type { LeakEvidence, LeakReport, FlameTree };

export interface ServiceRow extends ServiceSummary {
  flaggedLeaks: number | null;
  flaggedProcess: number | null;
  evaluatedAt: string | null;
}

export interface FlameGraphData extends FlameTree {
  service: string;
  from: string;
  to: string;
  profiles: number;
  instances: number;
  stacks: number;
}

export interface DiffData extends FlameTree {
  service: string;
  base: { from: string; to: string; profiles: number; instances: number };
  from: string;
  to: string;
  profiles: number;
  instances: number;
  normalize: boolean;
  scale: [number, number];
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${path}: ${res.status} ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new Error(`${path}: ${(body as { error?: string }).error ?? res.status}`);
  return body as T;
}

/** A query string of the given parameters, skipping empty ones. */
export function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  return q.toString();
}

/** `label.k=v` parameters from the filter text "k=v,k2=v2". */
export function labelParams(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error(`label filter ${JSON.stringify(p)} is not k=v`);
    out[`label.${p.slice(0, eq).trim()}`] = p.slice(eq + 1).trim();
  }
  return out;
}

/** An absolute URL of this collector, for commands to paste elsewhere. */
export function absolute(path: string): string {
  return new URL(path, location.href).toString();
}

/** The shell form of a URL argument. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
