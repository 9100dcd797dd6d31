/**
 * The hourly rollup of stack values: for each (tenant, service, instance,
 * hour, label set, thread), the number of profiles and, per stack, the sum
 * of their objects and bytes, as one row of arrays. A merge over a long
 * range reads one rollup row per instance-hour instead of that hour's
 * profiles, and the raw rows only where the rollup has no answer.
 *
 * The collector keeps it (`rollUp`, every few minutes and at start): for
 * hours that ended more than `ROLLUP_GRACE_MS` ago, it inserts what makes
 * each instance-hour's rows add up to the raw table's, in one INSERT ...
 * SELECT per hour. Why not a materialized view: measured on the query
 * benchmark's store, a view cost ~10 ms of engine CPU per 2,000-stack
 * profile at ingest (a row per stack, SummingMergeTree) and ~13 ms as a
 * `sumMap` state (AggregatingMergeTree), whose Field-based merge also took
 * 0.35-0.5 s to read a day back: as slow as the raw table. Summing an hour
 * afterwards costs ~1 ms of engine CPU a profile, off the ingest path.
 *
 * The rollup is checked, not trusted: an hour is read from it only where,
 * for every instance, the rollup counts exactly the profiles the raw table
 * holds for that hour, and the raw table holds each of them once. Anything
 * that could make the two disagree (a profile arriving after its hour was
 * summed, a retried insert stored twice before the ReplacingMergeTree
 * merged it, two collectors correcting the same hour, rows expired in one
 * table but not yet in the other) makes the counts differ, and that hour
 * is read raw until a pass corrects it. Sums are integers (Int64), so both
 * ways give the same merge to the last bit (profile-reads.ts).
 */
import { createHash } from 'node:crypto';
import { HOUR_MS, MINUTE_MS } from '../units';
import type { Sql } from './sql';

export const ROLLUP_TABLE = 'profiles_hourly';

/** The bucket: an hour, in ms. */
export const BUCKET_MS = HOUR_MS;

/**
 * Instances whose hour one statement sums: its GROUP BY holds their stacks
 * (5,000 stacks x 64 instances is ~320k groups, tens of MB).
 */
const INSTANCES_PER_STATEMENT = 64;

/** How long after its end an hour is rolled up: profiles a late agent sends within it still count. */
export const ROLLUP_GRACE_MS = 10 * MINUTE_MS;

// Labels are a Map, which cannot be in a sort key: the key holds a hash of
// the sorted pairs, the row keeps the labels themselves for filtering.
export const ROLLUP_COLUMNS_DDL = `
        tenant LowCardinality(String),
        service LowCardinality(String),
        instance String,
        hour DateTime('UTC'),
        labels_key UInt64,
        thread_id UInt32,
        labels Map(LowCardinality(String), String),
        profiles Int64,
        stack_ids Array(UInt64) CODEC(ZSTD(3)),
        stack_objects Array(Int64) CODEC(ZSTD(3)),
        stack_bytes Array(Int64) CODEC(ZSTD(3))`;

const KEY = 'tenant, service, instance, hour, labels_key, thread_id';

const LABELS_KEY = 'cityHash64(toString(arraySort(arrayZip(mapKeys(labels), mapValues(labels)))))';

/**
 * The rows that make the rollup of the hour [fromMs, fromMs + 1 h) equal to
 * the raw table, for the instance-hours matching `which` (SQL on tenant,
 * service, instance): for each (key, stack), the raw sum minus what the
 * rollup holds, and the profile count likewise; keys and stacks whose
 * difference is zero are left out. On an hour not rolled up yet that is
 * the hour's sums; on one summed before all its profiles arrived, the
 * rest; on one counted twice, a negative row. Reads add rows up.
 *
 * A profile with no stacks still counts: LEFT ARRAY JOIN gives it one row
 * (index 0, stack 0 with zero values), and each profile and each rollup
 * row has exactly one row with index <= 1, which carries its count.
 */
export function correctionSelect(fromMs: number, which: string): string {
  const hour = inRanges('time', [[fromMs, fromMs + BUCKET_MS]]);
  const rolledHour = `hour = fromUnixTimestamp64Milli(${Math.trunc(fromMs)}, 'UTC')`;
  return `SELECT ${KEY}, any(l) AS labels, sum(dn) AS profiles,
       groupArrayIf(sid, so != 0 OR sb != 0) AS stack_ids, groupArrayIf(so, so != 0 OR sb != 0) AS stack_objects,
       groupArrayIf(sb, so != 0 OR sb != 0) AS stack_bytes
FROM (
  SELECT ${KEY}, sid, any(lb) AS l, sum(o) AS so, sum(b) AS sb, sum(n) AS dn
  FROM (
    SELECT tenant, service, instance, toDateTime(toStartOfHour(time), 'UTC') AS hour, ${LABELS_KEY} AS labels_key, thread_id,
           labels AS lb, sid, o, b, toInt64(i <= 1) AS n
    FROM profiles
    LEFT ARRAY JOIN stack_ids AS sid, stack_objects AS o, stack_bytes AS b, arrayEnumerate(stack_ids) AS i
    WHERE (${hour}) AND ${which}
    UNION ALL
    SELECT ${KEY}, labels AS lb, sid, -o, -b, if(i <= 1, -profiles, 0) AS n
    FROM ${ROLLUP_TABLE}
    LEFT ARRAY JOIN stack_ids AS sid, stack_objects AS o, stack_bytes AS b, arrayEnumerate(stack_ids) AS i
    WHERE ${rolledHour} AND ${which}
  )
  GROUP BY ${KEY}, sid
)
GROUP BY ${KEY}
HAVING profiles != 0 OR length(stack_ids) > 0`;
}

/** Profiles of one instance in one hour of the selection: raw rows and distinct times. */
export interface RawBucket {
  instance: string;
  hourMs: number;
  rows: number;
  distinct: number;
}

/** Profiles the rollup counts for one instance in one hour of the selection. */
export interface RolledBucket {
  instance: string;
  hourMs: number;
  profiles: number;
}

/** Half-open time ranges [fromMs, toMs). */
export type Ranges = [number, number][];

/**
 * Which whole hours of [fromMs, toMs] (`to` inclusive, as the selection)
 * the rollup answers: those where every instance with rows in either table
 * has raw rows == distinct profiles == the rollup's count. Hours with no
 * data in either count as answered (both sides read nothing there), so the
 * result is a few long ranges. Each is whole hours.
 */
export function rollupRanges(fromMs: number, toMs: number, raw: readonly RawBucket[], rolled: readonly RolledBucket[]): Ranges {
  const firstHour = Math.ceil(fromMs / BUCKET_MS) * BUCKET_MS;
  const endHour = Math.floor((toMs + 1) / BUCKET_MS) * BUCKET_MS; // hours ending at or before to + 1 ms are whole
  if (endHour <= firstHour) return [];
  const key = (instance: string, hourMs: number): string => `${hourMs}\0${instance}`;
  const rolledAt = new Map(rolled.map((r) => [key(r.instance, r.hourMs), r.profiles]));
  const bad = new Set<number>();
  for (const r of raw) {
    if (r.rows !== r.distinct || rolledAt.get(key(r.instance, r.hourMs)) !== r.distinct) bad.add(r.hourMs);
    rolledAt.delete(key(r.instance, r.hourMs));
  }
  // Rollup rows where the raw table has none for that instance-hour.
  for (const k of rolledAt.keys()) bad.add(Number(k.slice(0, k.indexOf('\0'))));
  const out: Ranges = [];
  let start = firstHour;
  for (const h of [...bad].filter((h) => h >= firstHour && h < endHour).sort((a, b) => a - b)) {
    if (h > start) out.push([start, h]);
    start = h + BUCKET_MS;
  }
  if (endHour > start) out.push([start, endHour]);
  return out;
}

/** [fromMs, toMs] (inclusive) less `ranges`, as half-open ranges; the last ends at toMs + 1. */
export function complement(fromMs: number, toMs: number, ranges: Ranges): Ranges {
  const out: Ranges = [];
  let start = fromMs;
  for (const [a, b] of ranges) {
    if (a > start) out.push([start, a]);
    start = Math.max(start, b);
  }
  if (toMs + 1 > start) out.push([start, toMs + 1]);
  return out;
}

/** SQL: `column` (DateTime64(3) or DateTime) in any of `ranges` (ms), as conditions the sort key can use. */
export function inRanges(column: string, ranges: Ranges): string {
  if (ranges.length === 0) return '0';
  return ranges
    .map(([a, b]) => `(${column} >= fromUnixTimestamp64Milli(${Math.trunc(a)}, 'UTC') AND ${column} < fromUnixTimestamp64Milli(${Math.trunc(b)}, 'UTC'))`)
    .join(' OR ');
}

export interface RollUpOptions {
  /** Look only at profiles from here on (a periodic pass need not scan the whole store); default everything. */
  sinceMs?: number;
  /** About how many instances' hour one INSERT sums (smaller in tests). */
  instancesPerStatement?: number;
}

/**
 * Brings the rollup of every hour that ended `ROLLUP_GRACE_MS` before
 * `nowMs` in line with the raw table, for each instance-hour whose profile
 * count differs there (none summed yet, profiles that came after the last
 * pass, a double count): the hours just ended, and on a store written
 * before the rollup existed (an upgrade) every hour it holds. An hour whose
 * raw rows hold a profile twice (a retry not yet merged away) waits. Newest
 * hour first, one statement per hour and about 64 instances, so memory
 * stays bounded and a stop is quick. Safe to run again and from several
 * collectors at once: the same correction carries the same deduplication
 * token, and where two still both land the counts differ, that hour reads
 * raw and the next pass corrects it.
 *
 * `cluster`: the tables are Distributed, so the join is GLOBAL.
 */
export async function rollUp(sql: Sql, cluster: boolean, nowMs: number, stopped: () => boolean, opts: RollUpOptions = {}): Promise<{ hours: number }> {
  const instancesPerStatement = opts.instancesPerStatement ?? INSTANCES_PER_STATEMENT;
  const params = { since: opts.sinceMs ?? 0, until: Math.floor((nowMs - ROLLUP_GRACE_MS) / BUCKET_MS) * BUCKET_MS };
  const range = (column: string): string =>
    `${column} >= fromUnixTimestamp64Milli({since:Int64}, 'UTC') AND ${column} < fromUnixTimestamp64Milli({until:Int64}, 'UTC')`;
  const stale = await sql.rows<{ h: string; tenant: string; service: string; instance: string; id: string; k: string }>(
    `SELECT toUnixTimestamp(hour) AS h, tenant, service, instance, toString(cityHash64(tenant, service, instance)) AS id, toString(cityHash64(n, c)) AS k
       FROM (
         SELECT tenant, service, instance, toDateTime(toStartOfHour(time), 'UTC') AS hour, count() AS n, uniqExact(time) AS d
           FROM profiles WHERE ${range('time')} GROUP BY tenant, service, instance, hour
       ) AS r
       ${cluster ? 'GLOBAL ' : ''}LEFT JOIN (
         SELECT tenant, service, instance, hour, sum(profiles) AS c
           FROM ${ROLLUP_TABLE} WHERE ${range('hour')} GROUP BY tenant, service, instance, hour
       ) AS u USING (tenant, service, instance, hour)
      WHERE n = d AND n != c
      ORDER BY h DESC, tenant, service, instance`,
    params,
  );
  const byHour = new Map<string, typeof stale>();
  for (const r of stale) byHour.set(r.h, [...(byHour.get(r.h) ?? []), r]);
  let done = 0;
  for (const [h, rows] of byHour) {
    for (let at = 0; at < rows.length; at += instancesPerStatement) {
      if (stopped()) return { hours: done };
      const part = rows.slice(at, at + instancesPerStatement);
      const which = `toString(cityHash64(tenant, service, instance)) IN {which:Array(String)}`;
      await sql.command(
        `INSERT INTO ${ROLLUP_TABLE} SETTINGS insert_deduplication_token = {token:String}\n${correctionSelect(Number(h) * 1000, which)}`,
        {
          which: part.map((r) => r.id),
          token: `heapwatch-rollup-${h}-${createHash('sha256')
            .update(part.map((r) => `${r.tenant}\0${r.service}\0${r.instance}\0${r.k}`).join('\n'))
            .digest('hex')}`,
        },
        true,
      );
    }
    done++;
  }
  return { hours: done };
}
