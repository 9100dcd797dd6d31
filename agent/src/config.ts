import * as path from 'node:path';
import { parseCollectorAddress } from './collector-address';
import { LOG_LEVELS, type LogLevel } from './logger';
import { PRECISE_SETTINGS, type PreciseSetting } from './precise-mode';

/** Options accepted by `start()`. Every one can also come from the environment; see docs/configuration.md. */
export interface AgentOptions {
  /** Collector address, `host:port`, `[v6]:port` or `dns:///host:port`. */
  collector?: string;
  service?: string;
  labels?: Record<string, string>;
  /** Time between heap snapshots. */
  intervalMs?: number;
  /** Mean bytes between sampled allocations (V8 sampling heap profiler). */
  samplingIntervalBytes?: number;
  stackDepth?: number;
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  logLevel?: LogLevel;
  /** In precise mode, turn V8's inlining off so allocations are charged to the function that made them. */
  disableInlining?: boolean;
  /** `auto` (the collector turns precise mode on while it suspects a leak), `always` or `never`. */
  precise?: PreciseSetting;
  /** Longest precise period, however often the collector renews it. */
  preciseMaxMs?: number;
  /** Shortest, in profile intervals: the collector clearing its suspicion ends a period no sooner. */
  preciseMinProfiles?: number;
  /** No new precise period before this long after one ended at its bound (after one the collector ended: at most as long as it lasted). */
  preciseCooldownMs?: number;
  /** Deadline of each Ingest RPC. */
  timeoutMs?: number;
  /** How long `stop()` may spend sending the last profiles. */
  stopTimeoutMs?: number;
  maxQueueProfiles?: number;
  maxQueueBytes?: number;
  /** Use TLS (system roots) instead of plaintext. */
  tls?: boolean;
  /** Path of a PEM CA certificate the collector's certificate must chain to (a private CA); implies `tls`. */
  tlsCa?: string;
  /** In precise mode, share of wall time the agent may spend forcing major GCs before profiles; 0 turns that off. */
  gcAssistBudget?: number;
  /** Longest pause a forced major GC may cause (predicted from the heap size). */
  gcAssistMaxPauseMs?: number;
  /** Map frames of compiled code (TypeScript, bundles) to their original file and line through source maps. */
  sourceMaps?: boolean;
  /** Most distinct job types (queue + name) the queue integrations count; jobs of further types are counted as dropped. */
  maxJobTypes?: number;
  /** Holder captures (a heap snapshot the collector asks for) are skipped when V8's heap used is above this many MB; 0 turns them off. */
  holderMaxHeapMb?: number;
  /** No holder capture sooner than this after the last one. */
  holderCooldownMs?: number;
  /** Random source in [0,1) for backoff jitter; for testing. */
  random?: () => number;
}

export interface AgentConfig {
  collector: string;
  service: string;
  labels: Record<string, string>;
  intervalMs: number;
  samplingIntervalBytes: number;
  stackDepth: number;
  token: string | undefined;
  logLevel: LogLevel;
  disableInlining: boolean;
  precise: PreciseSetting;
  preciseMaxMs: number;
  preciseMinProfiles: number;
  preciseCooldownMs: number;
  timeoutMs: number;
  stopTimeoutMs: number;
  maxQueueProfiles: number;
  maxQueueBytes: number;
  tls: boolean;
  tlsCa: string | undefined;
  gcAssistBudget: number;
  gcAssistMaxPauseMs: number;
  sourceMaps: boolean;
  maxJobTypes: number;
  holderMaxHeapMb: number;
  holderCooldownMs: number;
  random: () => number;
}

export const DEFAULT_COLLECTOR = '127.0.0.1:7801';
export const DEFAULT_INTERVAL_MS = 60_000;
export const MIN_INTERVAL_MS = 200;
export const DEFAULT_SAMPLING_INTERVAL_BYTES = 512 * 1024;
export const DEFAULT_STACK_DEPTH = 64;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_QUEUE_PROFILES = 32;
export const DEFAULT_MAX_QUEUE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_LOG_LEVEL: LogLevel = 'warn';
export const DEFAULT_GC_ASSIST_BUDGET = 0.01;
export const MAX_GC_ASSIST_BUDGET = 0.2;
export const DEFAULT_GC_ASSIST_MAX_PAUSE_MS = 50;
export const DEFAULT_PRECISE_MAX_MS = 30 * 60_000;
export const DEFAULT_PRECISE_COOLDOWN_MS = 30 * 60_000;
/** The post-GC precise profiles the collector needs to confirm a leak: 12 for the rule, 3 consecutive verdicts, 1 for ingest. */
export const DEFAULT_PRECISE_MIN_PROFILES = 16;
export const DEFAULT_MAX_JOB_TYPES = 100;
/** Writing a heap snapshot costs the host ~10 s of CPU and ~1 GB of RSS per 100 MB of small-object heap (docs/detector.md#holders): bounded low by default. */
export const DEFAULT_HOLDER_MAX_HEAP_MB = 32;
export const DEFAULT_HOLDER_COOLDOWN_MS = 60 * 60_000;
/** The collector refuses a profile with more (its maxJobTypes limit). */
export const MAX_JOB_TYPES = 1000;

export type Env = Record<string, string | undefined>;

export type ConfigResult =
  | { ok: true; config: AgentConfig; warnings: string[] }
  | { ok: false; errors: string[]; warnings: string[] };

/** A value checker: returns the value or an error message. */
type Check<T> = (v: unknown) => { value: T } | { error: string };

const int = (min: number, max = Number.MAX_SAFE_INTEGER): Check<number> => (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
    ? { value: v }
    : { error: `must be an integer in [${min}, ${max}]` };

const fraction = (min: number, max: number): Check<number> => (v) =>
  typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max
    ? { value: v }
    : { error: `must be a number in [${min}, ${max}]` };

const nonEmpty: Check<string> = (v) =>
  typeof v === 'string' && v.trim() !== '' ? { value: v.trim() } : { error: 'must be a non-empty string' };

const bool: Check<boolean> = (v) => (typeof v === 'boolean' ? { value: v } : { error: 'must be a boolean' });

const collector: Check<string> = (v) => {
  if (typeof v !== 'string') return { error: 'must be a "host:port" string' };
  return parseCollectorAddress(v) ? { value: v.trim() } : { error: 'must be "host:port", "[v6]:port" or "dns:///host:port"' };
};

const logLevel: Check<LogLevel> = (v) =>
  typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v)
    ? { value: v as LogLevel }
    : { error: `must be one of ${LOG_LEVELS.join('|')}` };

const labels: Check<Record<string, string>> = (v) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { error: 'must be an object of strings' };
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (k === '' || typeof val !== 'string') return { error: 'must map non-empty keys to strings' };
    out[k] = val;
  }
  return { value: out };
};

const preciseSetting: Check<PreciseSetting> = (v) =>
  typeof v === 'string' && (PRECISE_SETTINGS as readonly string[]).includes(v)
    ? { value: v as PreciseSetting }
    : { error: `must be one of ${PRECISE_SETTINGS.join('|')}` };

const randomFn: Check<() => number> = (v) =>
  typeof v === 'function' ? { value: v as () => number } : { error: 'must be a function' };

// Env parsers turn text into the option's type (or undefined if unparseable);
// the same checker then validates both sources.
const envInt = (s: string): unknown => (/^\s*\d+\s*$/.test(s) ? Number(s) : s);
const envNumber = (s: string): unknown => (/^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(s) ? Number(s) : s);
const envBool = (s: string): unknown => {
  const t = s.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  return s;
};
const envLabels = (s: string): unknown => {
  const out: Record<string, string> = {};
  if (s.trim() === '') return out;
  for (const pair of s.split(',')) {
    const eq = pair.indexOf('=');
    const k = eq > 0 ? pair.slice(0, eq).trim() : '';
    if (k === '') return s; // invalid: the whole variable is ignored
    out[k] = pair.slice(eq + 1).trim();
  }
  return out;
};
const envString = (s: string): unknown => s;

interface Field<K extends keyof AgentConfig> {
  env?: string;
  check: Check<AgentConfig[K]>;
  parseEnv?: (s: string) => unknown;
}

const FIELDS: { [K in keyof AgentConfig]: Field<K> } = {
  collector: { env: 'HEAPWATCH_COLLECTOR', check: collector },
  service: { env: 'HEAPWATCH_SERVICE', check: nonEmpty },
  labels: { env: 'HEAPWATCH_LABELS', check: labels, parseEnv: envLabels },
  intervalMs: { env: 'HEAPWATCH_INTERVAL_MS', check: int(MIN_INTERVAL_MS), parseEnv: envInt },
  samplingIntervalBytes: { env: 'HEAPWATCH_SAMPLING_INTERVAL_BYTES', check: int(1, 2 ** 31 - 1), parseEnv: envInt },
  stackDepth: { env: 'HEAPWATCH_STACK_DEPTH', check: int(1, 1024), parseEnv: envInt },
  token: { env: 'HEAPWATCH_TOKEN', check: nonEmpty as Check<string | undefined> },
  logLevel: { env: 'HEAPWATCH_LOG_LEVEL', check: logLevel },
  disableInlining: { env: 'HEAPWATCH_DISABLE_INLINING', check: bool, parseEnv: envBool },
  precise: { env: 'HEAPWATCH_PRECISE', check: preciseSetting },
  preciseMaxMs: { env: 'HEAPWATCH_PRECISE_MAX_MS', check: int(1000), parseEnv: envInt },
  preciseMinProfiles: { env: 'HEAPWATCH_PRECISE_MIN_PROFILES', check: int(0, 1000), parseEnv: envInt },
  preciseCooldownMs: { env: 'HEAPWATCH_PRECISE_COOLDOWN_MS', check: int(0), parseEnv: envInt },
  timeoutMs: { env: 'HEAPWATCH_TIMEOUT_MS', check: int(1), parseEnv: envInt },
  stopTimeoutMs: { env: 'HEAPWATCH_STOP_TIMEOUT_MS', check: int(0), parseEnv: envInt },
  maxQueueProfiles: { env: 'HEAPWATCH_MAX_QUEUE_PROFILES', check: int(1), parseEnv: envInt },
  maxQueueBytes: { env: 'HEAPWATCH_MAX_QUEUE_BYTES', check: int(1), parseEnv: envInt },
  tls: { env: 'HEAPWATCH_TLS', check: bool, parseEnv: envBool },
  tlsCa: { env: 'HEAPWATCH_TLS_CA', check: nonEmpty as Check<string | undefined> },
  gcAssistBudget: { env: 'HEAPWATCH_GC_ASSIST_BUDGET', check: fraction(0, MAX_GC_ASSIST_BUDGET), parseEnv: envNumber },
  gcAssistMaxPauseMs: { env: 'HEAPWATCH_GC_ASSIST_MAX_PAUSE_MS', check: int(1, 10_000), parseEnv: envInt },
  sourceMaps: { env: 'HEAPWATCH_SOURCE_MAPS', check: bool, parseEnv: envBool },
  maxJobTypes: { env: 'HEAPWATCH_MAX_JOB_TYPES', check: int(1, MAX_JOB_TYPES), parseEnv: envInt },
  holderMaxHeapMb: { env: 'HEAPWATCH_HOLDER_MAX_HEAP_MB', check: int(0, 1 << 20), parseEnv: envInt },
  holderCooldownMs: { env: 'HEAPWATCH_HOLDER_COOLDOWN_MS', check: int(0), parseEnv: envInt },
  random: { check: randomFn },
};

function defaults(env: Env): AgentConfig {
  return {
    collector: DEFAULT_COLLECTOR,
    service: defaultService(env),
    labels: {},
    intervalMs: DEFAULT_INTERVAL_MS,
    samplingIntervalBytes: DEFAULT_SAMPLING_INTERVAL_BYTES,
    stackDepth: DEFAULT_STACK_DEPTH,
    token: undefined,
    logLevel: DEFAULT_LOG_LEVEL,
    disableInlining: true,
    precise: 'auto',
    preciseMaxMs: DEFAULT_PRECISE_MAX_MS,
    preciseMinProfiles: DEFAULT_PRECISE_MIN_PROFILES,
    preciseCooldownMs: DEFAULT_PRECISE_COOLDOWN_MS,
    timeoutMs: DEFAULT_TIMEOUT_MS,
    stopTimeoutMs: DEFAULT_STOP_TIMEOUT_MS,
    maxQueueProfiles: DEFAULT_MAX_QUEUE_PROFILES,
    maxQueueBytes: DEFAULT_MAX_QUEUE_BYTES,
    tls: false,
    tlsCa: undefined,
    gcAssistBudget: DEFAULT_GC_ASSIST_BUDGET,
    gcAssistMaxPauseMs: DEFAULT_GC_ASSIST_MAX_PAUSE_MS,
    sourceMaps: true,
    maxJobTypes: DEFAULT_MAX_JOB_TYPES,
    holderMaxHeapMb: DEFAULT_HOLDER_MAX_HEAP_MB,
    holderCooldownMs: DEFAULT_HOLDER_COOLDOWN_MS,
    random: Math.random,
  };
}

/** OTEL_SERVICE_NAME, else the main script's basename without extension, else "node". */
export function defaultService(env: Env): string {
  const otel = env.OTEL_SERVICE_NAME?.trim();
  if (otel) return otel;
  const script = process.argv[1];
  if (script) {
    const base = path.basename(script, path.extname(script));
    if (base) return base;
  }
  return 'node';
}

/**
 * Resolves `option ?? env ?? default` for every field. A bad env value is a
 * warning and falls back to the default (an operator typo must not take the
 * host down or silently disable profiling); a bad explicit option is an error
 * (the programmer asked for something specific).
 */
export function resolveConfig(options: AgentOptions = {}, env: Env = process.env): ConfigResult {
  const config = defaults(env);
  const errors: string[] = [];
  const warnings: string[] = [];
  const opts = (typeof options === 'object' && options !== null ? options : {}) as Record<string, unknown>;
  if (typeof options !== 'object' || options === null) errors.push('options must be an object');
  for (const key of Object.keys(opts)) {
    if (!(key in FIELDS)) errors.push(`unknown option "${key}"`);
  }
  const set = <K extends keyof AgentConfig>(key: K, field: Field<K>): void => {
    const opt = opts[key];
    if (opt !== undefined) {
      const r = field.check(opt);
      if ('error' in r) errors.push(`option ${key} ${r.error} (got ${JSON.stringify(opt)})`);
      else config[key] = r.value;
      return;
    }
    const raw = field.env ? env[field.env] : undefined;
    if (raw === undefined || raw === '') return;
    const r = field.check((field.parseEnv ?? envString)(raw));
    if ('error' in r) warnings.push(`ignoring ${field.env}=${JSON.stringify(raw)}: ${r.error}`);
    else config[key] = r.value;
  };
  for (const key of Object.keys(FIELDS) as (keyof AgentConfig)[]) {
    set(key, FIELDS[key] as Field<typeof key>);
  }
  return errors.length > 0 ? { ok: false, errors, warnings } : { ok: true, config, warnings };
}

/** HEAPWATCH_ENABLED: only consulted by the register modules. Unset or unparseable means enabled. */
export function enabledFromEnv(env: Env = process.env): { enabled: boolean; warning?: string } {
  const raw = env.HEAPWATCH_ENABLED;
  if (raw === undefined || raw === '') return { enabled: true };
  const v = envBool(raw);
  if (typeof v === 'boolean') return { enabled: v };
  return { enabled: true, warning: `ignoring HEAPWATCH_ENABLED=${JSON.stringify(raw)}: must be a boolean` };
}
