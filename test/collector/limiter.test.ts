import { describe, expect, it } from 'vitest';
import { Coalescer, LimitError, Limiter } from '../../collector/src/query/limiter';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Limiter', () => {
  it('runs at most `concurrency` tasks at once and queues the rest in order', async () => {
    const l = new Limiter('reads', { concurrency: 2, maxQueued: 10, timeoutMs: 5000 });
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const task = (i: number) => async () => {
      running++;
      peak = Math.max(peak, running);
      await sleep(10);
      running--;
      order.push(i);
      return i;
    };
    const results = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => l.run(task(i))));
    expect(results).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(l.active).toBe(0);
  });

  it('refuses at once past the queue bound, and counts it', async () => {
    const l = new Limiter('reads', { concurrency: 1, maxQueued: 1, timeoutMs: 5000 });
    const slow = () => sleep(50);
    const a = l.run(slow);
    const b = l.run(slow);
    await expect(l.run(slow)).rejects.toBeInstanceOf(LimitError);
    await Promise.all([a, b]);
    expect(l.counters.refused).toBe(1);
  });

  it('answers a task that overruns its deadline with a LimitError, and keeps its slot until it ends', async () => {
    const l = new Limiter('reads', { concurrency: 1, maxQueued: 5, timeoutMs: 30 });
    let finished = false;
    const p = l.run(async () => {
      await sleep(100);
      finished = true;
    });
    await expect(p).rejects.toThrow(/did not finish within 30 ms/);
    expect(finished).toBe(false);
    expect(l.active).toBe(1); // the query still runs: the cap stays true
    await sleep(120);
    expect(finished).toBe(true);
    expect(l.active).toBe(0);
    expect(l.counters.timedOut).toBe(1);
  });

  it('times a queued task out from submission and drops it from the queue', async () => {
    const l = new Limiter('reads', { concurrency: 1, maxQueued: 5, timeoutMs: 40 });
    let ran = false;
    const first = l.run(() => sleep(100)).catch((err: unknown) => err);
    const queued = l.run(async () => {
      ran = true;
    });
    await expect(queued).rejects.toBeInstanceOf(LimitError);
    expect(l.queued).toBe(0);
    expect(await first).toBeInstanceOf(LimitError);
    await sleep(80);
    expect(ran).toBe(false);
  });
});

describe('Coalescer', () => {
  it('shares one run among concurrent calls for a key, and runs again afterwards', async () => {
    const c = new Coalescer<number>();
    let runs = 0;
    const task = async () => {
      runs++;
      await sleep(20);
      return runs;
    };
    const all = await Promise.all(Array.from({ length: 50 }, () => c.run('svc', task)));
    expect(new Set(all)).toEqual(new Set([1]));
    expect(c.shared).toBe(49);
    await c.run('other', task);
    expect(await c.run('svc', task)).toBe(3);
  });
});
