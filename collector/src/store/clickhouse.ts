/**
 * The one way the collector reaches ClickHouse: a `@clickhouse/client`
 * client, over HTTP to a server or cluster, or in-process to an embedded
 * chDB engine. Everything above this file speaks SQL through that client and
 * does not know which it got.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { PROFILES_ADDED_COLUMNS, SCHEMA_VERSION, schemaStatements, schemaUpgradeStatements, TABLE_NAMES, type SchemaOptions } from './schema';

export type { ClickHouseClient } from '@clickhouse/client';

export type StoreTarget =
  /** Embedded chDB with its data in `dataDir`. */
  | { kind: 'embedded'; dataDir: string }
  /** A ClickHouse server: http(s)://user:pass@host:port/database */
  | { kind: 'server'; url: string };

export interface StoreOptions extends SchemaOptions {
  target: StoreTarget;
}

// FACTS.md: from ClickHouse 25.8 on, UInt64 comes back as a bare JSON number
// that JSON.parse rounds. Stack ids are 64-bit, so force them into strings.
const SETTINGS: ClickHouseSettings = {
  output_format_json_quote_64bit_integers: 1,
  date_time_input_format: 'best_effort',
};

/** The parser's limit for statements that carry their rows (the default is 256 KiB). */
const MAX_INLINE_QUERY_BYTES = 1 << 30;

/** The oldest ClickHouse server release the schema and queries are written for. */
export const MIN_SERVER_VERSION = [24, 8] as const;

export class Store {
  private constructor(
    readonly client: ClickHouseClient,
    readonly target: StoreTarget,
    readonly cluster: string | undefined,
  ) {}

  /** Connects, checks the server version and brings the schema up to date. */
  static async open(opts: StoreOptions): Promise<Store> {
    const client = await connect(opts.target, opts.cluster !== undefined);
    const store = new Store(client, opts.target, opts.cluster);
    try {
      await store.checkVersion();
      await store.migrate(opts);
    } catch (err) {
      await client.close().catch(() => {});
      throw err;
    }
    return store;
  }

  async query<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
    const rs = await this.client.query({ query, query_params: params, format: 'JSONEachRow' });
    return rs.json<T>();
  }

  async command(query: string, params: Record<string, unknown> = {}): Promise<void> {
    await this.client.command({ query, query_params: params });
  }

  /** A statement that carries its data inline, megabytes of it (store/profiles-insert.ts). */
  async commandWithData(query: string): Promise<void> {
    await this.client.command({ query, clickhouse_settings: { max_query_size: String(MAX_INLINE_QUERY_BYTES) } });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async tablesExist(): Promise<boolean> {
    const [row] = await this.query<{ n: string }>(
      `SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)}`,
      { names: TABLE_NAMES },
    );
    return Number(row?.n ?? 0) === TABLE_NAMES.length;
  }

  private async checkVersion(): Promise<void> {
    const [row] = await this.query<{ v: string }>('SELECT version() AS v');
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
    const [samples] = await this.query<{ engine: string }>(
      `SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'samples'`,
    );
    if (samples !== undefined && samples.engine !== 'View') {
      // Schema 1 kept a row per stack value in a `samples` table; schema 2
      // keeps them as arrays in the profile's row (schema.ts says why).
      // There is no in-place conversion: failing here beats a store whose
      // old profiles silently count as empty.
      throw new Error(
        'this store was written by heapwatch schema 1 (a samples table of one row per stack value); ' +
          `schema ${SCHEMA_VERSION} stores a profile's values in its profiles row: start with a new data directory or database`,
      );
    }
    // ON CLUSTER DDL waits for every node; a collector must still start
    // while one node is down once the tables exist.
    if (opts.cluster && (await this.tablesExist())) {
      // Same reason: only ALTER ON CLUSTER (which needs every node) when a column is missing.
      if (await this.profilesColumnsMissing()) for (const statement of schemaUpgradeStatements(opts)) await this.command(statement);
      return;
    }
    for (const statement of schemaStatements(opts)) await this.command(statement);
    for (const statement of schemaUpgradeStatements(opts)) await this.command(statement);
  }

  private async profilesColumnsMissing(): Promise<boolean> {
    const names = PROFILES_ADDED_COLUMNS.map((c) => c.split(' ')[0]!);
    const [row] = await this.query<{ n: string }>(
      `SELECT count() AS n FROM system.columns WHERE database = currentDatabase() AND table = 'profiles' AND name IN {names:Array(String)}`,
      { names },
    );
    return Number(row?.n ?? 0) < names.length;
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
    return createClient({ url: target.url, clickhouse_settings: settings, request_timeout: 60_000 });
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
