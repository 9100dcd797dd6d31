/**
 * The columns of `profiles`, declared once: the CREATE TABLE column list
 * (schema.ts), the insert's column list (profiles-insert.ts) and the row
 * type the ingester fills (ProfileFields) all derive from this table, so
 * they cannot drift apart.
 */

/**
 * How a column's value travels in the insert: `time` values are epoch
 * milliseconds; `strings` and `numbers` are arrays (the third element of a
 * column is then the array's type).
 */
export type ColumnKind = 'string' | 'number' | 'time' | 'labels' | 'strings' | 'numbers';

const TIME = "DateTime64(3, 'UTC')";

/** Every column of `profiles` but the stack value arrays: name, kind, ClickHouse type. */
export const PROFILE_COLUMNS = [
  // The tenant the writing token is bound to ('' = the default tenant);
  // every read is filtered by it (docs/security.md#tenants).
  ['tenant', 'string', 'LowCardinality(String)'],
  ['service', 'string', 'LowCardinality(String)'],
  ['instance', 'string', 'String'],
  ['profile_id', 'string', 'String'],
  ['start_time', 'time', TIME],
  ['time', 'time', `${TIME} CODEC(DoubleDelta, ZSTD(1))`],
  ['labels', 'labels', 'Map(LowCardinality(String), String)'],
  ['hostname', 'string', 'LowCardinality(String)'],
  ['pid', 'number', 'UInt32'],
  ['thread_id', 'number', 'UInt32'],
  ['process_start_time', 'time', TIME],
  ['runtime_version', 'string', 'LowCardinality(String)'],
  ['agent_version', 'string', 'LowCardinality(String)'],
  ['stacks', 'number', 'UInt32'],
  ['total_bytes', 'number', 'Int64'],
  ['total_objects', 'number', 'Int64'],
  ['rss_bytes', 'number', 'UInt64'],
  ['heap_used_bytes', 'number', 'UInt64'],
  ['heap_total_bytes', 'number', 'UInt64'],
  ['external_bytes', 'number', 'UInt64'],
  ['array_buffers_bytes', 'number', 'UInt64'],
  ['heap_size_limit_bytes', 'number', 'UInt64'],
  ['agent_profiles_sent', 'number', 'UInt64'],
  ['agent_profiles_dropped', 'number', 'UInt64'],
  ['agent_sampling_time_us', 'number', 'UInt64'],
  ['agent_queue_length', 'number', 'UInt64'],
  ['agent_queue_bytes', 'number', 'UInt64'],
  ['agent_send_failures', 'number', 'UInt64'],
  ['received_at', 'time', TIME],
  // IngestRequest.gc (ingest.proto): major GCs the agent observed, cumulative;
  // the end of the newest, Unix epoch ms (0 if none); 1 if the snapshot was
  // taken right after a major GC (no old-space garbage in it).
  ['gc_major_gcs', 'number', 'UInt64'],
  ['gc_last_major_gc_end_ms', 'number', 'Int64'],
  ['gc_after_major_gc', 'number', 'UInt8'],
  // AgentStats.forced_gcs / forced_gc_time_us: the agent's GC assist, cumulative.
  ['agent_forced_gcs', 'number', 'UInt64'],
  ['agent_forced_gc_time_us', 'number', 'UInt64'],
  // IngestRequest.inlining_disabled: 1 if the profile was taken in precise
  // mode with V8's inlining off (what a leak site's attribution rests on).
  ['inlining_disabled', 'number', 'UInt8'],
  // AgentStats.precise_*: precise periods, the time spent in them (ms) and
  // the main-thread time of their switches (us), cumulative.
  ['agent_precise_activations', 'number', 'UInt64'],
  ['agent_precise_time_ms', 'number', 'UInt64'],
  ['agent_precise_switch_time_us', 'number', 'UInt64'],
  // IngestRequest.jobs: the queue integrations' counters per job type, as
  // parallel arrays (one entry per type: queue, name, completed, failed,
  // summed run time us, summed wait ms, jobs with a wait), cumulative; jobs
  // not counted by type (past the agent's cap); queue depths (queue,
  // waiting). Empty from agents that predate them or count no jobs.
  ['job_queues', 'strings', 'Array(LowCardinality(String))'],
  ['job_names', 'strings', 'Array(LowCardinality(String))'],
  ['jobs_completed', 'numbers', 'Array(UInt64)'],
  ['jobs_failed', 'numbers', 'Array(UInt64)'],
  ['job_run_time_us', 'numbers', 'Array(UInt64)'],
  ['job_wait_time_ms', 'numbers', 'Array(UInt64)'],
  ['jobs_waited', 'numbers', 'Array(UInt64)'],
  ['jobs_dropped', 'number', 'UInt64'],
  ['queue_depth_queues', 'strings', 'Array(LowCardinality(String))'],
  ['queue_depth_waiting', 'numbers', 'Array(UInt64)'],
] as const satisfies readonly (readonly [string, ColumnKind, string])[];

/**
 * The stack values, three parallel arrays (schema.ts says why). ZSTD(3),
 * not (1): a day of one instance at 60 s (bench/storage.mjs, 5,000 stacks)
 * takes 1.90 bytes a stack value against 2.48, mostly from stack_objects
 * (1.17 -> 0.64), for the same load time. T64 before ZSTD made it worse
 * (2.37): it breaks the row-to-row repetition that ZSTD finds.
 */
export const STACK_VALUE_COLUMNS = [
  ['stack_ids', 'Array(UInt64) CODEC(ZSTD(3))'],
  ['stack_objects', 'Array(Int64) CODEC(ZSTD(3))'],
  ['stack_bytes', 'Array(Int64) CODEC(ZSTD(3))'],
] as const;

type ValueOf<K extends ColumnKind> = K extends 'string'
  ? string
  : K extends 'labels'
    ? Record<string, string>
    : K extends 'strings'
      ? readonly string[]
      : K extends 'numbers'
        ? readonly number[]
        : number;

/** One profile's row, but its stack values. */
export type ProfileFields = { [C in (typeof PROFILE_COLUMNS)[number] as C[0]]: ValueOf<C[1]> };

/** The DDL column list of `profiles`. */
export function profileColumnsDdl(): string {
  return [...PROFILE_COLUMNS.map(([name, , type]) => `${name} ${type}`), ...STACK_VALUE_COLUMNS.map(([name, type]) => `${name} ${type}`)].join(
    ',\n        ',
  );
}
