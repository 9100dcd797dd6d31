/** What a collector lists and exports, read back over its HTTP API, for the ingest tests of other agents' protocols. */
import * as zlib from 'node:zlib';
import { Profile } from 'pprof-format';
import { expect } from 'vitest';
import type { TestStack } from './pprof';

/** Two stacks of a Go-like service, as the foreign-agent tests send them: 41,984 bytes and 15 objects in all. */
export const FOREIGN_STACKS: TestStack[] = [
  { frames: [['allocBuffer', '/app/buf.go', 12], ['main.handle', '/app/main.go', 30]], objects: 10, bytes: 40_960 },
  { frames: [['json.Unmarshal', '/go/json.go', 99], ['main.handle', '/app/main.go', 30]], objects: 5, bytes: 1_024 },
];
export const FOREIGN_STACKS_BYTES = 41_984;

export interface ServiceEntry {
  service: string;
  instances: number;
  profiles: number;
}

export async function services(base: string, token?: string): Promise<ServiceEntry[]> {
  const res = await fetch(`${base}/api/v1/services`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  expect(res.status).toBe(200);
  return (await res.json()) as ServiceEntry[];
}

/** The exported pprof of `service`: total bytes and objects, and bytes per function counted once per sample holding it. */
export async function exported(base: string, service: string): Promise<{ bytes: number; objects: number; byFunction: Record<string, number>; raw: Buffer }> {
  const res = await fetch(`${base}/api/v1/profile?service=${encodeURIComponent(service)}&from=0`);
  expect(res.status).toBe(200);
  const raw = Buffer.from(await res.arrayBuffer());
  const p = Profile.decode(zlib.gunzipSync(raw));
  const s = p.stringTable.strings;
  const fn = new Map(p.function.map((f) => [String(f.id), s[Number(f.name)]!]));
  const frame = new Map(p.location.map((l) => [String(l.id), fn.get(String(l.line[0]!.functionId))!]));
  const bi = p.sampleType.findIndex((t) => s[Number(t.type)] === 'space');
  const oi = p.sampleType.findIndex((t) => s[Number(t.type)] === 'objects');
  const byFunction: Record<string, number> = {};
  let bytes = 0;
  let objects = 0;
  for (const x of p.sample) {
    bytes += Number(x.value[bi]);
    objects += Number(x.value[oi]);
    for (const name of new Set(x.locationId.map((id) => frame.get(String(id))!))) byFunction[name] = (byFunction[name] ?? 0) + Number(x.value[bi]);
  }
  return { bytes, objects, byFunction, raw };
}
