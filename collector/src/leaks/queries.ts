/**
 * All the SQL of the leak detector. Reads join samples to the `profiles`
 * commit marker (a profile without its profiles row is invisible), collapse
 * ReplacingMergeTree duplicates with GROUP BY + any(), and carry 64-bit ids
 * as strings (toString) because JSON.parse rounds UInt64 (FACTS.md).
 */
import type { ClickHouseClient } from '@clickhouse/client';

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

/** In-use bytes per (instance, profile time, site) since `sinceMs`. */
export async function readSitePoints(client: ClickHouseClient, service: string, sinceMs: number): Promise<SitePoint[]> {
  const r = await rows<Record<string, string | number>>(
    client,
    `SELECT s.instance AS instance, toUnixTimestamp64Milli(s.time) AS t, toString(st.site_id) AS site,
            sum(s.bytes) AS bytes
       FROM (SELECT instance, stack_id, time, any(bytes) AS bytes FROM samples
              WHERE service = {service:String} AND time >= fromUnixTimestamp64Milli({since:Int64})
              GROUP BY instance, stack_id, time) AS s
       INNER JOIN (SELECT stack_id, any(site_id) AS site_id FROM stacks
                    WHERE service = {service:String} GROUP BY stack_id) AS st
         ON s.stack_id = st.stack_id
      GROUP BY instance, t, site`,
    { service, since: sinceMs },
  );
  return r.map((x) => ({ instance: String(x.instance), timeMs: Number(x.t), siteId: String(x.site), bytes: Number(x.bytes) }));
}

export interface SiteDetail {
  siteId: string;
  function: string;
  file: string;
  line: number;
  /** The site's heaviest stack since `sinceMs`, leaf first. */
  functions: string[];
  files: string[];
  lines: number[];
}

export async function readSiteDetails(
  client: ClickHouseClient,
  service: string,
  siteIds: readonly string[],
  sinceMs: number,
): Promise<SiteDetail[]> {
  if (siteIds.length === 0) return [];
  const r = await rows<Record<string, unknown>>(
    client,
    `SELECT site, any(fn) AS fn, any(file) AS file, any(line) AS line,
            argMax(functions, b) AS functions, argMax(files, b) AS files, argMax(lines, b) AS lines
       FROM (SELECT toString(st.site_id) AS site, st.site_function AS fn, st.site_file AS file, st.site_line AS line,
                    st.functions AS functions, st.files AS files, st.lines AS lines, s.b AS b
               FROM (SELECT stack_id, max(bytes) AS b FROM samples
                      WHERE service = {service:String} AND time >= fromUnixTimestamp64Milli({since:Int64})
                      GROUP BY stack_id) AS s
               INNER JOIN (SELECT stack_id, any(site_id) AS site_id, any(site_function) AS site_function,
                                  any(site_file) AS site_file, any(site_line) AS site_line,
                                  any(functions) AS functions, any(files) AS files, any(lines) AS lines
                             FROM stacks WHERE service = {service:String} GROUP BY stack_id) AS st
                 ON s.stack_id = st.stack_id
              WHERE toString(st.site_id) IN {ids:Array(String)})
      GROUP BY site`,
    { service, since: sinceMs, ids: siteIds },
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
