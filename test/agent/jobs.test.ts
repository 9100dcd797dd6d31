/**
 * The queue integrations of @heapwatch/agent (agent/src/jobs), as a host
 * loads them (the compiled package): the counters they keep, that they
 * never throw into the host or change what its handlers return or throw,
 * that the type cap holds, and that nothing of theirs keeps a process
 * alive. BullMQ and amqplib run against the machine's real Redis and
 * RabbitMQ (skipped, saying why, when one does not answer).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/collector';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const agent = require('../../agent/dist/index.js') as typeof import('../../agent/src/index');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const registry = require('../../agent/dist/jobs/registry.js') as typeof import('../../agent/src/jobs/registry');

type Counters = NonNullable<ReturnType<typeof agent.jobStats>>['types'][number];

function counters(queue: string, name = ''): Counters | undefined {
  return agent.jobStats()?.types.find((t) => t.queue === queue && t.name === name);
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const [redisUp, rabbitUp] = await Promise.all([answers(6379), answers(5672)]);

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('trackJobs', () => {
  it('counts completed and failed jobs and passes results and errors through unchanged', async () => {
    const q = `q-${randomUUID()}`;
    const boom = new Error('boom');
    const handler = agent.trackJobs(q, 'resize', async (job: { fail: boolean; n: number }) => {
      await new Promise((r) => setTimeout(r, 5));
      if (job.fail) throw boom;
      return job.n * 2;
    });
    expect(await handler({ fail: false, n: 21 })).toBe(42);
    await expect(handler({ fail: true, n: 0 })).rejects.toBe(boom);
    expect(await handler({ fail: false, n: 1 })).toBe(2);
    const c = counters(q, 'resize')!;
    expect(c).toMatchObject({ queue: q, name: 'resize', completed: 2, failed: 1, waited: 0, waitTimeMs: 0 });
    // Three jobs of about 5 ms each (a timer may fire up to a ms early by
    // performance.now()); one in RUN_TIME_SAMPLE is timed, the sum scaled to all.
    expect(c.runTimeUs).toBeGreaterThanOrEqual(3 * 3500);
  });

  it('counts synchronous handlers, names from the job, and keeps the handler name and arity', () => {
    const q = `q-${randomUUID()}`;
    const err = new TypeError('bad job');
    function process(job: { type: string }, _token?: string): string {
      if (job.type === 'bad') throw err;
      return job.type.toUpperCase();
    }
    const tracked = agent.trackJobs(q, (job) => job.type, process);
    expect(tracked.name).toBe('process');
    expect(tracked.length).toBe(process.length);
    expect(tracked({ type: 'email' })).toBe('EMAIL');
    expect(tracked({ type: 'email' })).toBe('EMAIL');
    expect(() => tracked({ type: 'bad' })).toThrow(err);
    expect(counters(q, 'email')).toMatchObject({ completed: 2, failed: 0 });
    expect(counters(q, 'bad')).toMatchObject({ completed: 0, failed: 1 });
  });

  it('takes a (job, done) handler as callback style: the job finishes when done is called', async () => {
    const q = `q-${randomUUID()}`;
    const results: unknown[] = [];
    const tracked = agent.trackJobs(q, 'cb', (job: number, done: (err: Error | null, v?: number) => void) => {
      setTimeout(() => (job < 0 ? done(new Error('negative')) : done(null, job + 1)), 1);
    });
    await new Promise<void>((resolve) => tracked(1, (e, v) => (results.push([e, v]), resolve())));
    await new Promise<void>((resolve) => tracked(-1, (e) => (results.push(String(e)), resolve())));
    expect(results).toEqual([[null, 2], 'Error: negative']);
    expect(counters(q, 'cb')).toMatchObject({ completed: 1, failed: 1 });
  });

  it('never throws into the host: a name function that throws, odd thenables, a handler that is not a function', async () => {
    const q = `q-${randomUUID()}`;
    const throwingName = agent.trackJobs(q, () => {
      throw new Error('name');
    }, (x: number) => x + 1);
    expect(throwingName(1)).toBe(2);
    expect(counters(q, '')).toMatchObject({ completed: 1 });
    // A thenable whose `then` getter throws: returned as it is, counted as completed.
    const odd = { get then(): never { throw new Error('then getter'); } };
    expect(agent.trackJobs(q, 'odd', () => odd)()).toBe(odd);
    // A thenable whose then() throws: returned as it is.
    const bad = { then(): never { throw new Error('then call'); } };
    expect(agent.trackJobs(q, 'bad', () => bad)()).toBe(bad);
    // Not a function: given back as it was, so the host fails as it would have.
    expect(agent.trackJobs(q, 'x', 42 as never)).toBe(42);
    expect(agent.trackJobs(undefined as never, undefined as never, ((v: number) => v) as never)(7)).toBe(7);
  });
});

describe('the job type cap', () => {
  it('counts jobs of types past maxJobTypes as dropped, and sends no more types than the cap', () => {
    const reg = registry.jobRegistry();
    const before = reg.list.length;
    const saved = reg.maxTypes;
    reg.maxTypes = before + 2;
    try {
      const q = `cap-${randomUUID()}`;
      const dropped0 = agent.jobStats()?.droppedJobs ?? 0;
      const h = agent.trackJobs(q, (n: number) => `type-${n}`, (n: number) => n);
      for (let i = 0; i < 5; i++) h(i);
      h(0);
      h(4);
      const stats = agent.jobStats()!;
      expect(stats.types.length).toBe(before + 2);
      expect(stats.types.filter((t) => t.queue === q).map((t) => [t.name, t.completed])).toEqual([
        ['type-0', 2],
        ['type-1', 1],
      ]);
      expect(stats.droppedJobs - dropped0).toBe(4);
    } finally {
      reg.maxTypes = saved;
    }
  });

  it('cuts long names and replaces control characters (the collector refuses them)', () => {
    const q = `long-${randomUUID()}`;
    agent.trackJobs(q, `a\nb${'x'.repeat(300)}`, () => 1)();
    const t = agent.jobStats()!.types.find((x) => x.queue === q)!;
    expect(t.name.length).toBe(registry.MAX_JOB_NAME_LENGTH);
    expect(t.name.startsWith('a?b')).toBe(true);
  });
});

describe('objects that are not what they should be', () => {
  const hostile = new Proxy(
    {},
    {
      get() {
        throw new Error('hostile get');
      },
      has() {
        throw new Error('hostile has');
      },
    },
  );

  it('bullmq() and amqplib() return what they were given and throw nothing', () => {
    for (const x of [null, undefined, 0, 'worker', {}, [], hostile, { on: 1 }, { consume: 'no' }]) {
      expect(agent.bullmq(x)).toBe(x);
      expect(agent.amqplib(x)).toBe(x);
    }
    // .on() that throws: the worker is returned, nothing is counted.
    const throwingOn = {
      on() {
        throw new Error('on');
      },
    };
    expect(agent.bullmq(throwingOn)).toBe(throwingOn);
    // An event that carries no job (a stalled job BullMQ removed) or a job whose getters throw.
    const handlers: Record<string, ((...a: unknown[]) => void)[]> = {};
    const worker = {
      name: `w-${randomUUID()}`,
      on(ev: string, fn: (...a: unknown[]) => void) {
        (handlers[ev] ??= []).push(fn);
        return this;
      },
    };
    expect(agent.bullmq(worker, { queue: hostile as never })).toBe(worker);
    expect(() => handlers.failed!.forEach((f) => f(undefined, new Error('stalled')))).not.toThrow();
    expect(() => handlers.completed!.forEach((f) => f(hostile, 1))).not.toThrow();
    expect(() => handlers.completed!.forEach((f) => f({ name: 'ok', queueName: worker.name, processedOn: 10, finishedOn: 15, timestamp: 4 }, 1))).not.toThrow();
    expect(counters(worker.name, 'ok')).toMatchObject({ completed: 1, runTimeUs: 5000, waitTimeMs: 6, waited: 1 });
    // A second bullmq() on the same worker does not count twice.
    agent.bullmq(worker);
    expect(handlers.completed!.length).toBe(1);
  });

  it('a frozen channel is left untouched and keeps working', () => {
    const calls: string[] = [];
    const ch = Object.freeze({
      consume(q: string) {
        calls.push(`consume ${q}`);
        return 'tag';
      },
      ack() {
        calls.push('ack');
      },
    });
    expect(agent.amqplib(ch)).toBe(ch);
    expect(ch.consume('q')).toBe('tag');
    ch.ack();
    expect(calls).toEqual(['consume q', 'ack']);
  });

  it('a channel whose ack throws (closed) throws the same error to the host and counts nothing', () => {
    const q = `closed-${randomUUID()}`;
    let deliver: (m: unknown) => unknown = () => undefined;
    const closed = new Error('Channel closed');
    const ch = {
      consume(_q: string, cb: (m: unknown) => unknown) {
        deliver = cb;
      },
      ack() {
        throw closed;
      },
    };
    agent.amqplib(ch);
    ch.consume(q, () => undefined);
    const msg = { fields: { deliveryTag: 1 }, properties: { type: 't' } };
    deliver(msg);
    expect(() => ch.ack()).toThrow(closed);
    expect(() => (ch.ack as (m: unknown) => void)(msg)).toThrow(closed);
    expect(counters(q, 't')).toMatchObject({ completed: 0, failed: 0 });
  });
});

describe('no handle of the integrations keeps a process alive', () => {
  it('a process that attaches every integration and starts the agent exits by itself', () => {
    const script = `
      const { EventEmitter } = require('node:events');
      const hw = require(${JSON.stringify(path.join(ROOT, 'agent/dist/index.js'))});
      hw.start({ service: 'jobs-exit', collector: '127.0.0.1:1', intervalMs: 200, logLevel: 'silent' });
      const w = hw.bullmq(new EventEmitter(), { queue: { name: 'q', getWaitingCount: () => new Promise(() => {}) } });
      w.emit('completed', { name: 'a', queueName: 'q', processedOn: 1, finishedOn: 2, timestamp: 0 });
      const ch = hw.amqplib(Object.assign(new EventEmitter(), { consume(q, cb) { cb({ fields: { deliveryTag: 1 }, properties: {} }); }, ack() {} }));
      ch.consume('q', (m) => ch.ack(m));
      hw.trackJobs('q', 'b', async () => 1)().then(() => {
        process.stdout.write(JSON.stringify(hw.jobStats()));
        setTimeout(() => {}, 500); // past a tick, so a depth read is in flight
      });
    `;
    const r = spawnSync(process.execPath, ['-e', script], { timeout: 60_000, encoding: 'utf8' });
    expect(r.error, r.stderr).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    const stats = JSON.parse(r.stdout) as { types: Counters[] };
    expect(stats.types.map((t) => [t.queue, t.name, t.completed])).toEqual([
      ['q', 'a', 1],
      ['q', '', 1],
      ['q', 'b', 1],
    ]);
  });
});

describe.skipIf(!redisUp)(`BullMQ (real Redis)${redisUp ? '' : ' (skipped: Redis does not answer on 127.0.0.1:6379)'}`, () => {
  const prefix = `hwjobs-${process.pid}-${Date.now().toString(36)}`;
  const connection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };
  let bull: typeof import('bullmq');
  const closers: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    bull = await import('bullmq');
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  });

  it('counts completed and failed jobs per job name, with run and wait times, and reads the queue depth', async () => {
    const name = `jobs-${randomUUID()}`;
    const queue = new bull.Queue(name, { connection, prefix });
    closers.push(() => queue.close(), () => queue.obliterate({ force: true }));
    // Twelve jobs waiting before any worker runs: the depth reader sees them.
    await queue.addBulk(
      Array.from({ length: 12 }, (_, i) => ({ name: i % 3 === 0 ? 'thumbnail' : 'send-email', data: { i }, opts: { removeOnComplete: true, removeOnFail: true } })),
    );
    agent.bullmq({ name, on: () => undefined }, { queue }); // a stand-in worker: only the depth reader matters here
    registry.refreshQueueDepths();
    await until('the depth read', () => (agent.jobStats()?.queues ?? []).some((d) => d.queue === name && d.waiting === 12));

    const worker = agent.bullmq(
      new bull.Worker(
        name,
        async (job) => {
          await new Promise((r) => setTimeout(r, 2));
          if (job.name === 'thumbnail' && job.data.i % 2 === 0) throw new Error('corrupt image');
          return job.data.i;
        },
        { connection, prefix, concurrency: 4 },
      ),
    );
    closers.push(() => worker.close());
    await until('12 jobs', () => {
      const a = counters(name, 'send-email');
      const b = counters(name, 'thumbnail');
      return (a?.completed ?? 0) + (b?.completed ?? 0) + (b?.failed ?? 0) === 12;
    });
    // i = 0, 3, 6, 9 are thumbnails; 0 and 6 fail.
    expect(counters(name, 'send-email')).toMatchObject({ completed: 8, failed: 0, waited: 8 });
    expect(counters(name, 'thumbnail')).toMatchObject({ completed: 2, failed: 2 });
    const email = counters(name, 'send-email')!;
    expect(email.runTimeUs).toBeGreaterThanOrEqual(8 * 1000); // BullMQ's timestamps are whole ms: >= 2 ms a job, give or take 1
    expect(email.waitTimeMs).toBeGreaterThanOrEqual(0);
  });
});

describe.skipIf(!rabbitUp)(`amqplib (real RabbitMQ)${rabbitUp ? '' : ' (skipped: RabbitMQ does not answer on 127.0.0.1:5672)'}`, () => {
  let amqp: typeof import('amqplib');
  let conn: import('amqplib').ChannelModel;
  beforeAll(async () => {
    amqp = await import('amqplib');
    conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
  });
  afterAll(async () => {
    await conn?.close().catch(() => {});
  });

  it('counts acked deliveries as completed and nacked or rejected ones as failed, allUpTo included', async () => {
    const ch = agent.amqplib(await conn.createChannel());
    const q = `hwjobs-${randomUUID()}`;
    await ch.assertQueue(q, { autoDelete: true });
    const got: import('amqplib').ConsumeMessage[] = [];
    await ch.consume(q, (msg) => {
      if (msg) got.push(msg);
    });
    const types = ['render', 'render', 'index', 'render', 'index', 'render', 'other'];
    for (const type of types) ch.sendToQueue(q, Buffer.from('x'), { type });
    ch.sendToQueue(q, Buffer.from('untyped'));
    await until('8 deliveries', () => got.length === 8);
    ch.ack(got[0]!); // render: completed
    ch.nack(got[1]!, false, false); // render: failed
    ch.reject(got[2]!, false); // index: failed
    ch.ack(got[4]!, true); // allUpTo: 3 (render) and 4 (index) completed
    ch.nackAll(false); // 5 (render), 6 (other), 7 (untyped) failed
    await ch.close();
    expect(counters(q, 'render')).toMatchObject({ completed: 2, failed: 2 });
    expect(counters(q, 'index')).toMatchObject({ completed: 1, failed: 1 });
    expect(counters(q, 'other')).toMatchObject({ completed: 0, failed: 1 });
    expect(counters(q, '')).toMatchObject({ completed: 0, failed: 1 });
  });

  it('with noAck, a delivery finishes when its handler settles; the name option names the type', async () => {
    const ch = agent.amqplib(await conn.createChannel(), { name: (m) => JSON.parse(m.content.toString()).kind });
    const q = `hwjobs-${randomUUID()}`;
    await ch.assertQueue(q, { autoDelete: true });
    let n = 0;
    await ch.consume(
      q,
      async (msg) => {
        n++;
        await new Promise((r) => setTimeout(r, 1));
        if (msg && JSON.parse(msg.content.toString()).fail) throw new Error('handler failed');
      },
      { noAck: true },
    );
    const onUnhandled = (): void => {};
    process.on('unhandledRejection', onUnhandled); // the host's own rejected handler, as amqplib leaves it
    try {
      for (let i = 0; i < 6; i++) ch.sendToQueue(q, Buffer.from(JSON.stringify({ kind: i % 2 ? 'odd' : 'even', fail: i === 5 })));
      await until('6 settled', () => (counters(q, 'odd')?.completed ?? 0) + (counters(q, 'odd')?.failed ?? 0) + (counters(q, 'even')?.completed ?? 0) === 6);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(n).toBe(6);
    expect(counters(q, 'even')).toMatchObject({ completed: 3, failed: 0 });
    expect(counters(q, 'odd')).toMatchObject({ completed: 2, failed: 1 });
    await ch.close();
  });
});
