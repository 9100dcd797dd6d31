/**
 * The ClickHouse implementation of the store (store.ts): a
 * `@clickhouse/client` client, over HTTP to a server or cluster, or
 * in-process to an embedded chDB engine. The client never leaves this
 * module; the SQL lives in the modules beside it, which get it as `Sql`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { HolderCaptures } from './holder-captures';
import { LabelReads } from './label-reads';
import { LeakReads } from './leak-reads';
import { ProfileReads } from './profile-reads';
import { profilesInsert } from './profiles-insert';
import { rollUp, type RollUpOptions } from './rollup';
import { addProfileColumns, profilesTableOf, schemaStatements, TABLE_NAMES, type SchemaOptions } from './schema';
import { PROFILE_COLUMNS } from './profile-columns';
import { MINUTE_MS } from '../units';
import { StackSites } from './stack-sites';
import { chTime, type Sql } from './sql';
import type { LeaseClaim, ProfileKey, ProfileRow, ProfileStore, StackRow, TenantService, TenantStore } from './store';

export type StoreTarget =
  /** Embedded chDB with its data in `dataDir`. */
  | { kind: 'embedded'; dataDir: string }
  /** A ClickHouse server: http(s)://user:pass@host:port/database */
  | { kind: 'server'; url: string };

export interface StoreOptions extends SchemaOptions {
  target: StoreTarget;
  /** Stack ids whose allocation site is remembered (stack-sites.ts). */
  stackSiteCacheSize?: number;
}

// Newer ClickHouse releases return UInt64 in JSON as a bare number, which
// JSON.parse rounds; stack ids are 64-bit, so they must come back as strings
// (docs/storage.md).
const SETTINGS: ClickHouseSettings = {
  output_format_json_quote_64bit_integers: 1,
  date_time_input_format: 'best_effort',
};

/** The parser's limit for statements that carry their data inline (the default is 256 KiB). */
const INLINE: ClickHouseSettings = { max_query_size: String(1 << 30) };

/** The oldest ClickHouse server release the schema and queries are written for. */
export const MIN_SERVER_VERSION = [24, 8] as const;

export class ClickHouseStore implements ProfileStore {
  private readonly sql: Sql;
  private readonly profileReads: ProfileReads;
  private readonly leakReads: LeakReads;
  private readonly holderCaptures: HolderCaptures;
  private readonly labelReads: LabelReads;

  private constructor(
    private readonly client: ClickHouseClient,
    readonly target: StoreTarget,
    readonly cluster: string | undefined,
    stackSiteCacheSize: number,
  ) {
    this.sql = {
      rows: async <T>(query: string, params: Record<string, unknown> = {}, inline = false): Promise<T[]> => {
        const rs = await client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: inline ? INLINE : {} });
        return rs.json<T>();
      },
      command: async (query, params = {}, inline = false) => {
        await client.command({ query, query_params: params, clickhouse_settings: inline ? INLINE : {} });
      },
      insert: async (table, values, format) => {
        await client.insert({ table, values: values as unknown[], format });
      },
    };
    this.profileReads = new ProfileReads(this.sql);
    this.labelReads = new LabelReads(this.sql);
    this.leakReads = new LeakReads(this.sql, new StackSites(this.sql, stackSiteCacheSize));
    this.holderCaptures = new HolderCaptures(this.sql);
  }

  /** Connects, checks the server version and creates the tables that are missing. */
  static async open(opts: StoreOptions): Promise<ClickHouseStore> {
    const client = await connect(opts.target, opts.cluster !== undefined);
    const store = new ClickHouseStore(client, opts.target, opts.cluster, opts.stackSiteCacheSize ?? 500_000);
    try {
      await store.checkVersion();
      await store.migrate(opts);
    } catch (err) {
      await client.close().catch(() => {});
      throw err;
    }
    return store;
  }

  async writeStacks(rows: readonly StackRow[]): Promise<void> {
    await this.sql.insert(
      'stacks',
      rows.map((r) => [r.tenant, r.service, r.id, r.frames.map((f) => f.function), r.frames.map((f) => f.file), r.frames.map((f) => f.line), r.lastSeenMs]),
      'JSONCompactEachRow',
    );
  }

  async writeProfiles(rows: readonly ProfileRow[]): Promise<void> {
    await this.sql.command(profilesInsert('profiles', rows), {}, true);
  }

  storedProfiles(keys: readonly ProfileKey[]): Promise<Set<string>> {
    return this.profileReads.storedProfiles(keys);
  }

  async ping(): Promise<void> {
    await this.sql.rows('SELECT 1');
  }

  activeServices(sinceMs: number, limit: number): Promise<TenantService[]> {
    return this.profileReads.activeServices(sinceMs, limit);
  }

  forTenant(tenant: string): TenantStore {
    const { profileReads: p, leakReads: l, labelReads: r, holderCaptures: h } = this;
    return {
      tenant,
      writeFinding: (service, evaluatedAtMs, report) => l.writeFinding(tenant, service, evaluatedAtMs, report),
      services: () => p.services(tenant),
      serviceExists: (service) => p.serviceExists(tenant, service),
      mergedProfile: (q) => p.mergedProfile(tenant, q),
      labelNames: (q, limit) => r.labelNames(tenant, q, limit),
      labelValues: (name, q, limit) => r.labelValues(tenant, name, q, limit),
      labelSets: (q, limit) => r.labelSets(tenant, q, limit),
      totalSeries: (q) => r.totalSeries(tenant, q),
      profilePoints: (service, maxProfiles, lookbackMs) => l.profilePoints(tenant, service, maxProfiles, lookbackMs),
      sitePoints: (service, window) => l.sitePoints(tenant, service, window),
      siteDetails: (service, siteIds, window) => l.siteDetails(tenant, service, siteIds, window),
      latestFinding: (service) => l.latestFinding(tenant, service),
      findingCounts: () => l.findingCounts(tenant),
      writeHolderCapture: (service, capture) => h.write(tenant, service, capture),
      latestHolderCapture: (service, nowMs, lookbackMs) => h.latest(tenant, service, nowMs, lookbackMs),
    };
  }

  async writeLeaseClaim(name: string, claim: LeaseClaim): Promise<void> {
    await this.sql.insert(
      'leases',
      [{ name, holder: claim.holder, acquired_at: chTime(claim.acquiredAtMs), renewed_at: chTime(claim.renewedAtMs), expires_at: chTime(claim.expiresAtMs) }],
      'JSONEachRow',
    );
  }

  async liveLeaseClaims(name: string, nowMs: number): Promise<LeaseClaim[]> {
    // One row per holder: its newest claim. In a
    // cluster this reads whichever replica answers, so a claim still on its
    // way there is missed for the replication lag (deploy/README.md).
    const rows = await this.sql.rows<{ holder: string; a: string; r: string; e: string }>(
      `SELECT holder, toUnixTimestamp64Milli(argMax(acquired_at, renewed_at)) AS a,
              toUnixTimestamp64Milli(max(renewed_at)) AS r, toUnixTimestamp64Milli(argMax(expires_at, renewed_at)) AS e
         FROM leases WHERE name = {name:String}
        GROUP BY holder HAVING argMax(expires_at, renewed_at) > fromUnixTimestamp64Milli({now:Int64}, 'UTC')
        ORDER BY a, holder`,
      { name, now: nowMs },
    );
    return rows.map((x) => ({ holder: x.holder, acquiredAtMs: Number(x.a), renewedAtMs: Number(x.r), expiresAtMs: Number(x.e) }));
  }

  rollUp(nowMs: number, stopped: () => boolean, opts?: RollUpOptions): Promise<{ hours: number }> {
    return rollUp(this.sql, this.cluster !== undefined, nowMs, stopped, opts);
  }

  /**
   * Any query, for benchmarks that inspect the tables (bench/storage.mjs);
   * the collector itself reads only through the methods above.
   */
  async inspect<T>(query: string): Promise<T[]> {
    if (/^\s*(SELECT|WITH)\b/i.test(query)) return this.sql.rows<T>(query);
    await this.sql.command(query);
    return [];
  }

  async close(): Promise<void> {
    await this.client.close();
    // The embedded engine releases a closed session only once the operations
    // it was running have finished, and binds one data directory per
    // process: wait for that, so a store opened next (a restart in the same
    // process) does not find the engine still held.
    if (this.target.kind === 'embedded') await (await import('chdb')).drainPending();
  }

  private async tablesExist(): Promise<boolean> {
    const [row] = await this.sql.rows<{ n: string }>(
      `SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)}`,
      { names: TABLE_NAMES },
    );
    return Number(row?.n ?? 0) === TABLE_NAMES.length;
  }

  private async checkVersion(): Promise<void> {
    const [row] = await this.sql.rows<{ v: string }>('SELECT version() AS v');
    const version = row?.v ?? '0';
    const [major = 0, minor = 0] = version.split('.').map(Number);
    const [minMajor, minMinor] = MIN_SERVER_VERSION;
    if (major < minMajor || (major === minMajor && minor < minMinor)) {
      throw new Error(
        `ClickHouse ${version} is too old: heapwatch needs ${minMajor}.${minMinor} or newer ` +
          `(query parameters, Map, DateTime64, TTL and JSON 64-bit quoting settings)`,
      );
    }
  }

  private async migrate(opts: SchemaOptions): Promise<void> {
    // ON CLUSTER DDL waits for every node; a collector must still start
    // while one node is down once the tables exist.
    if (!(opts.cluster && (await this.tablesExist()))) {
      for (const statement of schemaStatements(opts)) await this.sql.command(statement);
    }
    // A store written by an older collector lacks the columns added since.
    const present = await this.sql.rows<{ name: string }>(
      `SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {table:String}`,
      { table: profilesTableOf(opts) },
    );
    const have = new Set(present.map((c) => c.name));
    const missing = PROFILE_COLUMNS.map(([name]) => name).filter((n) => !have.has(n));
    for (const statement of addProfileColumns(missing, opts)) await this.sql.command(statement);
  }
}

async function connect(target: StoreTarget, cluster: boolean): Promise<ClickHouseClient> {
  if (target.kind === 'server') {
    const settings: ClickHouseSettings = cluster
      ? // An insert into a Distributed table is otherwise acknowledged before
        // its shard has it: a profile could become visible before the stacks
        // it refers to, and an agent be acknowledged for what is not stored.
        { ...SETTINGS, distributed_foreground_insert: 1 }
      : SETTINGS;
    return createClient({ url: target.url, clickhouse_settings: settings, request_timeout: MINUTE_MS });
  }
  fs.mkdirSync(target.dataDir, { recursive: true });
  // chdb is loaded only when the embedded store is used: a collector in front
  // of a server never maps the 500 MB engine into memory.
  const { createChdbConnection } = await import('chdb/connection');
  // chdb types its Connection against its own copy of @clickhouse/client-common;
  // the shapes are the same, the declarations are not.
  type Connection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;
  return createClient({
    connection: createChdbConnection({ path: path.resolve(target.dataDir) }) as unknown as Connection,
    clickhouse_settings: SETTINGS,
  });
}
