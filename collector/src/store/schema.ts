/**
 * The ClickHouse schema: the one place that says how profiles are laid out.
 *
 * Shaped for the two questions the product asks:
 *  (a) a merged profile for a service, a time range and a label filter;
 *  (b) the in-use bytes of each allocation site of each instance over time.
 *
 * Stacks (frames) are stored once per service in `stacks`, apart from the
 * per-profile values, which carry only a 64-bit stack id.
 *
 * Schema 2: a profile is one row of `profiles`, its stack values three
 * parallel arrays in that row (`stack_ids`, `stack_objects`,
 * `stack_bytes`). Schema 1 kept them as a row per stack value in a
 * `samples` table ordered by (service, instance, stack_id, time); measured
 * on the embedded engine (2 cores), writing 5,000 such rows cost ~6-10 ms of
 * engine CPU per profile plus ~10 ms more in background merges that re-sort
 * them, against ~2.5 ms and a tenth of the merge work for the same values as
 * one row of arrays: the row layout alone could not take 100 profiles/s.
 * It also makes a profile one insert, so there is no separate commit
 * marker to join on: a profile is visible whole or not at all, and the
 * stacks it refers to are written before it. The arrays of consecutive
 * profiles of one instance are nearly the same and adjacent on disk (ORDER
 * BY service, instance, time), which ZSTD turns into a fraction of a byte a
 * value.
 *
 * The first schema 2 kept `samples` as a view with the old row shape (an
 * ARRAY JOIN over every profile) for the leak detector; read through it, a
 * detector pass unrolled every value since its window's start before
 * joining: ~2 s of CPU on the query bench's store, 4x what reading the
 * window's arrays directly costs (leaks/queries.ts). The view is gone from
 * the DDL.
 * A store created with it keeps it (CREATE ... IF NOT EXISTS never drops,
 * and a collector of the previous release may still be reading it during a
 * rolling upgrade); nothing reads it, and `migrate` tells it from schema 1's
 * `samples` table by its engine.
 */

export interface SchemaOptions {
  /** Days to keep raw samples and profiles. 0 keeps them forever. */
  retentionDays: number;
  /**
   * For a ClickHouse cluster: the cluster name used for `ON CLUSTER` DDL,
   * Replicated*MergeTree local tables and Distributed tables over them.
   */
  cluster?: string;
}

export const SCHEMA_VERSION = 2;

/**
 * Columns added to `profiles` after schema 2 first shipped, as `name Type`.
 * New stores get them from CREATE TABLE; existing ones from
 * schemaUpgradeStatements (ALTER ... ADD COLUMN IF NOT EXISTS, idempotent),
 * and rows written before read as the defaults: 0 GCs, not after a GC,
 * which the leak rule treats as "no GC information" (leaks/rule.ts).
 */
export const PROFILES_ADDED_COLUMNS = [
  // IngestRequest.gc (ingest.proto): major GCs the agent observed, cumulative.
  'gc_major_gcs UInt64',
  // End of the newest of them, Unix epoch ms; 0 if none.
  'gc_last_major_gc_end_ms Int64',
  // 1 if the snapshot was taken right after a major GC (no old-space garbage).
  'gc_after_major_gc UInt8',
  // AgentStats.forced_gcs / forced_gc_time_us: the agent's GC assist, cumulative.
  'agent_forced_gcs UInt64',
  'agent_forced_gc_time_us UInt64',
] as const;

interface TableSpec {
  name: string;
  columns: string;
  engine: 'MergeTree' | 'ReplacingMergeTree';
  /** The ReplacingMergeTree version column, if any. */
  version?: string;
  orderBy: string;
  partitionBy?: string;
  ttl?: string;
  settings?: string;
  /** Sharding key of the Distributed table in cluster mode. */
  shardBy: string;
}

function tables(opts: SchemaOptions): TableSpec[] {
  const ttl = (col: string): string | undefined =>
    opts.retentionDays > 0 ? `toDateTime(${col}) + INTERVAL ${opts.retentionDays} DAY` : undefined;
  return [
    {
      name: 'profiles',
      columns: `
        service LowCardinality(String),
        instance String,
        profile_id String,
        start_time DateTime64(3, 'UTC'),
        time DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        labels Map(LowCardinality(String), String),
        hostname LowCardinality(String),
        pid UInt32,
        thread_id UInt32,
        process_start_time DateTime64(3, 'UTC'),
        runtime_version LowCardinality(String),
        agent_version LowCardinality(String),
        stacks UInt32,
        total_bytes Int64,
        total_objects Int64,
        rss_bytes UInt64,
        heap_used_bytes UInt64,
        heap_total_bytes UInt64,
        external_bytes UInt64,
        array_buffers_bytes UInt64,
        heap_size_limit_bytes UInt64,
        agent_profiles_sent UInt64,
        agent_profiles_dropped UInt64,
        agent_sampling_time_us UInt64,
        agent_queue_length UInt64,
        agent_queue_bytes UInt64,
        agent_send_failures UInt64,
        received_at DateTime64(3, 'UTC'),
        ${PROFILES_ADDED_COLUMNS.join(',\n        ')},
        -- ZSTD(3), not (1): a day of one instance at 60 s (bench/storage.mjs,
        -- 5,000 stacks) takes 1.90 bytes a stack value against 2.48, mostly
        -- from stack_objects (1.17 -> 0.64); the load took the same 56 s.
        -- T64 before ZSTD made it worse (2.37): it breaks the row-to-row
        -- repetition that ZSTD finds.
        stack_ids Array(UInt64) CODEC(ZSTD(3)),
        stack_objects Array(Int64) CODEC(ZSTD(3)),
        stack_bytes Array(Int64) CODEC(ZSTD(3))`,
      engine: 'ReplacingMergeTree',
      orderBy: '(service, instance, time, profile_id)',
      partitionBy: 'toYYYYMMDD(time)',
      ttl: ttl('time'),
      shardBy: 'cityHash64(service, instance)',
    },
    {
      // One row per distinct stack of a service. `site_*` is the allocation
      // site the leak detector reports for this stack (see leaks/site.ts),
      // computed once at ingest.
      name: 'stacks',
      columns: `
        service LowCardinality(String),
        stack_id UInt64,
        functions Array(String),
        files Array(String),
        lines Array(UInt32),
        site_id UInt64,
        site_function String,
        site_file String,
        site_line UInt32,
        last_seen DateTime64(3, 'UTC')`,
      engine: 'ReplacingMergeTree',
      version: 'last_seen',
      orderBy: '(service, stack_id)',
      shardBy: 'cityHash64(service, stack_id)',
    },
    {
      // Leak findings, written by every evaluation so that any collector
      // instance can serve them. The newest evaluation of a service wins.
      name: 'findings',
      columns: `
        service LowCardinality(String),
        evaluated_at DateTime64(3, 'UTC'),
        report String CODEC(ZSTD(3))`,
      engine: 'MergeTree',
      orderBy: '(service, evaluated_at)',
      partitionBy: 'toYYYYMM(evaluated_at)',
      ttl: opts.retentionDays > 0 ? `toDateTime(evaluated_at) + INTERVAL ${opts.retentionDays} DAY` : undefined,
      shardBy: 'cityHash64(service)',
    },
  ];
}

function engineClause(t: TableSpec, replicated: boolean): string {
  const version = t.version ? t.version : '';
  if (!replicated) return `${t.engine}(${version})`;
  const args = [`'/clickhouse/tables/{shard}/{database}/${t.name}'`, `'{replica}'`];
  if (version) args.push(version);
  return `Replicated${t.engine}(${args.join(', ')})`;
}

function createTable(t: TableSpec, name: string, opts: SchemaOptions): string {
  const onCluster = opts.cluster ? ` ON CLUSTER ${quoteIdent(opts.cluster)}` : '';
  return [
    `CREATE TABLE IF NOT EXISTS ${name}${onCluster} (${t.columns}\n)`,
    `ENGINE = ${engineClause(t, opts.cluster !== undefined)}`,
    t.partitionBy ? `PARTITION BY ${t.partitionBy}` : '',
    `ORDER BY ${t.orderBy}`,
    t.ttl ? `TTL ${t.ttl}` : '',
    // A retried insert of the same block is dropped instead of stored twice
    // (FACTS.md: plain MergeTree only does this when the window is > 0).
    `SETTINGS index_granularity = 8192${opts.cluster ? '' : ', non_replicated_deduplication_window = 1000'}`,
  ]
    .filter(Boolean)
    .join('\n');
}

export function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid identifier: ${JSON.stringify(name)}`);
  return name;
}

/**
 * The DDL that brings an empty database to SCHEMA_VERSION, in order. Every
 * statement is idempotent, so running it again (another collector starting
 * at the same time, a restart) is harmless.
 *
 * With a cluster, each table is a Replicated*MergeTree `<name>_local` on
 * every node plus a Distributed `<name>` over them; everything else reads
 * and writes `<name>` and never knows the difference.
 */
export function schemaStatements(opts: SchemaOptions): string[] {
  const out: string[] = [];
  for (const t of tables(opts)) {
    if (!opts.cluster) {
      out.push(createTable(t, t.name, opts));
      continue;
    }
    const cluster = quoteIdent(opts.cluster);
    out.push(createTable(t, `${t.name}_local`, opts));
    out.push(
      `CREATE TABLE IF NOT EXISTS ${t.name} ON CLUSTER ${cluster} AS ${t.name}_local\n` +
        `ENGINE = Distributed(${cluster}, currentDatabase(), ${t.name}_local, ${t.shardBy})`,
    );
  }
  return out;
}

/**
 * ALTERs that bring a store created by an older schema 2 up to the current
 * columns; idempotent (IF NOT EXISTS). In a cluster both the Replicated
 * local table and the Distributed table over it get each column.
 */
export function schemaUpgradeStatements(opts: SchemaOptions): string[] {
  const add = PROFILES_ADDED_COLUMNS.map((c) => `ADD COLUMN IF NOT EXISTS ${c}`).join(', ');
  if (!opts.cluster) return [`ALTER TABLE profiles ${add}`];
  const cluster = quoteIdent(opts.cluster);
  return [`ALTER TABLE profiles_local ON CLUSTER ${cluster} ${add}`, `ALTER TABLE profiles ON CLUSTER ${cluster} ${add}`];
}

export const TABLE_NAMES = ['profiles', 'stacks', 'findings'] as const;
