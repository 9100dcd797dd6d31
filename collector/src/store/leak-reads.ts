/**
 * The leak detector's reads and its findings. A profile's stack values are
 * arrays in its `profiles` row (schema.ts), so a profile is visible whole or
 * not at all; reads collapse ReplacingMergeTree duplicates (GROUP BY +
 * any(), LIMIT 1 BY) and carry 64-bit ids as strings.
 */
import { TupleParam } from '@clickhouse/client';
import { NON_CANDIDATE_SITE_IDS, type Frame } from '../model/site';
import { chTime, uint64Array, uint64Set, type Sql } from './sql';
import { framesOf, type StackFramesRow, type StackSites } from './stack-sites';
import type { FindingCounts, ProfileJobs, ProfilePoint, ProfileWindow, SiteDetail, SitePoint } from './store';

/**
 * The WHERE clause selecting exactly the `profiles` rows of `window`, with
 * its parameters. The instance list and time range let the primary key
 * (service, instance, time) skip everything else; the (instance, time)
 * pairs then keep only the window's profiles, so an instance's older
 * profiles (the detector looks at its last maxProfiles only) are not read.
 */
function windowSelection(tenant: string, service: string, window: ProfileWindow, params: Record<string, unknown>): string {
  params.tenant = tenant;
  params.service = service;
  params.instances = [...new Set(window.map((p) => p.instance))];
  params.from = window.reduce((m, p) => Math.min(m, p.timeMs), Infinity);
  params.to = window.reduce((m, p) => Math.max(m, p.timeMs), -Infinity);
  params.pairs = window.map((p) => new TupleParam([p.instance, p.timeMs]));
  return `tenant = {tenant:String} AND service = {service:String} AND instance IN {instances:Array(String)}
        AND time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND time <= fromUnixTimestamp64Milli({to:Int64}, 'UTC')
        AND (instance, toUnixTimestamp64Milli(time)) IN {pairs:Array(Tuple(String, Int64))}`;
}

/** A profile's job arrays as ProfileJobs; undefined where it has none. */
function jobsOf(x: Record<string, unknown>): ProfileJobs | undefined {
  const queues = (x.jq as string[] | undefined) ?? [];
  const dropped = Number(x.jd ?? 0);
  if (queues.length === 0 && dropped === 0) return undefined;
  const n = (k: string, i: number): number => Number((x[k] as number[] | undefined)?.[i] ?? 0);
  const names = (x.jn as string[] | undefined) ?? [];
  const dq = (x.dq as string[] | undefined) ?? [];
  return {
    types: queues.map((queue, i) => ({
      queue,
      name: names[i] ?? '',
      completed: n('jc', i),
      failed: n('jf', i),
      runTimeUs: n('jr', i),
      waitTimeMs: n('jw', i),
      waited: n('jwn', i),
    })),
    dropped,
    depths: dq.map((queue, i) => ({ queue, waiting: n('dw', i) })),
  };
}

export class LeakReads {
  constructor(
    private readonly sql: Sql,
    private readonly stackSites: StackSites,
  ) {}

  async profilePoints(tenant: string, service: string, maxProfiles: number, lookbackMs: number): Promise<ProfilePoint[]> {
    const r = await this.sql.rows<Record<string, string | number | string[] | number[]>>(
      `SELECT instance, toUnixTimestamp64Milli(time) AS t,
              any(heap_used_bytes) AS heap, any(external_bytes) AS ext, any(heap_size_limit_bytes) AS lim,
              any(gc_major_gcs) AS gcs, any(gc_after_major_gc) AS post, any(inlining_disabled) AS inl,
              any(job_queues) AS jq, any(job_names) AS jn,
              arrayMap(x -> toFloat64(x), any(jobs_completed)) AS jc, arrayMap(x -> toFloat64(x), any(jobs_failed)) AS jf,
              arrayMap(x -> toFloat64(x), any(job_run_time_us)) AS jr, arrayMap(x -> toFloat64(x), any(job_wait_time_ms)) AS jw,
              arrayMap(x -> toFloat64(x), any(jobs_waited)) AS jwn, toFloat64(any(jobs_dropped)) AS jd,
              any(queue_depth_queues) AS dq, arrayMap(x -> toFloat64(x), any(queue_depth_waiting)) AS dw
         FROM profiles
        WHERE tenant = {tenant:String} AND service = {service:String}
          AND time >= (SELECT max(time) FROM profiles WHERE tenant = {tenant:String} AND service = {service:String})
                       - toIntervalMillisecond({lookback:Int64})
        GROUP BY instance, t
        ORDER BY instance, t DESC
        LIMIT {max:UInt32} BY instance`,
      { tenant, service, max: maxProfiles, lookback: lookbackMs },
    );
    return r
      .map((x) => ({
        instance: String(x.instance),
        timeMs: Number(x.t),
        heapUsedBytes: Number(x.heap),
        externalBytes: Number(x.ext),
        heapSizeLimitBytes: Number(x.lim),
        majorGcs: Number(x.gcs),
        afterMajorGc: Number(x.post) === 1,
        inliningDisabled: Number(x.inl) === 1,
        jobs: jobsOf(x),
      }))
      .sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : a.timeMs - b.timeMs));
  }

  /**
   * A profile's values are arrays in its row, and the window is a few
   * hundred rows, so the engine maps each row's stack ids to sites and sums
   * them per site without unrolling: `transform` over the stack -> site map
   * (site indexes, decided in JS by stack-sites.ts and sent inline), then
   * `sumMap` of that row's (site, bytes) pairs. What comes back is one row
   * per profile with two arrays.
   *
   * Measured on the bench store (6 instances x 1,440 profiles x 2,000
   * stacks; window 6 x 120 profiles; 455 sites): unrolling the window's
   * arrays and joining them to the map costs ~0.4-0.5 s of CPU; this ~0.3 s,
   * the per-row sumMap most of it.
   */
  async sitePoints(tenant: string, service: string, window: ProfileWindow): Promise<SitePoint[]> {
    if (window.length === 0) return [];
    const { ids, sites } = await this.stackSites.of(tenant, service);
    // The agent's own allocations and the (external) gauge are never leak
    // candidates (model/site.ts): their stacks map to index 0, left out.
    const siteList: string[] = [];
    const indexOf = new Map<string, number>();
    const index = sites.map((s) => {
      if (NON_CANDIDATE_SITE_IDS.has(s.id)) return 0;
      let k = indexOf.get(s.id);
      if (k === undefined) indexOf.set(s.id, (k = siteList.push(s.id)));
      return k;
    });
    if (siteList.length === 0) return [];
    const params: Record<string, unknown> = {};
    const where = windowSelection(tenant, service, window, params);
    // toFloat64: Int64 comes back as a quoted string; times in ms and a
    // site's bytes are far below 2^53.
    const r = await this.sql.rows<{ instance: string; t: number; k: number[]; b: number[] }>(
      `WITH ${uint64Array(ids)} AS stack_ids_map, CAST([${index.join(',')}], 'Array(UInt32)') AS site_index
       SELECT instance, toFloat64(toUnixTimestamp64Milli(time)) AS t, kb.1 AS k, kb.2 AS b
         FROM (
           SELECT instance, time,
                  arrayReduce('sumMap', [arrayMap(id -> transform(id, stack_ids_map, site_index, toUInt32(0)), stack_ids)],
                                        [arrayMap(x -> toFloat64(x), stack_bytes)]) AS kb
             FROM profiles
            WHERE ${where}
            LIMIT 1 BY instance, time
         )`,
      params,
      true,
    );
    const out: SitePoint[] = [];
    for (const x of r) {
      const instance = String(x.instance);
      const timeMs = Number(x.t);
      for (let i = 0; i < x.k.length; i++) {
        const siteId = siteList[Number(x.k[i]) - 1]; // 0 is a stack left out
        if (siteId !== undefined) out.push({ instance, timeMs, siteId, bytes: Number(x.b[i]) });
      }
    }
    return out;
  }

  /**
   * The frame of each site and its heaviest stack (largest in-use bytes in
   * any one profile of `window`): the window's arrays are read once, and
   * only the stacks of those sites survive the unroll.
   */
  async siteDetails(tenant: string, service: string, siteIds: readonly string[], window: ProfileWindow): Promise<SiteDetail[]> {
    if (siteIds.length === 0 || window.length === 0) return [];
    const wanted = new Set(siteIds);
    const { ids, sites } = await this.stackSites.of(tenant, service);
    const siteOfStack = new Map<string, (typeof sites)[number]>();
    ids.forEach((id, i) => {
      if (wanted.has(sites[i]!.id)) siteOfStack.set(id, sites[i]!);
    });
    if (siteOfStack.size === 0) return [];
    const params: Record<string, unknown> = {};
    const where = windowSelection(tenant, service, window, params);
    const heaviest = await this.sql.rows<{ id: string; b: number }>(
      `SELECT toString(stack_id) AS id, toFloat64(max(b)) AS b
         FROM (SELECT stack_ids, stack_bytes FROM profiles WHERE ${where})
         ARRAY JOIN stack_ids AS stack_id, stack_bytes AS b
        WHERE stack_id IN ${uint64Set([...siteOfStack.keys()])}
        GROUP BY stack_id`,
      params,
      true,
    );
    const best = new Map<string, { id: string; b: number }>();
    for (const h of heaviest) {
      const site = siteOfStack.get(h.id)!;
      const prev = best.get(site.id);
      if (!prev || h.b > prev.b) best.set(site.id, h);
    }
    if (best.size === 0) return [];
    const stacks = await this.sql.rows<StackFramesRow & { id: string }>(
      `SELECT toString(stack_id) AS id, any(functions) AS functions, any(files) AS files, any(lines) AS lines
         FROM stacks WHERE tenant = {tenant:String} AND service = {service:String} AND stack_id IN ${uint64Set([...best.values()].map((h) => h.id))}
        GROUP BY stack_id`,
      { tenant, service },
      true,
    );
    const frames = new Map<string, Frame[]>(stacks.map((s) => [s.id, framesOf(s)]));
    return [...best].map(([siteId, h]) => ({ siteId, site: siteOfStack.get(h.id)!.frame, stack: frames.get(h.id) ?? [] }));
  }

  async writeFinding(tenant: string, service: string, evaluatedAtMs: number, report: string): Promise<void> {
    await this.sql.insert('findings', [{ tenant, service, evaluated_at: chTime(evaluatedAtMs), report }], 'JSONEachRow');
  }

  /**
   * The newest evaluation of each service is found from the small columns
   * (tenant, service, evaluated_at: the table's sort key), and only those rows'
   * report text is read, by ClickHouse's JSONLength rather than parsed here.
   */
  async findingCounts(tenant: string): Promise<FindingCounts[]> {
    const rows = await this.sql.rows<{ service: string; t: number; leaks: number; process: number }>(
      `SELECT service, toFloat64(toUnixTimestamp64Milli(evaluated_at)) AS t,
              JSONLength(report, 'leaks') AS leaks, JSONLength(report, 'process') AS process
         FROM findings
        WHERE tenant = {tenant:String}
          AND (service, evaluated_at) IN (SELECT service, max(evaluated_at) FROM findings WHERE tenant = {tenant:String} GROUP BY service)
        ORDER BY service, evaluated_at DESC
        LIMIT 1 BY service`,
      { tenant },
    );
    return rows.map((r) => ({
      service: r.service,
      evaluatedAt: new Date(Number(r.t)).toISOString(),
      leaks: Number(r.leaks),
      process: Number(r.process),
    }));
  }

  async latestFinding(tenant: string, service: string): Promise<string | null> {
    const r = await this.sql.rows<{ report: string }>(
      `SELECT report FROM findings WHERE tenant = {tenant:String} AND service = {service:String} ORDER BY evaluated_at DESC LIMIT 1`,
      { tenant, service },
    );
    return r[0]?.report ?? null;
  }
}
