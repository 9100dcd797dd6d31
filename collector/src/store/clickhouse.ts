/**
 * The ClickHouse implementation of the store (store.ts): a
 * `@clickhouse/client` client, over HTTP to a server or cluster, or
 * in-process to an embedded chDB engine. The client never leaves this
 * module; the SQL lives in the modules beside it, which get it as `Sql`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { LabelReads } from './label-reads';
import { LeakReads } from './leak-reads';
import { ProfileReads } from './profile-reads';
import { profilesInsert } from './profiles-insert';
import { schemaStatements, TABLE_NAMES, type SchemaOptions } from './schema';
import type { Sql } from './sql';
import { MINUTE_MS } from '../units';
import { StackSites } from './stack-sites';
import type {
  FindingCounts,
  LabelSet,
  MergedProfile,
  ProfileKey,
  ProfilePoint,
  ProfileQuery,
  ProfileRow,
  ProfileSelection,
  ProfileStore,
  ProfileWindow,
  SeriesPoint,
  SeriesQuery,
  ServiceSummary,
  SiteDetail,
  SitePoint,
  StackRow,
} from './store';

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
      rows.map((r) => [r.service, r.id, r.frames.map((f) => f.function), r.frames.map((f) => f.file), r.frames.map((f) => f.line), r.lastSeenMs]),
      'JSONCompactEachRow',
    );
  }

  async writeProfiles(rows: readonly ProfileRow[]): Promise<void> {
    await this.sql.command(profilesInsert('profiles', rows), {}, true);
  }

  storedProfiles(keys: readonly ProfileKey[]): Promise<Set<string>> {
    return this.profileReads.storedProfiles(keys);
  }

  writeFinding(service: string, evaluatedAtMs: number, report: string): Promise<void> {
    return this.leakReads.writeFinding(service, evaluatedAtMs, report);
  }

  async ping(): Promise<void> {
    await this.sql.rows('SELECT 1');
  }

  services(): Promise<ServiceSummary[]> {
    return this.profileReads.services();
  }

  activeServices(sinceMs: number, limit: number): Promise<string[]> {
    return this.profileReads.activeServices(sinceMs, limit);
  }

  serviceExists(service: string): Promise<boolean> {
    return this.profileReads.serviceExists(service);
  }

  mergedProfile(q: ProfileQuery): Promise<MergedProfile> {
    return this.profileReads.mergedProfile(q);
  }

  labelNames(q: ProfileSelection, limit: number): Promise<string[]> {
    return this.labelReads.labelNames(q, limit);
  }

  labelValues(name: string, q: ProfileSelection, limit: number): Promise<string[]> {
    return this.labelReads.labelValues(name, q, limit);
  }

  labelSets(q: ProfileSelection, limit: number): Promise<LabelSet[]> {
    return this.labelReads.labelSets(q, limit);
  }

  totalSeries(q: SeriesQuery): Promise<SeriesPoint[]> {
    return this.labelReads.totalSeries(q);
  }

  profilePoints(service: string, maxProfiles: number, lookbackMs: number): Promise<ProfilePoint[]> {
    return this.leakReads.profilePoints(service, maxProfiles, lookbackMs);
  }

  sitePoints(service: string, window: ProfileWindow): Promise<SitePoint[]> {
    return this.leakReads.sitePoints(service, window);
  }

  siteDetails(service: string, siteIds: readonly string[], window: ProfileWindow): Promise<SiteDetail[]> {
    return this.leakReads.siteDetails(service, siteIds, window);
  }

  latestFinding(service: string): Promise<string | null> {
    return this.leakReads.latestFinding(service);
  }

  findingCounts(): Promise<FindingCounts[]> {
    return this.leakReads.findingCounts();
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
    if (opts.cluster && (await this.tablesExist())) return;
    for (const statement of schemaStatements(opts)) await this.sql.command(statement);
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
