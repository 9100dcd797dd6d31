/**
 * All the SQL of the leak detector. A profile's stack values are arrays in
 * its `profiles` row (store/schema.ts), so a profile is visible whole or not
 * at all; reads collapse ReplacingMergeTree duplicates (GROUP BY + any(),
 * LIMIT 1 BY) and carry 64-bit ids as strings (toString) because JSON.parse
 * rounds UInt64 (FACTS.md).
 */
import { TupleParam, type ClickHouseClient } from '@clickhouse/client';
import { NON_CANDIDATE_SITE_IDS } from './site';

async function rows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<T[]> {
  const rs = await client.query({
    query,
    query_params: params,
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
  });
  return rs.json<T>();
}

/** Services with a profile newer than `sinceMs`, at most `limit` of them. */
export async function listServices(client: ClickHouseClient, sinceMs: number, limit: number): Promise<string[]> {
  const r = await rows<{ service: string }>(
    client,
    `SELECT DISTINCT service FROM profiles
      WHERE time >= fromUnixTimestamp64Milli({since:Int64})
      ORDER BY service LIMIT {limit:UInt32}`,
    { since: sinceMs, limit },
  );
  return r.map((x) => x.service);
}

export interface ProfilePoint {
  instance: string;
  timeMs: number;
  heapUsedBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  heapSizeLimitBytes: number;
  /** Major GCs the agent had seen (cumulative); 0 from agents that do not report GCs. */
  majorGcs: number;
  /** Taken right after a major GC: no old-space garbage in it. */
  afterMajorGc: boolean;
  /** Taken in precise mode, with inlining off (false from agents that predate it). */
  inliningDisabled?: boolean;
}

/**
 * The last `maxProfiles` profiles of every instance of `service` whose
 * newest profile is at most `lookbackMs` older than the service's newest,
 * oldest first within an instance.
 */
export async function readProfiles(
  client: ClickHouseClient,
  service: string,
  maxProfiles: number,
  lookbackMs: number,
): Promise<ProfilePoint[]> {
  const r = await rows<Record<string, string | number>>(
    client,
    `SELECT instance, toUnixTimestamp64Milli(time) AS t,
            any(heap_used_bytes) AS heap, any(external_bytes) AS ext,
            any(array_buffers_bytes) AS ab, any(heap_size_limit_bytes) AS lim,
            any(gc_major_gcs) AS gcs, any(gc_after_major_gc) AS post
       FROM profiles
      WHERE service = {service:String}
        AND time >= (SELECT max(time) FROM profiles WHERE service = {service:String})
                     - toIntervalMillisecond({lookback:Int64})
      GROUP BY instance, t
      ORDER BY instance, t DESC
      LIMIT {max:UInt32} BY instance`,
    { service, max: maxProfiles, lookback: lookbackMs },
  );
  return r
    .map((x) => ({
      instance: String(x.instance),
      timeMs: Number(x.t),
      heapUsedBytes: Number(x.heap),
      externalBytes: Number(x.ext),
      arrayBuffersBytes: Number(x.ab),
      heapSizeLimitBytes: Number(x.lim),
      majorGcs: Number(x.gcs),
      afterMajorGc: Number(x.post) === 1,
    }))
    .sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : a.timeMs - b.timeMs));
}

export interface SitePoint {
  instance: string;
  timeMs: number;
  siteId: string;
  bytes: number;
}

/** The profiles a site read covers: readProfiles' window (other fields are ignored). */
export type ProfileWindow = readonly Pick<ProfilePoint, 'instance' | 'timeMs'>[];

/**
 * The WHERE clause selecting exactly the `profiles` rows of `window`, with
 * its parameters. The instance list and time range let the primary key
 * (service, instance, time) skip everything else; the (instance, time)
 * pairs then keep only the window's profiles, so an instance's older
 * profiles (the detector looks at its last maxProfiles only) are not read.
 */
function windowSelection(service: string, window: ProfileWindow, params: Record<string, unknown>): string {
  params.service = service;
  params.instances = [...new Set(window.map((p) => p.instance))];
  params.from = window.reduce((m, p) => Math.min(m, p.timeMs), Infinity);
  params.to = window.reduce((m, p) => Math.max(m, p.timeMs), -Infinity);
  params.pairs = window.map((p) => new TupleParam([p.instance, p.timeMs]));
  return `service = {service:String} AND instance IN {instances:Array(String)}
        AND time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND time <= fromUnixTimestamp64Milli({to:Int64}, 'UTC')
        AND (instance, toUnixTimestamp64Milli(time)) IN {pairs:Array(Tuple(String, Int64))}`;
}

/** The service's stack -> site map, as two parallel arrays (a scalar, computed once per query). */
const STACK_SITES = `(SELECT (groupArray(stack_id), groupArray(site_id))
        FROM (SELECT stack_id, any(site_id) AS site_id FROM stacks WHERE service = {service:String} GROUP BY stack_id))`;

/**
 * In-use bytes per (instance, profile time, site) over the profiles of
 * `window`. Sites the sampler saw nothing of in a profile have no point
 * there (the detector reads that as 0).
 *
 * A profile's values are arrays in its row (store/schema.ts), and the
 * window is a few hundred rows, so the engine maps each row's stack ids to
 * sites and sums them per site without unrolling: `transform` over the
 * service's stack -> site map (a hash lookup per value), then `sumMap` of
 * that row's (site, bytes) pairs. What comes back is one row per profile
 * with two arrays, sites as small integers: indexes into the site list read
 * first (the list is passed back in, so a site stored between the two
 * queries cannot shift the indexes; its stacks are left out until the next
 * evaluation).
 *
 * Measured on the bench store (6 instances x 1,440 profiles x 2,000 stacks;
 * window 6 x 120 profiles; 455 sites; engine + JS CPU, one process):
 * through the `samples` ARRAY JOIN view, every value since the window's
 * oldest profile unrolled, joined and grouped, 1.6-1.8 s; the window's rows
 * unrolled and joined to the map, grouped per (instance, time, site),
 * ~0.4-0.5 s; unrolled after `transform`, ~0.35 s; this, ~0.3 s (the
 * per-row sumMap is 0.24 s of it, the map lookup 0.03 s).
 */
export async function readSitePoints(client: ClickHouseClient, service: string, window: ProfileWindow): Promise<SitePoint[]> {
  if (window.length === 0) return [];
  const [list] = await rows<{ sites: string[] }>(
    client,
    `SELECT arrayMap(x -> toString(x), arraySort(arrayDistinct(m.2))) AS sites FROM (SELECT ${STACK_SITES} AS m)`,
    { service },
  );
  // The agent's own allocations and the (external) gauge are never leak
  // candidates (site.ts): their stacks map to no listed site and are left out.
  const sites = (list?.sites ?? []).filter((id) => !NON_CANDIDATE_SITE_IDS.has(id));
  if (sites.length === 0) return [];
  const params: Record<string, unknown> = { sites };
  const where = windowSelection(service, window, params);
  // toFloat64: Int64 would come back as a quoted string (FACTS.md); times in
  // ms and a site's bytes are far below 2^53.
  const r = await rows<{ instance: string; t: number; k: number[]; b: number[] }>(
    client,
    `WITH ${STACK_SITES} AS m,
          arrayMap(s -> toUInt32(indexOf(arrayMap(x -> toUInt64(x), {sites:Array(String)}), s)), m.2) AS site_index
     SELECT instance, toFloat64(toUnixTimestamp64Milli(time)) AS t, kb.1 AS k, kb.2 AS b
       FROM (
         SELECT instance, time,
                arrayReduce('sumMap', [arrayMap(id -> transform(id, m.1, site_index, toUInt32(0)), stack_ids)],
                                      [arrayMap(x -> toFloat64(x), stack_bytes)]) AS kb
           FROM profiles
          WHERE ${where}
          LIMIT 1 BY instance, time
       )`,
    params,
  );
  const out: SitePoint[] = [];
  for (const x of r) {
    const instance = String(x.instance);
    const timeMs = Number(x.t);
    for (let i = 0; i < x.k.length; i++) {
      const siteId = sites[Number(x.k[i]) - 1]; // indexOf is 1-based; 0 is a stack newer than the list
      if (siteId !== undefined) out.push({ instance, timeMs, siteId, bytes: Number(x.b[i]) });
    }
  }
  return out;
}

export interface SiteDetail {
  siteId: string;
  function: string;
  file: string;
  line: number;
  /** The site's heaviest stack over the window's profiles, leaf first. */
  functions: string[];
  files: string[];
  lines: number[];
}

/**
 * Frames of the given sites and, for each, its heaviest stack (largest
 * in-use bytes in any one profile of `window`). Reads the window's arrays
 * once, as readSitePoints does; only the stacks of those sites survive the
 * unroll, through a set lookup.
 */
export async function readSiteDetails(
  client: ClickHouseClient,
  service: string,
  siteIds: readonly string[],
  window: ProfileWindow,
): Promise<SiteDetail[]> {
  if (siteIds.length === 0 || window.length === 0) return [];
  const params: Record<string, unknown> = { ids: siteIds };
  const where = windowSelection(service, window, params);
  const r = await rows<Record<string, unknown>>(
    client,
    `SELECT toString(st.sid) AS site, any(st.fn) AS fn, any(st.file) AS file, any(st.line) AS line,
            argMax(st.functions, s.b) AS functions, argMax(st.files, s.b) AS files, argMax(st.lines, s.b) AS lines
       FROM (
         SELECT stack_id, max(b) AS b
           FROM (SELECT stack_ids, stack_bytes FROM profiles WHERE ${where})
           ARRAY JOIN stack_ids AS stack_id, stack_bytes AS b
          WHERE stack_id IN (SELECT stack_id FROM stacks
                              WHERE service = {service:String} AND toString(site_id) IN {ids:Array(String)})
          GROUP BY stack_id
       ) AS s
       GLOBAL INNER JOIN (
         SELECT stack_id, any(site_id) AS sid, any(site_function) AS fn, any(site_file) AS file,
                any(site_line) AS line, any(functions) AS functions, any(files) AS files, any(lines) AS lines
           FROM stacks WHERE service = {service:String} AND toString(site_id) IN {ids:Array(String)} GROUP BY stack_id
       ) AS st USING (stack_id)
      GROUP BY st.sid`,
    params,
  );
  return r.map((x) => ({
    siteId: String(x.site),
    function: String(x.fn),
    file: String(x.file),
    line: Number(x.line),
    functions: (x.functions as unknown[]).map(String),
    files: (x.files as unknown[]).map(String),
    lines: (x.lines as unknown[]).map(Number),
  }));
}

/** ClickHouse DateTime64 text for a JS time: 'YYYY-MM-DD hh:mm:ss.sss' (UTC). */
function chTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

export async function writeFinding(client: ClickHouseClient, service: string, evaluatedAtMs: number, report: string): Promise<void> {
  await client.insert({
    table: 'findings',
    values: [{ service, evaluated_at: chTime(evaluatedAtMs), report }],
    format: 'JSONEachRow',
  });
}

/** The newest stored report JSON of a service, or null. */
export async function readLatestFinding(client: ClickHouseClient, service: string): Promise<string | null> {
  const r = await rows<{ report: string }>(
    client,
    `SELECT report FROM findings WHERE service = {service:String} ORDER BY evaluated_at DESC LIMIT 1`,
    { service },
  );
  return r[0]?.report ?? null;
}
