/**
 * Holder captures (IngestRequest.holders): one row of `holder_captures` per
 * capture an agent answered, its holders as parallel arrays in the row. The
 * columns are declared once here: the CREATE TABLE (schema.ts), the insert
 * and the read derive from HOLDER_CAPTURE_COLUMNS.
 *
 * Bounded: an agent answers only when the collector asked it, and the
 * collector asks one instance per service per cool-down
 * (leaks/holder-requests.ts); each row keeps at most MAX_HOLDERS_STORED
 * holders with strings of at most MAX_TEXT_CHARS; rows expire with the
 * retention.
 */
import type { Holder__Output } from '@heapwatch/proto';
import { chTime, type Sql } from './sql';

export const MAX_HOLDERS_STORED = 20;
const MAX_TEXT_CHARS = 500;

const TIME = "DateTime64(3, 'UTC')";

/** name, ClickHouse type, and the capture field each column holds. */
export const HOLDER_CAPTURE_COLUMNS = [
  ['tenant', 'LowCardinality(String)'],
  ['service', 'LowCardinality(String)'],
  ['instance', 'String'],
  ['capture_id', 'String'],
  ['taken_at', TIME],
  ['skipped', 'String'],
  ['heap_used_bytes', 'UInt64'],
  ['max_heap_bytes', 'UInt64'],
  ['pause_ms', 'UInt32'],
  ['parse_ms', 'UInt32'],
  ['leaves', 'UInt64'],
  ['off_heap_bytes', 'UInt64'],
  ['unreachable', 'UInt64'],
  // One entry per holder, in the agent's order: off-heap holders, then on-heap ones (off-heap bytes 0).
  ['holder_owners', 'Array(String)'],
  ['holder_owner_kinds', 'Array(LowCardinality(String))'],
  ['holder_containers', 'Array(LowCardinality(String))'],
  ['holder_items', 'Array(UInt64)'],
  ['holder_functions', 'Array(String)'],
  ['holder_files', 'Array(String)'],
  ['holder_lines', 'Array(UInt32)'],
  ['holder_columns', 'Array(UInt32)'],
  ['holder_off_heap_bytes', 'Array(UInt64)'],
  ['holder_heap_bytes', 'Array(UInt64)'],
  ['holder_objects', 'Array(UInt64)'],
  ['holder_paths', 'Array(String)'],
] as const;

export function holderCaptureColumnsDdl(): string {
  return HOLDER_CAPTURE_COLUMNS.map(([name, type]) => `${name} ${type}`).join(',\n        ');
}

/** One holder as the agent sent it (heapwatch.v1.Holder) and the store keeps it. */
export type StoredHolder = Holder__Output;

export interface HolderCaptureRow {
  instance: string;
  captureId: string;
  takenAtMs: number;
  /** '' when taken; else why not. */
  skipped: string;
  heapUsedBytes: number;
  maxHeapBytes: number;
  pauseMs: number;
  parseMs: number;
  leaves: number;
  offHeapBytes: number;
  unreachable: number;
  holders: StoredHolder[];
}

const text = (s: string): string => (s.length > MAX_TEXT_CHARS ? s.slice(0, MAX_TEXT_CHARS) : s);
const uint = (n: number): number => (Number.isFinite(n) && n > 0 ? Math.trunc(n) : 0);

export class HolderCaptures {
  constructor(private readonly sql: Sql) {}

  async write(tenant: string, service: string, c: HolderCaptureRow): Promise<void> {
    const hs = c.holders.slice(0, MAX_HOLDERS_STORED);
    const row: Record<(typeof HOLDER_CAPTURE_COLUMNS)[number][0], unknown> = {
      tenant,
      service,
      instance: c.instance,
      capture_id: text(c.captureId),
      taken_at: chTime(c.takenAtMs),
      skipped: text(c.skipped),
      heap_used_bytes: uint(c.heapUsedBytes),
      max_heap_bytes: uint(c.maxHeapBytes),
      pause_ms: uint(c.pauseMs),
      parse_ms: uint(c.parseMs),
      leaves: uint(c.leaves),
      off_heap_bytes: uint(c.offHeapBytes),
      unreachable: uint(c.unreachable),
      holder_owners: hs.map((h) => text(h.owner)),
      holder_owner_kinds: hs.map((h) => text(h.ownerKind)),
      holder_containers: hs.map((h) => text(h.container)),
      holder_items: hs.map((h) => uint(h.items)),
      holder_functions: hs.map((h) => text(h.function)),
      holder_files: hs.map((h) => text(h.file)),
      holder_lines: hs.map((h) => uint(h.line)),
      holder_columns: hs.map((h) => uint(h.column)),
      holder_off_heap_bytes: hs.map((h) => uint(h.offHeapBytes)),
      holder_heap_bytes: hs.map((h) => uint(h.heapBytes)),
      holder_objects: hs.map((h) => uint(h.objects)),
      holder_paths: hs.map((h) => text(h.path)),
    };
    await this.sql.insert('holder_captures', [row], 'JSONEachRow');
  }

  /** The newest capture of a service taken within `lookbackMs` of `nowMs`, or null. */
  async latest(tenant: string, service: string, nowMs: number, lookbackMs: number): Promise<HolderCaptureRow | null> {
    const names = HOLDER_CAPTURE_COLUMNS.map(([n]) => n).filter((n) => n !== 'taken_at' && n !== 'tenant' && n !== 'service');
    const rows = await this.sql.rows<Record<string, unknown>>(
      `SELECT ${names.join(', ')}, toFloat64(toUnixTimestamp64Milli(taken_at)) AS t
         FROM holder_captures
        WHERE tenant = {tenant:String} AND service = {service:String}
          AND taken_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
        ORDER BY taken_at DESC LIMIT 1`,
      { tenant, service, from: Math.max(0, nowMs - lookbackMs) },
    );
    const r = rows[0];
    if (!r) return null;
    const arr = (k: string): unknown[] => (r[k] as unknown[] | undefined) ?? [];
    const num = (v: unknown): number => Number(v ?? 0);
    const owners = arr('holder_owners') as string[];
    return {
      instance: String(r.instance),
      captureId: String(r.capture_id),
      takenAtMs: num(r.t),
      skipped: String(r.skipped),
      heapUsedBytes: num(r.heap_used_bytes),
      maxHeapBytes: num(r.max_heap_bytes),
      pauseMs: num(r.pause_ms),
      parseMs: num(r.parse_ms),
      leaves: num(r.leaves),
      offHeapBytes: num(r.off_heap_bytes),
      unreachable: num(r.unreachable),
      holders: owners.map((owner, i) => ({
        owner,
        ownerKind: String(arr('holder_owner_kinds')[i] ?? ''),
        container: String(arr('holder_containers')[i] ?? ''),
        items: num(arr('holder_items')[i]),
        function: String(arr('holder_functions')[i] ?? ''),
        file: String(arr('holder_files')[i] ?? ''),
        line: num(arr('holder_lines')[i]),
        column: num(arr('holder_columns')[i]),
        offHeapBytes: num(arr('holder_off_heap_bytes')[i]),
        heapBytes: num(arr('holder_heap_bytes')[i]),
        objects: num(arr('holder_objects')[i]),
        path: String(arr('holder_paths')[i] ?? ''),
      })),
    };
  }
}
