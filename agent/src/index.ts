/**
 * @heapwatch/agent: continuous heap profiling for long-running Node.js
 * workers. One agent per isolate, however the package is loaded (require,
 * import, --require, --import, or two copies on disk): the runtime lives
 * under a Symbol.for key on globalThis. Every public call is guarded: it
 * logs and returns, it never throws into the host.
 */
import { Agent } from './agent';
import type { Counters } from './sender';
import { resolveConfig, type AgentOptions } from './config';
import { createLogger, type Logger } from './logger';

export type { AgentOptions } from './config';
export type { LogLevel } from './logger';
export type { Counters as AgentStats } from './sender';
export { AGENT_VERSION } from './version';
export { amqplib, bullmq, trackJobs, type AmqplibOptions, type BullmqOptions } from './jobs/integrations';
import { jobCounters, type JobCountersMessage } from './jobs/registry';
export type { JobCountersMessage as JobCounters } from './jobs/registry';

const SINGLETON_KEY = Symbol.for('heapwatch.agent');
const DEFAULT_FLUSH_TIMEOUT_MS = 5_000;
const TROUBLESHOOT = 'see @heapwatch/agent README, "Configuration"';

interface Runtime {
  agent: Agent | undefined;
  /** The one stop in progress, so start() after stop() waits for the sampler to be released. */
  stopping: Promise<void> | undefined;
  /** Which copy of the package created this runtime (for diagnostics). */
  loadedFrom: string;
}

function runtime(): Runtime {
  const g = globalThis as unknown as Record<symbol, Runtime | undefined>;
  let r = g[SINGLETON_KEY];
  if (!r) {
    r = { agent: undefined, stopping: undefined, loadedFrom: __filename };
    Object.defineProperty(g, SINGLETON_KEY, { value: r, enumerable: false, configurable: true, writable: false });
  }
  return r;
}

let fallbackLogger: Logger | undefined;
function earlyLogger(): Logger {
  const raw = process.env.HEAPWATCH_LOG_LEVEL;
  const level = raw === 'silent' || raw === 'error' || raw === 'warn' || raw === 'info' || raw === 'debug' ? raw : 'warn';
  fallbackLogger ??= createLogger(level);
  fallbackLogger.level = level;
  return fallbackLogger;
}

/**
 * Starts the agent in this isolate. Returns true if it is running (a second
 * call while running is a no-op that returns true), false if it could not
 * start (bad options, sampler unavailable); the reason is logged.
 */
export function start(options?: AgentOptions): boolean {
  try {
    const rt = runtime();
    if (rt.agent) {
      // One agent per isolate: a second start() (e.g. --require plus an explicit call) keeps the first one's config.
      if (options !== undefined) createLogger(rt.agent.config.logLevel).debug('start() called while running; options ignored');
      return true;
    }
    const resolved = resolveConfig(options ?? {}, process.env);
    const logLevel = resolved.ok ? resolved.config.logLevel : earlyLogger().level;
    const log = createLogger(logLevel);
    for (const w of resolved.warnings) log.warn(w);
    if (!resolved.ok) {
      log.error(`not started: ${resolved.errors.join('; ')} (${TROUBLESHOOT})`);
      return false;
    }
    const agent = new Agent(resolved.config, log);
    agent.start();
    rt.agent = agent;
    return true;
  } catch (e) {
    earlyLogger().error(`not started: ${e instanceof Error ? e.message : String(e)} (${TROUBLESHOOT})`);
    return false;
  }
}

/**
 * Takes one last profile, sends what is queued within `timeoutMs`
 * (default: the stopTimeoutMs option, 5 s), then closes the connection and
 * stops the sampler. Always resolves.
 */
export function stop(timeoutMs?: number): Promise<void> {
  try {
    const rt = runtime();
    const agent = rt.agent;
    if (!agent) return rt.stopping ?? Promise.resolve();
    rt.agent = undefined;
    const ms = validTimeout(timeoutMs) ?? agent.config.stopTimeoutMs;
    const p = agent
      .stop(ms)
      .catch((e: unknown) => earlyLogger().debug(`stop: ${String(e)}`))
      .finally(() => {
        if (rt.stopping === p) rt.stopping = undefined;
      });
    rt.stopping = p;
    return p;
  } catch (e) {
    earlyLogger().debug(`stop: ${String(e)}`);
    return Promise.resolve();
  }
}

/** Takes a profile now and tries to send the queue; resolves when done or after `timeoutMs` (default 5 s). Always resolves. */
export function flush(timeoutMs?: number): Promise<void> {
  try {
    const agent = runtime().agent;
    if (!agent) return Promise.resolve();
    return agent
      .flush(validTimeout(timeoutMs) ?? DEFAULT_FLUSH_TIMEOUT_MS)
      .catch((e: unknown) => earlyLogger().debug(`flush: ${String(e)}`));
  } catch (e) {
    earlyLogger().debug(`flush: ${String(e)}`);
    return Promise.resolve();
  }
}

/** Cumulative counters of the running agent, or undefined when it is not running. */
export function stats(): Counters | undefined {
  try {
    return runtime().agent?.counters();
  } catch {
    return undefined;
  }
}

/**
 * The job counters the queue integrations keep (cumulative, per job type),
 * as the next profile carries them; undefined while none has counted a job.
 * Counted whether or not the agent runs.
 */
export function jobStats(): JobCountersMessage | undefined {
  try {
    return jobCounters();
  } catch {
    return undefined;
  }
}

/** Whether an agent is running in this isolate. */
export function isRunning(): boolean {
  try {
    return runtime().agent !== undefined;
  } catch {
    return false;
  }
}

function validTimeout(ms: number | undefined): number | undefined {
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}
