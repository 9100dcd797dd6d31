/**
 * At most `size` holders at once; the rest wait their turn in order. The
 * waiters are bounded by whoever calls (ingest: by admission control).
 *
 * Ingest decodes a profile in this many slots: decoding is CPU work and a
 * request may inflate to maxProfileBytes, so with more at once the memory
 * of inflated profiles would grow with the requests in flight instead of
 * with the cores that can work on them.
 */
export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {}

  async acquire(): Promise<void> {
    if (this.used < this.size) {
      this.used++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot to the next waiter, or frees it. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.used--;
  }
}
