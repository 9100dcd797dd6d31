/**
 * Which failed inserts are the rows' fault. A batch carries the rows of
 * many profiles: when ClickHouse refuses it for what is in it (a value that
 * does not fit a column, more partitions than one insert may touch), the
 * batch is split and retried so that only the profile at fault fails, with
 * INVALID_ARGUMENT. When the engine or the connection is the trouble, every
 * profile in the batch fails with UNAVAILABLE and its agent retries it.
 */

/** ClickHouse error codes that say the engine is busy or unreachable, not that the data is wrong. */
const TRANSIENT_CODES = new Set([
  159, // TIMEOUT_EXCEEDED
  164, // READONLY
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  319, // UNKNOWN_STATUS_OF_INSERT
  394, // QUERY_WAS_CANCELLED
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION
  // The disk, not the data: a full or read-only data directory must be
  // UNAVAILABLE (the agent keeps the profile) and make /readyz fail, never
  // INVALID_ARGUMENT (the agent would drop every profile).
  74, // CANNOT_READ_FROM_FILE_DESCRIPTOR
  75, // CANNOT_WRITE_TO_FILE_DESCRIPTOR
  76, // CANNOT_OPEN_FILE
  243, // NOT_ENOUGH_SPACE
  1001, // STD_EXCEPTION (filesystem errors)
]);

/** Messages of a failing file system, whatever code they come with. */
const FILE_SYSTEM = /No space left on device|ENOSPC|Read-only file system|EROFS|Cannot reserve .* not enough space/i;
const TOO_MANY_PARTS = 252;

/** The ClickHouse error code of `err`, when it is a ClickHouse exception. */
function clickhouseCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; clickhouseCode?: unknown } | null;
  const code = e?.clickhouseCode ?? e?.code;
  const n = typeof code === 'number' ? code : typeof code === 'string' && /^\d+$/.test(code) ? Number(code) : undefined;
  return n;
}

/**
 * True when the insert failed because of the rows it carried. TOO_MANY_PARTS
 * is both "merges are behind" (transient) and "more partitions than one
 * insert may write" (the batch's mix of days: splitting it helps).
 */
export function isDataError(err: unknown): boolean {
  const code = clickhouseCode(err);
  if (code === undefined) return false; // a connection error, a timeout: not ClickHouse's answer
  if (FILE_SYSTEM.test(String((err as Error)?.message ?? err))) return false;
  if (code === TOO_MANY_PARTS) return /partitions/i.test((err as Error).message);
  return !TRANSIENT_CODES.has(code);
}

/** A profile the store refused for what it holds; the gRPC server answers INVALID_ARGUMENT. */
export class RefusedByStoreError extends Error {
  constructor(override readonly cause: unknown) {
    super(`the store refused this profile: ${String((cause as Error)?.message ?? cause).split('\n')[0]!.slice(0, 500)}`);
    this.name = 'RefusedByStoreError';
  }
}
