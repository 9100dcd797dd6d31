/**
 * A cap on concurrent work with a bounded queue and a deadline: the API's
 * reads and leak evaluations share the store's engine with ingest, so at
 * most `concurrency` of them run at once, at most `maxQueued` wait, and a
 * task that has not finished `timeoutMs` after it was submitted is answered
 * with a LimitError (its query still runs to its end, holding its slot, so
 * the cap stays true). Refusals and timeouts are counted.
 */
export interface LimiterOptions {
  concurrency: number;
  maxQueued: number;
  timeoutMs: number;
}

export class LimitError extends Error {
  constructor(
    message: string,
    /** Seconds a client should wait before trying again. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'LimitError';
  }
}

export class Limiter {
  private running = 0;
  private readonly queue: (() => void)[] = [];
  readonly counters = { started: 0, refused: 0, timedOut: 0 };

  constructor(
    readonly name: string,
    readonly opts: LimiterOptions,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.queue.length;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.opts.concurrency && this.queue.length >= this.opts.maxQueued) {
      this.counters.refused++;
      return Promise.reject(new LimitError(`too many ${this.name} at once (${this.running} running, ${this.queue.length} queued); retry later`, 1));
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.counters.timedOut++;
        const i = this.queue.indexOf(start);
        if (i >= 0) this.queue.splice(i, 1);
        reject(new LimitError(`${this.name} did not finish within ${this.opts.timeoutMs} ms`, Math.ceil(this.opts.timeoutMs / 1000)));
      }, this.opts.timeoutMs);
      timer.unref();
      const start = (): void => {
        this.running++;
        this.counters.started++;
        let p: Promise<T>;
        try {
          p = task();
        } catch (err) {
          p = Promise.reject(err);
        }
        p.then(
          (v) => {
            if (!settled) resolve(v);
          },
          (err: unknown) => {
            if (!settled) reject(err);
          },
        ).finally(() => {
          settled = true;
          clearTimeout(timer);
          this.running--;
          this.queue.shift()?.();
        });
      };
      if (this.running < this.opts.concurrency) start();
      else this.queue.push(start);
    });
  }

  metrics(prefix: string): Record<string, number> {
    return {
      [`${prefix}_active`]: this.running,
      [`${prefix}_queued`]: this.queue.length,
      [`${prefix}_refused_total`]: this.counters.refused,
      [`${prefix}_timed_out_total`]: this.counters.timedOut,
    };
  }
}

/** Concurrent calls for one key share one run of `task`. */
export class Coalescer<T> {
  private readonly inFlight = new Map<string, Promise<T>>();
  /** Calls answered by a run another call started. */
  shared = 0;

  run(key: string, task: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running) {
      this.shared++;
      return running;
    }
    const p = task().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }
}
