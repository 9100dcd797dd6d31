/**
 * Reads for the Pyroscope-compatible query API (http/querier-service.ts):
 * label names and values, label sets, and in-use totals per time step.
 * Labels are the agent's labels; the service is not among them (callers
 * present it as `service_name`).
 */
import { selection } from './profile-reads';
import type { Sql } from './sql';
import { SERVICE_LABEL, type LabelSet, type ProfileSelection, type SeriesPoint, type SeriesQuery } from './store';

export class LabelReads {
  constructor(private readonly sql: Sql) {}

  async labelNames(tenant: string, q: ProfileSelection, limit: number): Promise<string[]> {
    const params: Record<string, unknown> = { limit };
    const rows = await this.sql.rows<{ name: string }>(
      `SELECT DISTINCT arrayJoin(mapKeys(labels)) AS name FROM profiles WHERE ${selection(tenant, q, params)}
        ORDER BY name LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map((r) => r.name);
  }

  async labelValues(tenant: string, name: string, q: ProfileSelection, limit: number): Promise<string[]> {
    const params: Record<string, unknown> = { limit, name };
    if (name === SERVICE_LABEL) {
      const services = await this.sql.rows<{ service: string }>(
        `SELECT DISTINCT service FROM profiles WHERE ${selection(tenant, q, params)} ORDER BY service LIMIT {limit:UInt32}`,
        params,
      );
      return services.map((r) => r.service);
    }
    const rows = await this.sql.rows<{ value: string }>(
      `SELECT DISTINCT labels[{name:String}] AS value FROM profiles
        WHERE ${selection(tenant, q, params)} AND mapContains(labels, {name:String})
        ORDER BY value LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map((r) => r.value);
  }

  async labelSets(tenant: string, q: ProfileSelection, limit: number): Promise<LabelSet[]> {
    const params: Record<string, unknown> = { limit };
    const rows = await this.sql.rows<{ service: string; labels: Record<string, string> }>(
      `SELECT DISTINCT service, labels FROM profiles WHERE ${selection(tenant, q, params)}
        ORDER BY service LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map((r) => ({ service: r.service, labels: r.labels }));
  }

  /**
   * Duplicates of a retried profile (before the ReplacingMergeTree merged
   * them) would weigh twice in an average: one row per (instance, time)
   * counts, as in the merged profile.
   */
  async totalSeries(tenant: string, q: SeriesQuery): Promise<SeriesPoint[]> {
    const params: Record<string, unknown> = { step: Math.max(1, Math.round(q.stepMs)), limit: q.limit };
    const where = selection(tenant, q, params);
    const groups = q.groupBy.map((name, i) => {
      if (name === SERVICE_LABEL) return 'service';
      params[`g${i}`] = name;
      return `labels[{g${i}:String}]`;
    });
    const rows = await this.sql.rows<{ t: string; g: string[]; bytes: number; objects: number }>(
      `SELECT t, g, sum(b) AS bytes, sum(o) AS objects
       FROM (
         SELECT t, g, instance, avg(total_bytes) AS b, avg(total_objects) AS o
         FROM (
           SELECT intDiv(toUnixTimestamp64Milli(time) - {from:Int64}, {step:Int64}) * {step:Int64} + {from:Int64} AS t,
                  [${groups.join(', ')}]::Array(String) AS g, service, instance, total_bytes, total_objects
           FROM profiles WHERE ${where}
           LIMIT 1 BY service, instance, time
         )
         GROUP BY t, g, service, instance
       )
       GROUP BY t, g ORDER BY g, t LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map((r) => ({ group: r.g, timeMs: Number(r.t), bytes: Number(r.bytes), objects: Number(r.objects) }));
  }
}
