/**
 * The reads of profiles as such: stored ids (retries), services, and the
 * merged profile of a service over a time range.
 *
 * Heap profiles are gauges: each snapshot already holds everything in use
 * at its moment, so summing snapshots over time would count the same bytes
 * once per snapshot. The merge averages each instance over its snapshots in
 * the range, then sums the instances (docs/storage.md).
 */
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
  params.tenant = tenant;
  params.from = q.fromMs;
  params.to = q.toMs;
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
  return `tenant = {tenant:String}${service}
      AND time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
      AND time <= fromUnixTimestamp64Milli({to:Int64}, 'UTC')${labelFilter}`;
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
   * (instance, time) counts, at ~30 % more cost.
   */
  async mergedProfile(tenant: string, q: ProfileQuery): Promise<MergedProfile> {
    const params: Record<string, unknown> = {};
    const where = selection(tenant, q, params);
    const perInstance = await this.sql.rows<{ instance: string; rows: string; n: string }>(
      `SELECT instance, count() AS rows, uniqExact(time) AS n FROM profiles WHERE ${where} GROUP BY instance`,
      params,
    );
    const profiles = perInstance.reduce((a, r) => a + Number(r.n), 0);
    const merged: MergedProfile = { query: q, profiles, instances: perInstance.length, stacks: [] };
    if (profiles === 0) return merged;
    params.instances = perInstance.map((r) => r.instance);
    params.counts = perInstance.map((r) => Number(r.n));
    const duplicates = perInstance.some((r) => r.rows !== r.n);
    const rows = await this.sql.rows<{ functions: string[]; files: string[]; lines: number[]; objects: number; bytes: number }>(
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
         FROM stacks WHERE tenant = {tenant:String} AND service = {service:String} GROUP BY stack_id
       ) AS s USING (stack_id)`,
      params,
    );
    merged.stacks = rows.map((r) => ({ functions: r.functions, files: r.files, lines: r.lines, objects: Number(r.objects), bytes: Number(r.bytes) }));
    return merged;
  }
}
