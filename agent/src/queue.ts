/** One profile waiting to be acknowledged by the collector. */
export interface QueuedItem {
  readonly bytes: number;
}

export interface QueueLimits {
  maxItems: number;
  maxBytes: number;
}

/**
 * A FIFO bounded by item count AND total bytes. When a new item does not fit,
 * the OLDEST items are dropped: for leak hunting the newest snapshot is the
 * most valuable one. Drops are counted, and `onDropBurst` fires once per
 * burst (until `endBurst()` is called after a successful send) so that a long
 * outage logs one line, not one per profile.
 */
export class BoundedQueue<T extends QueuedItem> {
  private readonly items: T[] = [];
  private totalBytes = 0;
  private inBurst = false;
  dropped = 0;

  constructor(
    private readonly limits: QueueLimits,
    private readonly onDropBurst: (reason: string) => void = () => {},
  ) {}

  /** Adds an item, evicting the oldest ones as needed. Returns false if the item alone exceeds the byte limit (it is dropped). */
  push(item: T): boolean {
    if (item.bytes > this.limits.maxBytes || this.limits.maxItems < 1) {
      this.countDrop(1, `a profile of ${item.bytes} bytes exceeds maxQueueBytes=${this.limits.maxBytes}`);
      return false;
    }
    let evicted = 0;
    while (
      this.items.length > 0 &&
      (this.items.length + 1 > this.limits.maxItems || this.totalBytes + item.bytes > this.limits.maxBytes)
    ) {
      const old = this.items.shift();
      if (old) this.totalBytes -= old.bytes;
      evicted++;
    }
    if (evicted > 0) {
      this.countDrop(
        evicted,
        `queue full (maxQueueProfiles=${this.limits.maxItems}, maxQueueBytes=${this.limits.maxBytes}); dropping the oldest profiles`,
      );
    }
    this.items.push(item);
    this.totalBytes += item.bytes;
    return true;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** Removes a specific item (it may already have been evicted). Returns whether it was present. */
  remove(item: T): boolean {
    const i = this.items.indexOf(item);
    if (i < 0) return false;
    this.items.splice(i, 1);
    this.totalBytes -= item.bytes;
    return true;
  }

  /** Counts a profile dropped for another reason (e.g. rejected by the collector). */
  countDrop(n: number, reason: string): void {
    this.dropped += n;
    if (!this.inBurst) {
      this.inBurst = true;
      this.onDropBurst(reason);
    }
  }

  /** Called after a successful send: the next drop starts a new burst and logs again. */
  endBurst(): void {
    this.inBurst = false;
  }

  get length(): number {
    return this.items.length;
  }

  get bytes(): number {
    return this.totalBytes;
  }
}
