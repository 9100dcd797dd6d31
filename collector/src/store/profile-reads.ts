/**
 * The reads of profiles as such: stored ids (retries), services, and the
 * merged profile of a service over a time range.
 *
 * Heap profiles are gauges: each snapshot already holds everything in use
 * at its moment, so summing snapshots over time would count the same bytes
 * once per snapshot. The merge averages each instance over its snapshots in
 * the range, then sums the instances (docs/storage.md).
 */
import { BUCKET_MS, complement, inRanges, ROLLUP_TABLE, rollupRanges, type Ranges } from './rollup';
import type { Sql } from './sql';
import { profileKeyString, type MergedProfile, type ProfileKey, type ProfileQuery, type ProfileSelection, type ServiceSummary, type TenantService } from './store';

/**
 * Label filters that also match the profile's own instance fields, so a
 * profile can be narrowed to one worker thread or one instance without the
 * agent sending them as labels: `thread` is the instance's thread id (0 for
 * the main thread, as `worker_threads.threadId`), `instance` the instance
 * key the leak report names. A user label of the same name matches too.
 */
const PSEUDO_LABELS: Readonly<Record<string, (param: string) => string>> = {
  thread: (p) => `thread_id = toUInt32OrNull({${p}:String})`,
  instance: (p) => `instance = {${p}:String}`,
};

/** The WHERE clause of the tenant's profiles a selection selects (every service when it names none), with its parameters. */
export function selection(tenant: string, q: ProfileSelection, params: Record<string, unknown>): string {
  params.from = q.fromMs;
  params.to = q.toMs;
  return `${selectionFilter(tenant, q, params)}
      AND time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
      AND time <= fromUnixTimestamp64Milli({to:Int64}, 'UTC')`;
}

/** The selection but its time range: what `profiles` and the rollup (store/rollup.ts) are both filtered by. */
function selectionFilter(tenant: string, q: ProfileSelection, params: Record<string, unknown>): string {
  params.tenant = tenant;
  const labelFilter = Object.entries(q.labels)
    .map(([k, v], i) => {
      params[`lk${i}`] = k;
      params[`lv${i}`] = v;
      const label = `labels[{lk${i}:String}] = {lv${i}:String}`;
      const pseudo = PSEUDO_LABELS[k];
      return pseudo ? ` AND (${label} OR ${pseudo(`lv${i}`)})` : ` AND ${label}`;
    })
    .join('');
  let service = '';
  if (q.service !== undefined) {
    params.service = q.service;
    service = ' AND service = {service:String}';
  }
  return `tenant = {tenant:String}${service}${labelFilter}`;
}

export class ProfileReads {
  constructor(private readonly sql: Sql) {}

  async storedProfiles(keys: readonly ProfileKey[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    // tenant, service and instance lead the sort key, so only those instances' rows are read.
    const rows = await this.sql.rows<{ tenant: string; service: string; instance: string; profile_id: string }>(
      `SELECT DISTINCT tenant, service, instance, profile_id FROM profiles
        WHERE tenant IN {tenants:Array(String)} AND service IN {services:Array(String)}
          AND instance IN {instances:Array(String)} AND profile_id IN {ids:Array(String)}`,
      {
        tenants: [...new Set(keys.map((k) => k.tenant))],
        services: [...new Set(keys.map((k) => k.service))],
        instances: [...new Set(keys.map((k) => k.instance))],
        ids: keys.map((k) => k.profileId),
      },
    );
    return new Set(rows.map((r) => profileKeyString({ tenant: r.tenant, service: r.service, instance: r.instance, profileId: r.profile_id })));
  }

  async services(tenant: string): Promise<ServiceSummary[]> {
    const rows = await this.sql.rows<{ service: string; instances: string; profiles: string; first: string; last: string }>(
      `SELECT service, uniqExact(instance) AS instances, count() AS profiles,
              toUnixTimestamp64Milli(min(time)) AS first, toUnixTimestamp64Milli(max(time)) AS last
       FROM profiles FINAL WHERE tenant = {tenant:String} GROUP BY service ORDER BY service`,
      { tenant },
    );
    return rows.map((r) => ({
      service: r.service,
      instances: Number(r.instances),
      profiles: Number(r.profiles),
      firstSeen: new Date(Number(r.first)).toISOString(),
      lastSeen: new Date(Number(r.last)).toISOString(),
    }));
  }

  async activeServices(sinceMs: number, limit: number): Promise<TenantService[]> {
    const rows = await this.sql.rows<TenantService>(
      `SELECT DISTINCT tenant, service FROM profiles
        WHERE time >= fromUnixTimestamp64Milli({since:Int64})
        ORDER BY tenant, service LIMIT {limit:UInt32}`,
      { since: sinceMs, limit },
    );
    return rows.map((x) => ({ tenant: x.tenant, service: x.service }));
  }

  async serviceExists(tenant: string, service: string): Promise<boolean> {
    const rows = await this.sql.rows<{ n: string }>(
      'SELECT count() AS n FROM (SELECT 1 FROM profiles WHERE tenant = {tenant:String} AND service = {service:String} LIMIT 1)',
      { tenant, service },
    );
    return Number(rows[0]?.n ?? 0) > 0;
  }

  /**
   * Each instance's stack values summed over its profiles in the range
   * (exact, Int64), divided once by its profile count, then the instances
   * added in the order of their names, so the result does not depend on
   * which rows came from the rollup.
   *
   * Whole hours that the rollup answers (store/rollup.ts) are read from
   * it, the rest from `profiles`. Where the time went before the rollup
   * (24 h, 6 instances x 1,440 profiles x 2,000 stacks, engine CPU): the
   * ARRAY JOIN of every profile's arrays and the GROUP BY over them,
   * 0.5-1 s; with it, 23 of the 24 hours are 138 rollup rows.
   *
   * The counts come first, per instance and hour, from the small columns
   * only; should a retry have been stored twice before the
   * ReplacingMergeTree merged it (rows > distinct times), one profile per
   * (instance, time) counts.
   */
  async mergedProfile(tenant: string, q: ProfileQuery): Promise<MergedProfile> {
    const params: Record<string, unknown> = {};
    const filter = selectionFilter(tenant, q, params);
    const raw = (
      await this.sql.rows<{ instance: string; h: string; rows: string; n: string }>(
        `SELECT instance, toUnixTimestamp(toDateTime(toStartOfHour(time), 'UTC')) AS h, count() AS rows, uniqExact(time) AS n
           FROM profiles WHERE ${selection(tenant, q, params)} GROUP BY instance, h`,
        params,
      )
    ).map((r) => ({ instance: r.instance, hourMs: Number(r.h) * 1000, rows: Number(r.rows), distinct: Number(r.n) }));
    const perInstance = new Map<string, number>();
    for (const b of raw) perInstance.set(b.instance, (perInstance.get(b.instance) ?? 0) + b.distinct);
    const instances = [...perInstance.keys()].sort();
    const profiles = raw.reduce((a, b) => a + b.distinct, 0);
    const merged: MergedProfile = { query: q, profiles, instances: instances.length, stacks: [], profilesFromRollup: 0 };
    if (profiles === 0) return merged;
    params.instances = instances;
    params.counts = instances.map((i) => perInstance.get(i)!);

    let rolledRanges: Ranges = [];
    if (q.toMs - q.fromMs >= BUCKET_MS) {
      const whole = rollupRanges(q.fromMs, q.toMs, [], []);
      if (whole.length) {
        const rolled = await this.sql.rows<{ instance: string; h: string; p: string }>(
          `SELECT instance, toUnixTimestamp(hour) AS h, sum(profiles) AS p FROM ${ROLLUP_TABLE}
            WHERE ${filter} AND (${inRanges('hour', whole)}) GROUP BY instance, h`,
          params,
        );
        rolledRanges = rollupRanges(
          q.fromMs,
          q.toMs,
          raw,
          rolled.map((r) => ({ instance: r.instance, hourMs: Number(r.h) * 1000, profiles: Number(r.p) })),
        );
      }
    }
    const rawRanges = complement(q.fromMs, q.toMs, rolledRanges);
    const ix = 'toUInt32(indexOf({instances:Array(String)}, instance))';
    const parts: string[] = [];
    if (rolledRanges.length) {
      merged.profilesFromRollup = raw
        .filter((b) => rolledRanges.some(([a, e]) => b.hourMs >= a && b.hourMs < e))
        .reduce((a, b) => a + b.distinct, 0);
      parts.push(`SELECT ${ix} AS ix, stack_ids AS ids, stack_objects AS os, stack_bytes AS bs FROM ${ROLLUP_TABLE}
             WHERE ${filter} AND (${inRanges('hour', rolledRanges)})`);
    }
    if (rawRanges.length) {
      const duplicates = raw.some((b) => b.rows !== b.distinct && rawRanges.some(([a, e]) => b.hourMs + BUCKET_MS > a && b.hourMs < e));
      parts.push(`SELECT ${ix} AS ix, stack_ids AS ids, stack_objects AS os, stack_bytes AS bs FROM profiles
             WHERE ${filter} AND (${inRanges('time', rawRanges)})${duplicates ? '\n             LIMIT 1 BY instance, time' : ''}`);
    }
    const rows = await this.sql.rows<{ functions: string[]; files: string[]; lines: number[]; objects: number; bytes: number }>(
      `SELECT s.functions AS functions, s.files AS files, s.lines AS lines, m.objects AS objects, m.bytes AS bytes
       FROM (
         SELECT stack_id,
                arraySum(arrayMap(t -> t.2, arraySort(t -> t.1, groupArray((ix, so / w))))) AS objects,
                arraySum(arrayMap(t -> t.2, arraySort(t -> t.1, groupArray((ix, sb / w))))) AS bytes
         FROM (
           SELECT ix, stack_id, sum(o) AS so, sum(b) AS sb, {counts:Array(Float64)}[ix] AS w
           FROM (${parts.join('\n             UNION ALL\n             ')})
           ARRAY JOIN ids AS stack_id, os AS o, bs AS b
           GROUP BY ix, stack_id
           HAVING so != 0 OR sb != 0
         )
         GROUP BY stack_id
       ) AS m
       GLOBAL INNER JOIN (
         SELECT stack_id, any(functions) AS functions, any(files) AS files, any(lines) AS lines
         FROM stacks WHERE tenant = {tenant:String} AND service = {service:String} GROUP BY stack_id
       ) AS s USING (stack_id)`,
      params,
    );
    merged.stacks = rows.map((r) => ({ functions: r.functions, files: r.files, lines: r.lines, objects: Number(r.objects), bytes: Number(r.bytes) }));
    return merged;
  }
}
