/**
 * Groups rows from many concurrent ingest calls into few large inserts:
 * ClickHouse wants thousands of rows per insert, not one insert per profile.
 * A caller's promise settles when the insert that carried its rows has
 * settled, so an agent is acknowledged only for what is stored.
 *
 * Bounded: rows waiting to be written never exceed `maxPendingRows`; past
 * that `add` refuses at once (the agent keeps the profile and retries later)
 * and the refusal is counted.
 *
 * Isolated: when ClickHouse refuses a batch for what is in it, the batch is
 * split in halves and each half written again, down to the one caller whose
 * rows are at fault, which alone fails (RefusedByStoreError); its
 * batch-mates are stored. A batch of n callers with one bad one costs about
 * 2 log2(n) more inserts. A transient failure (connection, timeout) fails
 * the whole batch as it is: splitting would not help.
 *
 * Callers whose deadline has passed by the time their batch is written are
 * left out of it and counted (`expiredAdds`): nobody waits for that answer.
 */
import { isDataError, RefusedByStoreError } from './insert-errors';

export interface BatcherOptions {
  /** Flush when a batch holds this many rows. */
  maxBatchRows: number;
  /**
   * A non-empty batch goes this long after its first row, or when an insert
   * is next free if all are busy then (it takes rows until it goes).
   */
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

/** The caller gave up (its deadline passed) before its rows were written. */
export class ExpiredError extends Error {
  constructor(where: string) {
    super(`the caller's deadline passed ${where}`);
    this.name = 'ExpiredError';
  }
}

/** One `add`: its rows go into the store together or not at all. */
interface Entry<Row> {
  rows: Row[];
  weight: number;
  expired: (() => boolean) | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Batch<Row> {
  entries: Entry<Row>[];
  /** Sum of the entries' weights (see `add`). */
  weight: number;
  /** Callers of flush(), told when the batch has settled either way. */
  flushed: (() => void)[];
}

export class Batcher<Row> {
  private current: Batch<Row> = { entries: [], weight: 0, flushed: [] };
  private readonly queued: Batch<Row>[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The current batch has waited its delay and goes with the next free insert. */
  private due = false;
  private inFlight = 0;
  private pending = 0;
  /** Rows refused because the store was behind. */
  refusedRows = 0;
  insertedRows = 0;
  /** Inserts that failed (a split batch counts each failed part). */
  failedInserts = 0;
  /** Callers whose rows the store refused for what they held. */
  isolatedFailures = 0;
  /** Callers left out of their batch because their deadline had passed. */
  expiredAdds = 0;

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
   * thousands of stack values); by default one each. `expired`, when given,
   * is asked just before the rows are written: true leaves them out.
   */
  add(rows: Row[], weight = rows.length, expired?: () => boolean): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    if (this.pending + weight > this.opts.maxPendingRows) {
      this.refusedRows += weight;
      return Promise.reject(new OverloadedError(this.pending));
    }
    this.pending += weight;
    const batch = this.current;
    const done = new Promise<void>((resolve, reject) => batch.entries.push({ rows, weight, expired, resolve, reject }));
    batch.weight += weight;
    if (batch.weight >= this.opts.maxBatchRows) this.seal();
    else if (!this.due) this.timer ??= setTimeout(() => this.ripen(), this.opts.maxDelayMs);
    return done;
  }

  /** Writes whatever is buffered now; resolves when all of it has settled. */
  async flush(): Promise<void> {
    const waiting = [...this.queued, this.current].flatMap((b) =>
      b.entries.length ? [new Promise<void>((resolve) => b.flushed.push(resolve))] : [],
    );
    this.seal();
    await Promise.all(waiting);
  }

  /** The current batch is full (or flushed): queued as it is, and a new one begun. */
  private seal(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.due = false;
    if (this.current.entries.length > 0) {
      this.queued.push(this.current);
      this.current = { entries: [], weight: 0, flushed: [] };
    }
    this.drain();
  }

  /**
   * The current batch has waited maxDelayMs: it goes as soon as an insert
   * can start, and until then keeps taking rows (group commit). Sealed at
   * its delay instead, every batch that ripened while the inserts were busy
   * went as an insert of its own: under load, inserts of one or two
   * profiles, whose fixed cost (a part written, then merged) made the store
   * slower the more it was behind.
   */
  private ripen(): void {
    this.timer = undefined;
    this.due = true;
    this.drain();
  }

  private drain(): void {
    while (this.inFlight < this.opts.concurrency) {
      let batch = this.queued.shift();
      if (!batch && this.due && this.current.entries.length > 0) {
        batch = this.current;
        this.current = { entries: [], weight: 0, flushed: [] };
        this.due = false;
      }
      if (!batch) return;
      const sealed = batch;
      this.inFlight++;
      void this.write(sealed.entries).then(() => {
        // Before the next batch starts: a caller whose rows are written must see them gone from the pending count.
        this.inFlight--;
        for (const f of sealed.flushed) f();
        queueMicrotask(() => this.drain());
      });
    }
  }

  /** Writes the entries, splitting on a data error; settles every entry, never rejects. */
  private async write(all: Entry<Row>[]): Promise<void> {
    const entries: Entry<Row>[] = [];
    for (const e of all) {
      if (e.expired?.()) {
        this.expiredAdds++;
        this.settle(e, new ExpiredError('before its rows were written'));
      } else entries.push(e);
    }
    if (entries.length === 0) return;
    try {
      await this.insert(entries.length === 1 ? entries[0]!.rows : entries.flatMap((e) => e.rows));
    } catch (err) {
      this.failedInserts++;
      if (!isDataError(err)) {
        for (const e of entries) this.settle(e, err);
        return;
      }
      if (entries.length === 1) {
        this.isolatedFailures++;
        this.settle(entries[0]!, new RefusedByStoreError(err));
        return;
      }
      const half = entries.length >> 1;
      await this.write(entries.slice(0, half));
      await this.write(entries.slice(half));
      return;
    }
    for (const e of entries) {
      this.insertedRows += e.weight;
      this.settle(e);
    }
  }

  private settle(e: Entry<Row>, err?: unknown): void {
    this.pending -= e.weight;
    if (err === undefined) e.resolve();
    else e.reject(err);
  }
}
