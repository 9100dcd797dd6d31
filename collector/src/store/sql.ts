/** What the store's read and write modules need of the client; only clickhouse.ts makes one. */
export interface Sql {
  /**
   * Rows of a query as JSON objects. UInt64 and Int64 come back as strings
   * (JSON.parse would round them). `inline`: the statement carries data
   * inline (ids, rows), past the parser's default 256 KiB limit.
   */
  rows<T>(query: string, params?: Record<string, unknown>, inline?: boolean): Promise<T[]>;
  /** A statement without a result; `inline` as for rows. */
  command(query: string, params?: Record<string, unknown>, inline?: boolean): Promise<void>;
  insert(table: string, values: readonly unknown[], format: 'JSONEachRow' | 'JSONCompactEachRow'): Promise<void>;
}

/** Decimal UInt64 ids as a comma-separated SQL list (checked: digits only). */
function idList(ids: readonly string[]): string {
  for (const id of ids) if (!/^\d+$/.test(id)) throw new Error(`not a UInt64: ${JSON.stringify(id)}`);
  return ids.join(',');
}

/** Ids as an Array(UInt64) literal, sent inline: a long list is cheaper in the statement than as a parameter. */
export function uint64Array(ids: readonly string[]): string {
  return `CAST([${idList(ids)}], 'Array(UInt64)')`;
}

/** Ids as the right side of IN (at least one). */
export function uint64Set(ids: readonly string[]): string {
  return `(${idList(ids)})`;
}

/** ClickHouse DateTime64 text for a JS time: 'YYYY-MM-DD hh:mm:ss.sss' (UTC). */
export function chTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}
