/**
 * The ClickHouse schema: how profiles are laid out.
 *
 * Shaped for the two questions the product asks:
 *  (a) a merged profile for a service, a time range and a label filter;
 *  (b) the in-use bytes of each allocation site of each instance over time.
 *
 * Stacks (frames) are stored once per service in `stacks`, apart from the
 * per-profile values, which carry only a 64-bit stack id. A stack's
 * allocation site is not stored: it is a function of the frames, computed
 * when reading (store/stack-sites.ts), so a better site rule applies to old
 * data too.
 *
 * A profile is one row of `profiles`, its stack values three parallel
 * arrays in that row (`stack_ids`, `stack_objects`, `stack_bytes`). Kept as
 * a row per stack value instead, 5,000 values cost ~6-10 ms of engine CPU
 * per profile plus ~10 ms of background merges on the embedded engine (2
 * cores), against ~2.5 ms and a tenth of the merges as one row of arrays.
 * One row also makes a profile one insert: it is visible whole or not at
 * all, and the stacks it refers to are written before it. The arrays of
 * consecutive profiles of one instance are nearly the same and adjacent on
 * disk (ORDER BY tenant, service, instance, time), which ZSTD turns into a fraction
 * of a byte a value. See docs/storage.md.
 */
import { holderCaptureColumnsDdl } from './holder-captures';
import { PROFILE_COLUMNS, profileColumnsDdl } from './profile-columns';
import { ROLLUP_COLUMNS_DDL, ROLLUP_TABLE } from './rollup';

export interface SchemaOptions {
  /** Days to keep raw samples and profiles. 0 keeps them forever. */
  retentionDays: number;
  /**
   * For a ClickHouse cluster: the cluster name used for `ON CLUSTER` DDL,
   * Replicated*MergeTree local tables and Distributed tables over them.
   */
  cluster?: string;
}

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
        ${profileColumnsDdl()}`,
      engine: 'ReplacingMergeTree',
      orderBy: '(tenant, service, instance, time, profile_id)',
      partitionBy: 'toYYYYMMDD(time)',
      ttl: ttl('time'),
      shardBy: 'cityHash64(tenant, service, instance)',
    },
    {
      // One row per distinct stack of a service.
      name: 'stacks',
      columns: `
        tenant LowCardinality(String),
        service LowCardinality(String),
        stack_id UInt64,
        functions Array(String),
        files Array(String),
        lines Array(UInt32),
        last_seen DateTime64(3, 'UTC')`,
      engine: 'ReplacingMergeTree',
      version: 'last_seen',
      orderBy: '(tenant, service, stack_id)',
      shardBy: 'cityHash64(tenant, service, stack_id)',
    },
    {
      // Leak findings, written by every evaluation so that any collector
      // instance can serve them. The newest evaluation of a service wins.
      name: 'findings',
      columns: `
        tenant LowCardinality(String),
        service LowCardinality(String),
        evaluated_at DateTime64(3, 'UTC'),
        report String CODEC(ZSTD(3))`,
      engine: 'MergeTree',
      orderBy: '(tenant, service, evaluated_at)',
      partitionBy: 'toYYYYMM(evaluated_at)',
      ttl: opts.retentionDays > 0 ? `toDateTime(evaluated_at) + INTERVAL ${opts.retentionDays} DAY` : undefined,
      shardBy: 'cityHash64(tenant, service)',
    },
    {
      // Holder captures (store/holder-captures.ts): one row per capture an
      // agent answered, a few a day per service at most.
      name: 'holder_captures',
      columns: `
        ${holderCaptureColumnsDdl()}`,
      engine: 'MergeTree',
      orderBy: '(tenant, service, taken_at)',
      partitionBy: 'toYYYYMM(taken_at)',
      ttl: ttl('taken_at'),
      shardBy: 'cityHash64(tenant, service)',
    },
    {
      // Who runs the background leak evaluation (store/lease.ts): a claim
      // per holder and renewal; the earliest live claim wins. Rows expire
      // with their lease, so the table stays a few rows.
      name: 'leases',
      columns: `
        name LowCardinality(String),
        holder String,
        acquired_at DateTime64(3, 'UTC'),
        renewed_at DateTime64(3, 'UTC'),
        expires_at DateTime64(3, 'UTC')`,
      engine: 'MergeTree',
      orderBy: '(name, holder, renewed_at)',
      ttl: 'toDateTime(expires_at) + INTERVAL 1 DAY',
      shardBy: 'cityHash64(name)',
    },
    {
      // The stack values of each (instance, hour, label set), summed
      // (store/rollup.ts), so that a merge over a long range reads a row an
      // hour per instance instead of 60.
      name: ROLLUP_TABLE,
      columns: ROLLUP_COLUMNS_DDL,
      engine: 'MergeTree',
      orderBy: '(tenant, service, hour, instance, labels_key, thread_id)',
      partitionBy: 'toYYYYMMDD(hour)',
      ttl: ttl('hour'),
      shardBy: 'cityHash64(tenant, service, instance)',
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
    // A retried insert of the same block is dropped instead of stored twice;
    // a non-replicated MergeTree deduplicates inserts only when this window
    // is above 0, its default (docs/storage.md).
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
 * The DDL that creates the tables, in order. Every
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

export const TABLE_NAMES = ['profiles', 'stacks', 'findings', 'holder_captures', 'leases', ROLLUP_TABLE] as const;

/** The table whose columns tell what a store has: `profiles`, or on a cluster the node's `profiles_local`. */
export function profilesTableOf(opts: SchemaOptions): string {
  return opts.cluster ? 'profiles_local' : 'profiles';
}

/**
 * The ALTERs that add the `profiles` columns named in `missing` to a table
 * created by an older collector (columns are only ever added, as the
 * contract's fields are: the job counters came this way). Existing rows
 * read the type's default (0, empty arrays), what an agent that sends no
 * such field writes. Metadata only: no part is rewritten.
 */
export function addProfileColumns(missing: readonly string[], opts: SchemaOptions): string[] {
  const wanted = new Set(missing);
  const columns = PROFILE_COLUMNS.filter(([name]) => wanted.has(name));
  if (columns.length === 0) return [];
  const add = columns.map(([name, , type]) => `ADD COLUMN IF NOT EXISTS ${name} ${type}`).join(', ');
  if (!opts.cluster) return [`ALTER TABLE profiles ${add}`];
  const cluster = quoteIdent(opts.cluster);
  return [`ALTER TABLE profiles_local ON CLUSTER ${cluster} ${add}`, `ALTER TABLE profiles ON CLUSTER ${cluster} ${add}`];
}
