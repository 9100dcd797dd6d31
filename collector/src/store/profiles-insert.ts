/**
 * The insert of sample values, the one write whose cost grows with the
 * stacks of every profile (5,000 stacks x 100 profiles/s is 500k rows/s).
 *
 * Why not rows of (service, instance, stack_id, time, objects, bytes)
 * through `client.insert`: measured here on chDB, the engine parsed ~400k
 * such rows/s (it reads and dictionary-encodes the two strings and the
 * time of every row), below the 500k rows/s the ingest target needs before
 * the collector has done any work of its own. The three values that are the
 * same for every row of a profile are sent once per profile instead, as
 * array constants, and each row carries a profile ordinal; the rows travel
 * inside the statement through the `format()` table function: the engine
 * then takes ~1.3M rows/s. The stored rows are the same.
 *
 * (`INSERT ... SELECT ... FROM input() FORMAT X` with the data after the
 * statement would be the usual form, but chDB silently inserts nothing for
 * it; `format()` with the data as a heredoc literal works on both chDB and
 * a server. The data is digits, tabs and newlines, so it cannot hold the
 * `$$` that would end the literal.)
 */

export interface ProfileRef {
  service: string;
  instance: string;
  timeMs: number;
}

/** [profile, stack id (UInt64 decimal), objects, bytes] */
export type SampleRow = [profile: ProfileRef, stackId: string, objects: number, bytes: number];

/** A ClickHouse string literal; service and instance names carry no control characters (validate.ts). */
function literal(s: string): string {
  return `'${s.replace(/[\\']/g, '\\$&')}'`;
}

export function samplesInsert(table: string, rows: readonly SampleRow[]): string {
  const ordinal = new Map<ProfileRef, number>();
  const services: string[] = [];
  const instances: string[] = [];
  const times: number[] = [];
  let data = '';
  for (const [profile, stackId, objects, bytes] of rows) {
    let p = ordinal.get(profile);
    if (p === undefined) {
      p = ordinal.size + 1; // ClickHouse arrays are 1-based
      ordinal.set(profile, p);
      services.push(literal(profile.service));
      instances.push(literal(profile.instance));
      times.push(Math.trunc(profile.timeMs));
    }
    data += `${p}\t${stackId}\t${objects}\t${bytes}\n`;
  }
  return (
    `INSERT INTO ${table} (service, instance, stack_id, time, objects, bytes) ` +
    `SELECT [${services.join(',')}][p], [${instances.join(',')}][p], stack_id, ` +
    `fromUnixTimestamp64Milli([${times.join(',')}][p], 'UTC'), objects, bytes ` +
    `FROM format(TabSeparated, 'p UInt32, stack_id UInt64, objects Int64, bytes Int64', $$${data}$$)`
  );
}
