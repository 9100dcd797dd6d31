import { describe, expect, it } from 'vitest';
import { BoundedQueue } from '../../agent/src/queue';

const item = (id: number, bytes = 10) => ({ id, bytes });

describe('BoundedQueue', () => {
  it('drops the oldest when the count limit is reached, and counts each drop', () => {
    const bursts: string[] = [];
    const q = new BoundedQueue<{ id: number; bytes: number }>({ maxItems: 3, maxBytes: 1_000 }, (r) => bursts.push(r));
    for (let i = 1; i <= 7; i++) q.push(item(i));
    expect(q.length).toBe(3);
    expect(q.peek()?.id).toBe(5);
    expect(q.dropped).toBe(4);
    expect(bursts).toHaveLength(1); // once per burst, not per drop
  });

  it('drops the oldest until the bytes fit', () => {
    const q = new BoundedQueue<{ id: number; bytes: number }>({ maxItems: 100, maxBytes: 100 });
    q.push(item(1, 40));
    q.push(item(2, 40));
    q.push(item(3, 50));
    expect(q.bytes).toBe(90);
    expect(q.length).toBe(2);
    expect(q.peek()?.id).toBe(2);
    expect(q.dropped).toBe(1);
  });

  it('an item larger than the byte bound is dropped, not stored', () => {
    const q = new BoundedQueue<{ id: number; bytes: number }>({ maxItems: 10, maxBytes: 100 });
    q.push(item(1, 50));
    expect(q.push(item(2, 101))).toBe(false);
    expect(q.length).toBe(1);
    expect(q.bytes).toBe(50);
    expect(q.dropped).toBe(1);
  });

  it('never exceeds its bounds under churn', () => {
    const q = new BoundedQueue<{ id: number; bytes: number }>({ maxItems: 5, maxBytes: 300 });
    for (let i = 0; i < 10_000; i++) {
      q.push(item(i, 1 + ((i * 37) % 150)));
      expect(q.length).toBeLessThanOrEqual(5);
      expect(q.bytes).toBeLessThanOrEqual(300);
      if (i % 3 === 0) {
        const head = q.peek();
        if (head) q.remove(head);
      }
    }
    expect(q.dropped).toBeGreaterThan(0);
  });

  it('remove() of an already-evicted item is a no-op', () => {
    const q = new BoundedQueue<{ id: number; bytes: number }>({ maxItems: 1, maxBytes: 100 });
    const a = item(1);
    q.push(a);
    q.push(item(2));
    expect(q.remove(a)).toBe(false);
    expect(q.length).toBe(1);
    expect(q.bytes).toBe(10);
  });

  it('logs again after endBurst()', () => {
    const bursts: string[] = [];
    const q = new BoundedQueue<{ id: number; bytes: number }>({ maxItems: 1, maxBytes: 100 }, (r) => bursts.push(r));
    q.push(item(1));
    q.push(item(2));
    q.push(item(3));
    expect(bursts).toHaveLength(1);
    q.endBurst();
    q.push(item(4));
    expect(bursts).toHaveLength(2);
    expect(q.dropped).toBe(3);
  });
});
