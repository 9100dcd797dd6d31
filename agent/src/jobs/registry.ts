/**
 * Job counters per job type (queue + name), kept by the queue integrations
 * (integrations.ts) and read by the agent into every profile
 * (IngestRequest.jobs), at the moment it reads the process memory, so the
 * collector can relate the heap's growth to the jobs finished between two
 * profiles.
 *
 * Cheap by construction: a finished job is a Map lookup (two, for a type
 * named per job) and a few additions; no allocation for a known type, no
 * GC, no stack capture, no timer. The counters exist before and without a
 * running agent (an integration may be attached before `start()`), and live
 * under a Symbol.for key on globalThis so that two copies of the package in
 * one isolate count into one registry.
 *
 * Bounded: at most `maxTypes` distinct types (the agent's maxJobTypes,
 * default 100); a job of a type past the cap is counted in `droppedJobs`
 * only. Queue depth readers: at most `maxTypes` queues, one read in flight
 * per queue.
 */
import { DEFAULT_MAX_JOB_TYPES } from '../config';
import { createLogger, type Logger } from '../logger';

/** The counters of one job type; every field cumulative. */
export interface JobTypeStats {
  readonly queue: string;
  readonly name: string;
  completed: number;
  failed: number;
  /**
   * Summed processing time of the `timed` jobs among them, microseconds
   * (fractional until sent). Where the integration reads a clock itself,
   * one job in RUN_TIME_SAMPLE is timed; a profile scales the sum to every
   * finished job.
   */
  runUs: number;
  timed: number;
  /** Jobs started, for choosing which to time. */
  started: number;
  /** Summed queue wait of the jobs that had a known enqueue time, ms, and how many those were. */
  waitMs: number;
  waited: number;
}

interface DepthReader {
  read: () => unknown;
  waiting: number;
  readAtMs: number;
  /** When the read in flight started; 0 when none is. */
  inFlightSinceMs: number;
}

export interface JobRegistry {
  /** Layout version of this object, shared by every copy of the package in the isolate. */
  readonly v: 1;
  readonly byQueue: Map<string, Map<string, JobTypeStats>>;
  /** Every type, in the order first seen (what a profile carries). */
  readonly list: JobTypeStats[];
  maxTypes: number;
  droppedJobs: number;
  readonly depths: Map<string, DepthReader>;
  /** Objects an integration is attached to, so a second call does not count twice. */
  readonly attached: WeakSet<object>;
}

/** Longest queue or job name kept; a longer one is cut (the collector refuses names over 256 characters). */
export const MAX_JOB_NAME_LENGTH = 128;
/**
 * One job in this many is timed where the integration reads the clock
 * itself (trackJobs, amqplib): performance.now() costs about 400
 * instructions a call, two a job, more than the rest of the counting
 * (bench/job-integrations.mjs). BullMQ's jobs carry their timestamps.
 */
export const RUN_TIME_SAMPLE = 8;
/** A depth read still unanswered after this long no longer blocks the next one. */
const DEPTH_READ_STALE_MS = 60_000;

const REGISTRY_KEY = Symbol.for('heapwatch.jobs');

let cached: JobRegistry | undefined;

/** The isolate's registry, created on first use. */
export function jobRegistry(): JobRegistry {
  if (cached) return cached;
  const g = globalThis as unknown as Record<symbol, JobRegistry | undefined>;
  let r = g[REGISTRY_KEY];
  if (!r || r.v !== 1) {
    r = { v: 1, byQueue: new Map(), list: [], maxTypes: DEFAULT_MAX_JOB_TYPES, droppedJobs: 0, depths: new Map(), attached: new WeakSet() };
    Object.defineProperty(g, REGISTRY_KEY, { value: r, enumerable: false, configurable: true, writable: true });
  }
  cached = r;
  return r;
}

let log: Logger | undefined;
/** The integrations' logger: HEAPWATCH_LOG_LEVEL, warn by default (the agent's own may not be running). */
export function jobsLog(): Logger {
  if (!log) {
    const raw = process.env.HEAPWATCH_LOG_LEVEL;
    log = createLogger(raw === 'silent' || raw === 'error' || raw === 'warn' || raw === 'info' || raw === 'debug' ? raw : 'warn');
  }
  return log;
}

/** A name as the contract takes it: a string, no control characters, at most MAX_JOB_NAME_LENGTH. */
export function cleanName(x: unknown): string {
  let s: string;
  try {
    s = typeof x === 'string' ? x : x === undefined || x === null ? '' : String(x);
  } catch {
    s = '';
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(s)) s = s.replace(/[\u0000-\u001f]/g, '?');
  return s.length > MAX_JOB_NAME_LENGTH ? s.slice(0, MAX_JOB_NAME_LENGTH) : s;
}

/**
 * The counters of (queue, name), created if the cap allows; undefined past
 * the cap. `queue` and `name` should be strings; anything else is made one.
 */
export function jobType(queue: unknown, name: unknown): JobTypeStats | undefined {
  const r = jobRegistry();
  const q = typeof queue === 'string' ? queue : cleanName(queue);
  const n = typeof name === 'string' ? name : cleanName(name);
  let names = r.byQueue.get(q);
  const found = names?.get(n);
  if (found) return found;
  if (r.list.length >= r.maxTypes) return undefined;
  if (!names) r.byQueue.set(q, (names = new Map()));
  const t: JobTypeStats = { queue: cleanName(q), name: cleanName(n), completed: 0, failed: 0, runUs: 0, timed: 0, started: 0, waitMs: 0, waited: 0 };
  names.set(n, t);
  r.list.push(t);
  return t;
}

/**
 * Where a job of type `t` starting now should be timed: the clock reading
 * (performance.now(), ms) for one job in RUN_TIME_SAMPLE, else -1.
 */
export function startClock(t: JobTypeStats | undefined): number {
  if (!t || t.started++ % RUN_TIME_SAMPLE !== 0) return -1;
  return performance.now();
}

/**
 * One finished job. `t` undefined (the type was past the cap) counts a
 * dropped job. `runUs` and `waitMs` are skipped when not finite or negative
 * (not timed, a clock step, a job without timestamps).
 */
export function recordJob(t: JobTypeStats | undefined, ok: boolean, runUs: number, waitMs: number): void {
  if (!t) {
    jobRegistry().droppedJobs++;
    return;
  }
  if (ok) t.completed++;
  else t.failed++;
  if (runUs >= 0 && runUs < Infinity) {
    t.runUs += runUs;
    t.timed++;
  }
  if (waitMs >= 0 && waitMs < Infinity) {
    t.waitMs += waitMs;
    t.waited++;
  }
}

/** Registers a reader of a queue's waiting jobs (at most one per queue, at most maxTypes queues). */
export function registerDepthReader(queue: string, read: () => unknown): boolean {
  const r = jobRegistry();
  if (r.depths.has(queue)) return true;
  if (r.depths.size >= r.maxTypes) return false;
  r.depths.set(queue, { read, waiting: -1, readAtMs: 0, inFlightSinceMs: 0 });
  return true;
}

/**
 * Starts a read of every registered queue depth that has none in flight;
 * the results land in the counters of a later profile. Never throws, never
 * waits, holds no timer.
 */
export function refreshQueueDepths(nowMs = Date.now()): void {
  for (const d of jobRegistry().depths.values()) {
    if (d.inFlightSinceMs > 0 && nowMs - d.inFlightSinceMs < DEPTH_READ_STALE_MS) continue;
    const started = nowMs;
    d.inFlightSinceMs = started;
    const done = (): void => {
      if (d.inFlightSinceMs === started) d.inFlightSinceMs = 0;
    };
    try {
      Promise.resolve(d.read()).then(
        (n) => {
          if (typeof n === 'number' && Number.isFinite(n) && n >= 0) {
            d.waiting = Math.round(n);
            d.readAtMs = Date.now();
          }
          done();
        },
        (e: unknown) => {
          jobsLog().debug(`queue depth read failed: ${String(e)}`);
          done();
        },
      );
    } catch (e) {
      jobsLog().debug(`queue depth read failed: ${String(e)}`);
      done();
    }
  }
}

/** What a profile carries (IngestRequest.jobs), or undefined when no integration has counted anything. */
export interface JobCountersMessage {
  types: { queue: string; name: string; completed: number; failed: number; runTimeUs: number; waitTimeMs: number; waited: number }[];
  droppedJobs: number;
  queues: { queue: string; waiting: number; readAtMs: number }[];
}

export function jobCounters(): JobCountersMessage | undefined {
  const r = cached ?? (globalThis as unknown as Record<symbol, JobRegistry | undefined>)[REGISTRY_KEY];
  if (!r || r.v !== 1 || (r.list.length === 0 && r.droppedJobs === 0)) return undefined;
  const queues: JobCountersMessage['queues'] = [];
  for (const [queue, d] of r.depths) if (d.waiting >= 0) queues.push({ queue: cleanName(queue), waiting: d.waiting, readAtMs: d.readAtMs });
  return {
    types: r.list.map((t) => ({
      queue: t.queue,
      name: t.name,
      completed: t.completed,
      failed: t.failed,
      // The timed jobs' mean, for every finished job.
      runTimeUs: t.timed > 0 ? Math.round((t.runUs * (t.completed + t.failed)) / t.timed) : 0,
      waitTimeMs: Math.round(t.waitMs),
      waited: t.waited,
    })),
    droppedJobs: r.droppedJobs,
    queues,
  };
}
