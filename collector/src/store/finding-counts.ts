/**
 * How many leak sites and process findings each service's newest stored
 * report flags: for the list of services, without reading every report.
 */
import type { Store } from './clickhouse';

export interface FindingCounts {
  service: string;
  evaluatedAt: string;
  leaks: number;
  process: number;
}

/**
 * The newest evaluation of each service is found from the small columns
 * (service, evaluated_at: the table's sort key), and only those rows' report
 * text is read, by ClickHouse's JSONLength rather than parsed here.
 */
export async function latestFindingCounts(store: Store): Promise<FindingCounts[]> {
  const rows = await store.query<{ service: string; t: number; leaks: number; process: number }>(
    `SELECT service, toFloat64(toUnixTimestamp64Milli(evaluated_at)) AS t,
            JSONLength(report, 'leaks') AS leaks, JSONLength(report, 'process') AS process
       FROM findings
      WHERE (service, evaluated_at) IN (SELECT service, max(evaluated_at) FROM findings GROUP BY service)
      ORDER BY service, evaluated_at DESC
      LIMIT 1 BY service`,
  );
  return rows.map((r) => ({
    service: r.service,
    evaluatedAt: new Date(Number(r.t)).toISOString(),
    leaks: Number(r.leaks),
    process: Number(r.process),
  }));
}
