/**
 * Queue integrations: one line next to the queue code a worker already has,
 * counting finished jobs per job type into the registry (registry.ts) that
 * every profile reads. docs/integrations.md#queue-workers.
 *
 *   trackJobs('email', 'send', handler)   any `(job) => result | Promise` (or `(job, done)`) handler
 *   bullmq(worker, { queue? })            a BullMQ Worker: its 'completed' and 'failed' events
 *   amqplib(channel, { name? })           an amqplib channel: consume(), then ack/nack/reject
 *
 * Each returns what it was given (the wrapped handler for trackJobs), so it
 * can wrap the expression that creates the worker. None throws into the
 * host: an object that is not what it should be is logged and returned
 * untouched, a failure while counting is swallowed, and the host's own
 * results and errors pass through unchanged. None holds a timer or a handle:
 * nothing here keeps the process alive.
 *
 * What is not done, and why: V8's sampling heap profiler keeps no context
 * per sample (@datadog/pprof's heap label callback gets only the stack
 * node), so the job type cannot label the heap samples taken while a job
 * runs; an AsyncLocalStorage would carry the type to nowhere the sampler
 * reads. The collector relates memory to job types from the counters alone
 * (collector/src/leaks/jobs.ts).
 */
import { cleanName, jobRegistry, jobsLog, jobType, recordJob, registerDepthReader, startClock, type JobTypeStats } from './registry';

/* eslint-disable @typescript-eslint/no-explicit-any */
type AnyFunction = (...args: any[]) => any;

/** Most amqplib deliveries awaiting ack/nack per channel; past it a delivery is not counted by type (droppedJobs). */
export const MAX_PENDING_DELIVERIES = 65_536;

function warn(msg: string): void {
  try {
    jobsLog().warn(msg);
  } catch {
    // logging must not throw either
  }
}

/** Counts one finished job, never throwing; `t0`: startClock()'s reading, -1 when the job was not timed. */
function finish(t: JobTypeStats | undefined, ok: boolean, t0: number): void {
  try {
    recordJob(t, ok, t0 >= 0 ? (performance.now() - t0) * 1000 : NaN, NaN);
  } catch {
    // counting must never reach the host
  }
}

/**
 * Calls `fn` with `args` and counts its outcome: a returned promise (any
 * thenable) when it settles, a thrown error at once, anything else as
 * completed. Returns exactly what the host would have got: the value, the
 * same error, or a promise that settles as the original does.
 */
function callCounted(fn: AnyFunction, self: unknown, args: ArrayLike<unknown>, t: JobTypeStats | undefined, t0: number): unknown {
  let r: any;
  try {
    r = fn.apply(self, args as unknown[]);
  } catch (e) {
    finish(t, false, t0);
    throw e;
  }
  if (r !== null && (typeof r === 'object' || typeof r === 'function')) {
    let then: unknown;
    try {
      then = r.then;
    } catch {
      then = undefined;
    }
    if (typeof then === 'function') {
      try {
        return then.call(
          r,
          (v: unknown) => {
            finish(t, true, t0);
            return v;
          },
          (e: unknown) => {
            finish(t, false, t0);
            throw e;
          },
        );
      } catch {
        return r; // a thenable whose then() throws: the host gets it as it was
      }
    }
  }
  finish(t, true, t0);
  return r;
}

/** Keeps `length` (frameworks read a handler's arity: Bee-Queue's `(job, done)`) and `name`. */
function likeOriginal<F extends AnyFunction>(wrapper: AnyFunction, original: F): F {
  try {
    Object.defineProperty(wrapper, 'length', { value: original.length, configurable: true });
    Object.defineProperty(wrapper, 'name', { value: original.name, configurable: true });
  } catch {
    // cosmetic
  }
  return wrapper as F;
}

/**
 * Wraps a job handler: each call is one job of type (queue, name), counted
 * completed when it returns or its promise resolves, failed when it throws
 * or rejects. `name` may be a function of the handler's arguments (one
 * handler serving several job types). A handler declared with two or more
 * parameters whose last argument is a function is taken as callback style
 * (`(job, done)`): the job finishes when `done` is called, failed when with
 * an error.
 */
export function trackJobs<F extends AnyFunction>(queue: string, name: string | ((...args: Parameters<F>) => unknown), handler: F): F {
  try {
    if (typeof handler !== 'function') {
      warn(`trackJobs(${JSON.stringify(String(queue))}): the handler is not a function; returned as given, not counted`);
      return handler;
    }
    const queueName = cleanName(queue);
    const fixedName = typeof name === 'function' ? undefined : cleanName(name);
    let fixed: JobTypeStats | undefined;
    const typeOf = (self: unknown, args: ArrayLike<unknown>): JobTypeStats | undefined => {
      if (fixedName !== undefined) return (fixed ??= jobType(queueName, fixedName));
      let n: unknown = '';
      try {
        n = (name as AnyFunction).apply(self, args as unknown[]);
      } catch {
        n = '';
      }
      return jobType(queueName, n);
    };
    const callbackStyle = handler.length >= 2;
    const tracked = function (this: unknown): unknown {
      let t: JobTypeStats | undefined;
      let t0 = -1;
      let counted = true;
      try {
        t = typeOf(this, arguments);
        t0 = startClock(t);
      } catch {
        counted = false;
      }
      const last = arguments.length - 1;
      if (callbackStyle && last >= 1 && typeof arguments[last] === 'function') {
        const args = Array.prototype.slice.call(arguments) as unknown[];
        const done = args[last] as AnyFunction;
        let settled = !counted;
        args[last] = function (this: unknown, ...cbArgs: unknown[]): unknown {
          if (!settled) {
            settled = true;
            finish(t, cbArgs[0] === undefined || cbArgs[0] === null, t0);
          }
          return done.apply(this, cbArgs);
        };
        try {
          return handler.apply(this, args);
        } catch (e) {
          if (!settled) {
            settled = true;
            finish(t, false, t0);
          }
          throw e;
        }
      }
      if (!counted) return handler.apply(this, arguments as unknown as unknown[]);
      return callCounted(handler, this, arguments, t, t0);
    };
    return likeOriginal(tracked, handler);
  } catch (e) {
    warn(`trackJobs: not counting (${String(e)})`);
    return handler;
  }
}

/** What bullmq() reads of a BullMQ Job: the fields every BullMQ version since 1.x has. */
interface JobLike {
  name?: unknown;
  queueName?: unknown;
  timestamp?: unknown;
  processedOn?: unknown;
  finishedOn?: unknown;
  delay?: unknown;
}

export interface BullmqOptions {
  /** The job's type name; default `job.name`. */
  name?: (job: any) => unknown;
  /**
   * A BullMQ `Queue` of the worker's queue: its waiting jobs (waiting and
   * prioritized, one Redis call) are read once per profile interval and sent
   * beside the counters. Without it, no depth is read.
   */
  queue?: { getJobCountByTypes?: (...types: string[]) => unknown; getWaitingCount?: () => unknown; name?: unknown };
}

/**
 * Counts a BullMQ Worker's finished jobs from its own events: 'completed'
 * (completed) and 'failed' (each failed attempt), per (queue, job name).
 * Processing time is the job's finishedOn - processedOn and queue wait its
 * processedOn - timestamp - delay: fields BullMQ sets anyway, so no clock is
 * read per job. A failed stalled job that BullMQ reports without its job
 * object is not counted. Returns the worker.
 */
export function bullmq<W>(worker: W, opts: BullmqOptions = {}): W {
  try {
    const w = worker as unknown as { on?: unknown; name?: unknown };
    if (w === null || typeof w !== 'object' || typeof w.on !== 'function') {
      warn('bullmq(worker): expected a BullMQ Worker (an object with .on()); not counting');
      return worker;
    }
    const r = jobRegistry();
    if (r.attached.has(w)) return worker;
    const fallbackQueue = cleanName(w.name);
    const nameOf = typeof opts?.name === 'function' ? opts.name : undefined;
    const onFinished =
      (ok: boolean) =>
      (job: JobLike | undefined): void => {
        try {
          if (job === null || typeof job !== 'object') return;
          const queue = typeof job.queueName === 'string' ? job.queueName : fallbackQueue;
          let n: unknown = job.name;
          if (nameOf) {
            try {
              n = nameOf(job);
            } catch {
              n = '';
            }
          }
          const p = job.processedOn;
          const f = job.finishedOn;
          const ts = job.timestamp;
          const runUs = typeof p === 'number' && typeof f === 'number' ? (f - p) * 1000 : NaN;
          const waitMs = typeof p === 'number' && typeof ts === 'number' ? p - ts - (typeof job.delay === 'number' ? job.delay : 0) : NaN;
          recordJob(jobType(queue, n), ok, runUs, waitMs);
        } catch {
          // counting must never reach the host's event handlers
        }
      };
    (w.on as AnyFunction).call(w, 'completed', onFinished(true));
    (w.on as AnyFunction).call(w, 'failed', onFinished(false));
    r.attached.add(w);
    try {
      watchDepth(opts?.queue, fallbackQueue);
    } catch (e) {
      warn(`bullmq(worker, { queue }): no depth is read (${String(e)})`);
    }
    return worker;
  } catch (e) {
    warn(`bullmq(worker): not counting (${String(e)})`);
    return worker;
  }
}

/** Registers a reader of a BullMQ Queue's ready jobs: waiting and prioritized, one Redis call. */
function watchDepth(q: BullmqOptions['queue'], fallbackQueue: string): void {
  if (!q || typeof q !== 'object') return;
  const byTypes = q.getJobCountByTypes;
  const waiting = q.getWaitingCount;
  const read =
    typeof byTypes === 'function' ? () => byTypes.call(q, 'waiting', 'prioritized') : typeof waiting === 'function' ? () => waiting.call(q) : undefined;
  if (!read) warn('bullmq(worker, { queue }): the queue has no getJobCountByTypes() or getWaitingCount(); no depth is read');
  else if (!registerDepthReader(cleanName(typeof q.name === 'string' ? q.name : fallbackQueue), read)) warn('bullmq: too many queues with a depth reader; this one is not read');
}

/** What amqplib() reads of a delivered message. */
interface MessageLike {
  fields?: { deliveryTag?: unknown };
  properties?: { type?: unknown };
}

export interface AmqplibOptions {
  /** The job's type name; default the message's `properties.type` (AMQP's message type), else ''. */
  name?: (msg: any) => unknown;
}

/**
 * Counts an amqplib channel's finished messages per (queue, message type):
 * consumers registered through this channel's consume() after this call are
 * followed; a delivery finishes when the channel acks it (completed) or
 * nacks or rejects it (failed), `allUpTo` and ackAll/nackAll included. With
 * `noAck: true` a delivery finishes when the consumer callback returns or
 * its promise settles. Deliveries awaiting their ack are remembered per
 * channel (MAX_PENDING_DELIVERIES at most, forgotten when the channel
 * closes). Returns the channel.
 */
export function amqplib<C>(channel: C, opts: AmqplibOptions = {}): C {
  try {
    const ch = channel as unknown as Record<string, unknown>;
    if (ch === null || typeof ch !== 'object' || typeof ch.consume !== 'function') {
      warn('amqplib(channel): expected an amqplib Channel (an object with .consume()); not counting');
      return channel;
    }
    const r = jobRegistry();
    if (r.attached.has(ch)) return channel;
    const nameOf = typeof opts?.name === 'function' ? opts.name : (msg: MessageLike) => msg.properties?.type;
    // Deliveries awaiting their ack: type by tag; the clock reading of the timed ones.
    const pending = new Map<number, JobTypeStats | undefined>();
    const clocks = new Map<number, number>();
    let lastTag = 0;

    const track = (msg: MessageLike, t: JobTypeStats | undefined, t0: number): void => {
      const tag = msg.fields?.deliveryTag;
      if (typeof tag !== 'number') return;
      // Tags restart on a reopened channel: what was pending will not be acked.
      if (tag <= lastTag) {
        pending.clear();
        clocks.clear();
      }
      lastTag = tag;
      if (pending.size >= MAX_PENDING_DELIVERIES) {
        recordJob(undefined, true, NaN, NaN);
        return;
      }
      pending.set(tag, t);
      if (t0 >= 0) clocks.set(tag, t0);
    };
    const done = (tag: number, t: JobTypeStats | undefined, ok: boolean): void => {
      pending.delete(tag);
      let t0 = -1;
      if (clocks.size > 0) {
        const c = clocks.get(tag);
        if (c !== undefined) {
          clocks.delete(tag);
          t0 = c;
        }
      }
      finish(t, ok, t0);
    };
    const settleUpTo = (tag: number, ok: boolean): void => {
      for (const [k, t] of pending) {
        if (k > tag) break;
        done(k, t, ok);
      }
    };
    const settle = (msg: unknown, allUpTo: unknown, ok: boolean): void => {
      try {
        const tag = (msg as MessageLike | null)?.fields?.deliveryTag;
        if (typeof tag !== 'number') return;
        if (allUpTo === true) return settleUpTo(tag, ok);
        if (!pending.has(tag)) return;
        done(tag, pending.get(tag), ok);
      } catch {
        // never into the host
      }
    };
    const settleAll = (ok: boolean): void => {
      try {
        settleUpTo(Infinity, ok);
      } catch {
        // never into the host
      }
    };

    const original = {
      consume: ch.consume as AnyFunction,
      ack: ch.ack as AnyFunction | undefined,
      nack: ch.nack as AnyFunction | undefined,
      reject: ch.reject as AnyFunction | undefined,
      ackAll: ch.ackAll as AnyFunction | undefined,
      nackAll: ch.nackAll as AnyFunction | undefined,
    };
    const patched: Record<string, AnyFunction> = {
      consume: function (this: unknown, queue: unknown, callback: unknown, options: unknown, ...rest: unknown[]): unknown {
        if (typeof callback !== 'function') return original.consume.call(this, queue, callback, options, ...rest);
        const noAck = options !== null && typeof options === 'object' && (options as { noAck?: unknown }).noAck === true;
        const queueName = cleanName(queue);
        const wrapped = function (this: unknown, msg: unknown): unknown {
          // null: the broker cancelled the consumer.
          if (msg === null || typeof msg !== 'object') return (callback as AnyFunction).apply(this, arguments as unknown as unknown[]);
          let t: JobTypeStats | undefined;
          let t0 = -1;
          let counted = true;
          try {
            let n: unknown;
            try {
              n = nameOf(msg);
            } catch {
              n = '';
            }
            t = jobType(queueName, n);
            t0 = startClock(t);
            if (!noAck) track(msg as MessageLike, t, t0);
          } catch {
            counted = false;
          }
          if (noAck && counted) return callCounted(callback as AnyFunction, this, arguments, t, t0);
          return (callback as AnyFunction).apply(this, arguments as unknown as unknown[]);
        };
        return original.consume.call(this, queue, wrapped, options, ...rest);
      },
    };
    // The original first: if it throws (a closed channel), nothing is counted.
    const settling = (fn: AnyFunction | undefined, ok: boolean, upTo: boolean): AnyFunction | undefined =>
      typeof fn === 'function'
        ? function (this: unknown, msg: unknown, allUpTo: unknown): unknown {
            const out = fn.apply(this, arguments as unknown as unknown[]);
            settle(msg, upTo && allUpTo, ok);
            return out;
          }
        : undefined;
    const settlingAll = (fn: AnyFunction | undefined, ok: boolean): AnyFunction | undefined =>
      typeof fn === 'function'
        ? function (this: unknown): unknown {
            const out = fn.apply(this, arguments as unknown as unknown[]);
            settleAll(ok);
            return out;
          }
        : undefined;
    const ack = settling(original.ack, true, true);
    const nack = settling(original.nack, false, true);
    const reject = settling(original.reject, false, false);
    const ackAll = settlingAll(original.ackAll, true);
    const nackAll = settlingAll(original.nackAll, false);
    if (ack) patched.ack = ack;
    if (nack) patched.nack = nack;
    if (reject) patched.reject = reject;
    if (ackAll) patched.ackAll = ackAll;
    if (nackAll) patched.nackAll = nackAll;
    const had = new Map<string, PropertyDescriptor | undefined>();
    try {
      for (const [k, fn] of Object.entries(patched)) {
        had.set(k, Object.getOwnPropertyDescriptor(ch, k));
        ch[k] = fn;
        if (ch[k] !== fn) throw new Error(`channel.${k} cannot be replaced`);
      }
    } catch (e) {
      // Half a patch would count deliveries that are never settled: put everything back.
      for (const [k, d] of had) {
        try {
          if (d) Object.defineProperty(ch, k, d);
          else delete ch[k];
        } catch {
          // leave it
        }
      }
      warn(`amqplib(channel): not counting (${String(e)})`);
      return channel;
    }
    r.attached.add(ch);
    if (typeof ch.on === 'function') {
      try {
        (ch.on as AnyFunction).call(ch, 'close', () => {
          pending.clear();
          clocks.clear();
        });
      } catch {
        // the map is still bounded
      }
    }
    return channel;
  } catch (e) {
    warn(`amqplib(channel): not counting (${String(e)})`);
    return channel;
  }
}
