/**
 * Groups rows from many concurrent ingest calls into few large inserts:
 * ClickHouse wants thousands of rows per insert, not one insert per profile.
 * A caller's promise settles when the insert that carried its rows has
 * settled, so an agent is acknowledged only for what is stored.
 *
 * Bounded: rows waiting to be written never exceed `maxPendingRows`; past
 * that `add` refuses at once (the agent keeps the profile and retries later)
 * and the refusal is counted.
 */

export interface BatcherOptions {
  /** Flush when a batch holds this many rows. */
  maxBatchRows: number;
  /** Flush a non-empty batch at the latest this long after its first row. */
  maxDelayMs: number;
  /** Rows buffered or in flight, at most. */
  maxPendingRows: number;
  /** Inserts in flight at once. */
  concurrency: number;
}

export class OverloadedError extends Error {
  constructor(pending: number) {
    super(`store is behind: ${pending} rows waiting to be written`);
    this.name = 'OverloadedError';
  }
}

interface Batch<Row> {
  rows: Row[];
  /** Sum of the rows' weights (see `add`). */
  weight: number;
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
}

export class Batcher<Row> {
  private current: Batch<Row> = { rows: [], weight: 0, waiters: [] };
  private readonly queued: Batch<Row>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private pending = 0;
  /** Rows refused because the store was behind. */
  refusedRows = 0;
  insertedRows = 0;
  failedInserts = 0;

  constructor(
    private readonly insert: (rows: Row[]) => Promise<void>,
    private readonly opts: BatcherOptions,
  ) {}

  get pendingRows(): number {
    return this.pending;
  }

  /**
   * `weight` is what the rows count for against maxBatchRows and
   * maxPendingRows, for rows that stand for many (a profile row carries its
   * thousands of stack values); by default one each.
   */
  add(rows: Row[], weight = rows.length): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    if (this.pending + weight > this.opts.maxPendingRows) {
      this.refusedRows += weight;
      return Promise.reject(new OverloadedError(this.pending));
    }
    this.pending += weight;
    const batch = this.current;
    for (const row of rows) batch.rows.push(row);
    batch.weight += weight;
    const done = new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (batch.weight >= this.opts.maxBatchRows) this.seal();
    else this.timer ??= setTimeout(() => this.seal(), this.opts.maxDelayMs);
    return done;
  }

  /** Writes whatever is buffered now; resolves when all of it has settled. */
  async flush(): Promise<void> {
    const waiting = [...this.queued, this.current].flatMap((b) =>
      b.rows.length ? [new Promise<void>((resolve) => b.waiters.push({ resolve, reject: () => resolve() }))] : [],
    );
    this.seal();
    await Promise.all(waiting);
  }

  private seal(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.current.rows.length > 0) {
      this.queued.push(this.current);
      this.current = { rows: [], weight: 0, waiters: [] };
    }
    this.drain();
  }

  private drain(): void {
    while (this.inFlight < this.opts.concurrency && this.queued.length > 0) {
      const batch = this.queued.shift()!;
      this.inFlight++;
      const settle = (): void => {
        // Before the waiters run: a caller whose rows are written must see
        // them gone from the pending count.
        this.inFlight--;
        this.pending -= batch.weight;
        queueMicrotask(() => this.drain());
      };
      this.insert(batch.rows).then(
        () => {
          settle();
          this.insertedRows += batch.weight;
          for (const w of batch.waiters) w.resolve();
        },
        (err: unknown) => {
          settle();
          this.failedInserts++;
          for (const w of batch.waiters) w.reject(err);
        },
      );
    }
  }
}
