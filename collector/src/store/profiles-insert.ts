/**
 * The insert of profiles: one row per profile, its stack values as three
 * arrays in the row (schema.ts says why). The one write whose size grows
 * with the stacks of every profile (5,000 stacks x 100 profiles/s is 500k
 * values/s).
 *
 * How the rows travel, and why:
 * - The arrays go as TabSeparated text inside the statement, through the
 *   `format()` table function, one line per profile: `[hi,...]` and
 *   `[lo,...]` halves of the stack ids, `[objects,...]`, `[bytes,...]`.
 *   Typed arrays print themselves with a native `join`, and the UInt64 id is
 *   put together in SQL from its halves, so no 64-bit decimal is formatted
 *   in JS (BigInt was ~1.5 ms a profile). `@clickhouse/client` has no binary
 *   row format, and JSON of the same arrays costs more to write and parse.
 * - The other columns, a few per profile, go as array constants indexed by
 *   the line's profile ordinal. The data is digits, brackets, commas, tabs
 *   and newlines only, so it cannot hold the `$$` that ends the heredoc
 *   literal, and strings never enter it.
 * (`INSERT ... SELECT ... FROM input() FORMAT X` with the data after the
 * statement would be the usual form, but chDB silently inserts nothing for
 * it; `format()` with a heredoc literal works on both chDB and a server.)
 */
import { PROFILE_COLUMNS, STACK_VALUE_COLUMNS, type ColumnKind, type ProfileFields } from './profile-columns';

export interface StackValues {
  /** Entries used in each array (they may be longer). */
  count: number;
  idHi: Uint32Array;
  idLo: Uint32Array;
  objects: Float64Array;
  bytes: Float64Array;
}

export type { ProfileFields } from './profile-columns';

export interface ProfileRow {
  fields: ProfileFields;
  values: StackValues;
}

/** A ClickHouse string literal; names carry no control characters (validate.ts). */
export function literal(s: string): string {
  return `'${s.replace(/[\\']/g, '\\$&')}'`;
}

function number(n: number): string {
  // Integers only: the columns are (U)Int; anything else (NaN, a fraction
  // from a confused agent) would make the whole batch fail to parse.
  return Number.isSafeInteger(n) ? String(n) : Number.isFinite(n) ? String(Math.trunc(n)) : '0';
}

function constant(kind: ColumnKind, v: unknown): string {
  switch (kind) {
    case 'string':
      return literal(v as string);
    case 'number':
    case 'time':
      return number(v as number);
    case 'labels': {
      const entries = Object.entries(v as Record<string, string>);
      return `map(${entries.map(([k, x]) => `${literal(k)}, ${literal(x)}`).join(', ')})`;
    }
    case 'strings':
      return `[${(v as readonly string[]).map(literal).join(',')}]`;
    case 'numbers':
      return `[${(v as readonly number[]).map(number).join(',')}]`;
  }
}

function selectExpression(name: string, kind: ColumnKind, type: string, values: string[]): string {
  const array = `[${values.join(',')}]`;
  switch (kind) {
    case 'strings':
    case 'numbers':
      // `[[],[]]` has no element type to infer: say it.
      return `CAST(${array}, 'Array(${type})')[p] AS ${name}`;
    case 'time':
      return `fromUnixTimestamp64Milli(toInt64(${array}[p]), 'UTC') AS ${name}`;
    case 'labels':
      return `CAST(${array}, 'Array(Map(String, String))')[p] AS ${name}`;
    default:
      return `${array}[p] AS ${name}`;
  }
}

export function profilesInsert(table: string, rows: readonly ProfileRow[]): string {
  const constants: string[][] = PROFILE_COLUMNS.map(() => []);
  let data = '';
  rows.forEach(({ fields, values: v }, i) => {
    PROFILE_COLUMNS.forEach(([name, kind], c) => constants[c]!.push(constant(kind, fields[name])));
    const n = v.count;
    data += `${i + 1}\t[${v.idHi.subarray(0, n).join(',')}]\t[${v.idLo.subarray(0, n).join(',')}]\t[${v.objects.subarray(0, n).join(',')}]\t[${v.bytes.subarray(0, n).join(',')}]\n`;
  });
  const columns = PROFILE_COLUMNS.map(([name, kind, type], c) => selectExpression(name, kind, type, constants[c]!));
  return (
    `INSERT INTO ${table} (${[...PROFILE_COLUMNS, ...STACK_VALUE_COLUMNS].map(([name]) => name).join(', ')}) ` +
    `SELECT ${columns.join(', ')}, ` +
    `arrayMap((h, l) -> bitOr(bitShiftLeft(toUInt64(h), 32), toUInt64(l)), h, l), o, b ` +
    `FROM format(TabSeparated, 'p UInt32, h Array(UInt32), l Array(UInt32), o Array(Int64), b Array(Int64)', $$${data}$$)`
  );
}
