/**
 * A set that forgets its least recently added keys beyond `capacity`.
 * Map keeps insertion order, so the oldest key is always the first.
 */
export class BoundedSet {
  private readonly keys = new Map<string, true>();
  /** Keys forgotten to stay within capacity. */
  evicted = 0;

  constructor(readonly capacity: number) {}

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    if (this.keys.has(key)) return;
    this.keys.set(key, true);
    if (this.keys.size > this.capacity) {
      this.keys.delete(this.keys.keys().next().value!);
      this.evicted++;
    }
  }

  get size(): number {
    return this.keys.size;
  }
}
