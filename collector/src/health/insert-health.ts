/** Whether the store's inserts have been failing: the run of failures since the last success, and the last error. */
export class InsertHealth {
  consecutiveFailures = 0;
  lastError = '';

  /** Wraps an insert so that its outcome is recorded. */
  track<A extends unknown[]>(insert: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
    return async (...args) => {
      try {
        await insert(...args);
      } catch (err) {
        this.consecutiveFailures++;
        this.lastError = (err as Error)?.message?.split('\n')[0]?.slice(0, 300) ?? String(err);
        throw err;
      }
      this.consecutiveFailures = 0;
    };
  }

  /** A write succeeded outside the insert path (readiness's probe). */
  recovered(): void {
    this.consecutiveFailures = 0;
  }
}
