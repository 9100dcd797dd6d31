/**
 * The read side for profiles: the list of services, and a merged profile
 * over a time range, exported as pprof.
 *
 * Heap profiles are gauges: each snapshot already holds everything in use
 * at its moment. Summing snapshots over time would count the same bytes once
 * per snapshot, so the merge averages each instance over its snapshots in
 * the range, then sums the instances (FACTS.md, pyroscope #1976/#3587).
 */
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { Function as PFunction, Label, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import type { Store } from '../store/clickhouse';

const gzip = promisify(zlib.gzip);

export interface ServiceSummary {
  service: string;
  instances: number;
  profiles: number;
  firstSeen: string;
  lastSeen: string;
}

export async function listServices(store: Store): Promise<ServiceSummary[]> {
  const rows = await store.query<{ service: string; instances: string; profiles: string; first: string; last: string }>(
    `SELECT service, uniqExact(instance) AS instances, count() AS profiles,
            toUnixTimestamp64Milli(min(time)) AS first, toUnixTimestamp64Milli(max(time)) AS last
     FROM profiles FINAL GROUP BY service ORDER BY service`,
  );
  return rows.map((r) => ({
    service: r.service,
    instances: Number(r.instances),
    profiles: Number(r.profiles),
    firstSeen: new Date(Number(r.first)).toISOString(),
    lastSeen: new Date(Number(r.last)).toISOString(),
  }));
}

export async function serviceExists(store: Store, service: string): Promise<boolean> {
  const rows = await store.query<{ n: string }>(
    'SELECT count() AS n FROM (SELECT 1 FROM profiles WHERE service = {service:String} LIMIT 1)',
    { service },
  );
  return Number(rows[0]?.n ?? 0) > 0;
}

export interface ProfileQuery {
  service: string;
  fromMs: number;
  toMs: number;
  /** Every label must match exactly. */
  labels: Record<string, string>;
}

export interface MergedStack {
  functions: string[];
  files: string[];
  lines: number[];
  objects: number;
  bytes: number;
}

export interface MergedProfile {
  query: ProfileQuery;
  /** Snapshots that went into the merge, over all instances. */
  profiles: number;
  instances: number;
  stacks: MergedStack[];
}

/** The WHERE clause of the profiles a query selects, with its parameters. */
function selection(q: ProfileQuery, params: Record<string, unknown>): string {
  params.service = q.service;
  params.from = q.fromMs;
  params.to = q.toMs;
  const labelFilter = Object.entries(q.labels)
    .map(([k, v], i) => {
      params[`lk${i}`] = k;
      params[`lv${i}`] = v;
      return ` AND labels[{lk${i}:String}] = {lv${i}:String}`;
    })
    .join('');
  return `service = {service:String}
      AND time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
      AND time <= fromUnixTimestamp64Milli({to:Int64}, 'UTC')${labelFilter}`;
}

/**
 * A profile's values are arrays in its `profiles` row (store/schema.ts), so
 * the merge reads only the selected rows, with no join against a commit
 * marker: a profile is visible whole or not at all.
 *
 * Where the time went (24 h, 6 instances x 1,440 profiles x 2,000 stacks,
 * engine CPU): sumMap per instance 3.5 s; ARRAY JOIN, GROUP BY (instance,
 * stack) and a join on per-instance counts 1.0 s; each profile's arrays
 * divided by its instance's count before the ARRAY JOIN, so that one GROUP BY
 * stack_id over 2,000 keys does the rest, 0.5 s. The counts come first, from
 * the small columns only; should a retry have been stored twice before the
 * ReplacingMergeTree merged it (rows > distinct times), one profile per
 * (instance, time) counts, as in schema 1, at ~30 % more cost.
 */
export async function mergedProfile(store: Store, q: ProfileQuery): Promise<MergedProfile> {
  const params: Record<string, unknown> = {};
  const where = selection(q, params);
  const perInstance = await store.query<{ instance: string; rows: string; n: string }>(
    `SELECT instance, count() AS rows, uniqExact(time) AS n FROM profiles WHERE ${where} GROUP BY instance`,
    params,
  );
  const profiles = perInstance.reduce((a, r) => a + Number(r.n), 0);
  const merged: MergedProfile = { query: q, profiles, instances: perInstance.length, stacks: [] };
  if (profiles === 0) return merged;
  params.instances = perInstance.map((r) => r.instance);
  params.counts = perInstance.map((r) => Number(r.n));
  const duplicates = perInstance.some((r) => r.rows !== r.n);
  const rows = await store.query<{ functions: string[]; files: string[]; lines: number[]; objects: number; bytes: number }>(
    `SELECT s.functions AS functions, s.files AS files, s.lines AS lines, m.objects AS objects, m.bytes AS bytes
     FROM (
       SELECT stack_id, sum(o) AS objects, sum(b) AS bytes
       FROM (
         SELECT stack_ids, arrayMap(x -> x / w, stack_objects) AS os, arrayMap(x -> x / w, stack_bytes) AS bs
         FROM (
           SELECT stack_ids, stack_objects, stack_bytes,
                  transform(instance, {instances:Array(String)}, {counts:Array(Float64)}, 1.) AS w
           FROM profiles WHERE ${where}${duplicates ? '\n           LIMIT 1 BY instance, time' : ''}
         )
       )
       ARRAY JOIN stack_ids AS stack_id, os AS o, bs AS b
       GROUP BY stack_id
     ) AS m
     GLOBAL INNER JOIN (
       SELECT stack_id, any(functions) AS functions, any(files) AS files, any(lines) AS lines
       FROM stacks WHERE service = {service:String} GROUP BY stack_id
     ) AS s USING (stack_id)`,
    params,
  );
  merged.stacks = rows.map((r) => ({ functions: r.functions, files: r.files, lines: r.lines, objects: Number(r.objects), bytes: Number(r.bytes) }));
  return merged;
}

/**
 * The base of a diff profile: its stacks go in negated, scaled by `scale`
 * ([objects, bytes]), each sample labelled `pprof::base=true`. That is what
 * `go tool pprof -diff_base` builds in memory, so such a file read on its own
 * shows new minus base, with percentages of the new profile.
 */
export interface DiffBase {
  profile: MergedProfile;
  scale: readonly [number, number];
}

/** Encodes a merged profile (minus `base`, for a diff) as gzipped pprof with the agent's sample types. */
export async function toPprof(m: MergedProfile, base?: DiffBase): Promise<Buffer> {
  const strings = new StringTable();
  const functions = new Map<string, PFunction>();
  const locations = new Map<string, Location>();
  const samples: Sample[] = [];
  const locationOf = (name: string, file: string, line: number): Location => {
    const fnKey = `${name}\0${file}`;
    let fn = functions.get(fnKey);
    if (!fn) {
      fn = new PFunction({
        id: functions.size + 1,
        name: strings.dedup(name),
        systemName: strings.dedup(name),
        filename: strings.dedup(file),
        startLine: line,
      });
      functions.set(fnKey, fn);
    }
    const locKey = `${fnKey}\0${line}`;
    let loc = locations.get(locKey);
    if (!loc) {
      loc = new Location({ id: locations.size + 1, line: [new Line({ functionId: fn.id, line })] });
      locations.set(locKey, loc);
    }
    return loc;
  };
  const baseLabel = base ? [new Label({ key: strings.dedup('pprof::base'), str: strings.dedup('true') })] : [];
  const addSamples = (stacks: readonly MergedStack[], k: readonly [number, number], label: Label[]): void => {
    for (const s of stacks) {
      const objects = Math.round(s.objects * k[0]);
      const bytes = Math.round(s.bytes * k[1]);
      if (objects === 0 && bytes === 0) continue;
      samples.push(
        new Sample({
          locationId: s.functions.map((name, i) => locationOf(name, s.files[i] ?? '', s.lines[i] ?? 0).id),
          value: [objects, bytes],
          label,
        }),
      );
    }
  };
  addSamples(m.stacks, [1, 1], []);
  if (base) addSamples(base.profile.stacks, [-base.scale[0], -base.scale[1]], baseLabel);
  const what = `in-use memory averaged over ${m.profiles} snapshots per instance, summed over ${m.instances} instances`;
  const profile = new Profile({
    sampleType: [
      new ValueType({ type: strings.dedup('objects'), unit: strings.dedup('count') }),
      new ValueType({ type: strings.dedup('space'), unit: strings.dedup('bytes') }),
    ],
    periodType: new ValueType({ type: strings.dedup('space'), unit: strings.dedup('bytes') }),
    defaultSampleType: strings.dedup('space'),
    sample: samples,
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: strings,
    timeNanos: BigInt(m.query.fromMs) * 1_000_000n,
    durationNanos: BigInt(Math.max(0, m.query.toMs - m.query.fromMs)) * 1_000_000n,
    comment: [
      strings.dedup(
        base
          ? `heapwatch diff: ${m.query.service}, ${what}, minus the base (${isoRange(base.profile.query)}, ${base.profile.profiles} snapshots) scaled by ${base.scale[1].toPrecision(4)} (bytes)`
          : `heapwatch: ${m.query.service}, ${what}`,
      ),
    ],
  });
  return gzip(profile.encode());
}

function isoRange(q: ProfileQuery): string {
  return `${new Date(q.fromMs).toISOString()} to ${new Date(q.toMs).toISOString()}`;
}
