#!/usr/bin/env node
/**
 * `heapwatch serve` runs the collector; `heapwatch leaks` prints a service's
 * leak report. Flags win over environment variables, which win over defaults.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { checkSpec, parseTokensFile, TokenError, Tokens, type TokenSpec } from './auth/tokens';
import { DEFAULT_OPTIONS, ROLES, startCollector, type CollectorOptions, type Role } from './collector';
import { DEFAULT_ADMISSION } from './ingest/admission';
import { DEFAULT_LIMITS, type Limits } from './ingest/validate';
import { DEFAULT_ALERT, formatLeakTable, type LeakReport } from './leaks';
import { isLogLevel } from './log';
import { DAY_MS, MINUTE_MS } from './units';

const USAGE = `Usage:
  heapwatch serve [options]        run the collector (gRPC ingest + HTTP API)
  heapwatch leaks --service S      print the leak report of a service
  heapwatch help

serve options (environment variable in brackets):
  --host HOST              listen address for both ports [HEAPWATCH_HOST] (default 127.0.0.1)
  --grpc-port N            gRPC ingest port, 0 picks a free one [HEAPWATCH_GRPC_PORT] (default 7801)
  --http-port N            HTTP API port, 0 picks a free one [HEAPWATCH_HTTP_PORT] (default 7800)
  --data DIR               embedded ClickHouse data directory [HEAPWATCH_DATA] (default ./data)
  --clickhouse-url URL     use a ClickHouse server, http://user:pass@host:8123/db [HEAPWATCH_CLICKHOUSE_URL]
  --cluster NAME           ClickHouse cluster for ON CLUSTER DDL and Distributed tables [HEAPWATCH_CLICKHOUSE_CLUSTER]
  --retention-days N       days of profiles to keep, 0 = forever [HEAPWATCH_RETENTION_DAYS] (default 30)
  --token TOKEN            a read+write token of the default tenant [HEAPWATCH_TOKEN]; visible in
                           the process list as a flag: prefer the variable or --tokens-file
  --tokens-file PATH       tokens, one a line: TOKEN SCOPE[,SCOPE] [TENANT] [HEAPWATCH_TOKENS_FILE]
                           (the same lines, ';'-separated, in [HEAPWATCH_TOKENS]); with any token
                           configured, every endpoint but /healthz, /readyz and /login requires one
  --auth-max-failures N    failed authentications per address and minute before it is refused
                           for the rest of the minute [HEAPWATCH_AUTH_MAX_FAILURES] (default 10)
  --tls-cert PATH          serve both ports over TLS with this PEM certificate [HEAPWATCH_TLS_CERT]
  --tls-key PATH           ... and this PEM private key [HEAPWATCH_TLS_KEY]
  --role ROLE              ingest|evaluate|all: ingest only, leak evaluation only, or both
                           [HEAPWATCH_ROLE] (default all)
  --max-queries N          API reads running at once, 256 more wait [HEAPWATCH_MAX_QUERIES] (default 4)
  --max-evaluations N      leak evaluations running at once, 64 more wait [HEAPWATCH_MAX_EVALUATIONS] (default 1)
  --query-timeout-ms N     a read's deadline, an evaluation's is twice it [HEAPWATCH_QUERY_TIMEOUT_MS]
                           (default 30000)
  --log-level LEVEL        silent|error|warn|info|debug [HEAPWATCH_LOG_LEVEL] (default info)
  --leak-interval-ms N     evaluate every service for leaks this often, 0 = only on request
                           [HEAPWATCH_LEAK_INTERVAL_MS] (default 30000)
  --suspect-ttl-ms N       how long a service's suspicion (precise mode on or off for its
                           agents) is reused before the stored report is read again
                           [HEAPWATCH_SUSPECT_TTL_MS] (default 30000)
  --holder-request-cooldown-ms N
                           no holder capture (a heap snapshot of one instance) is asked of a
                           service sooner than this after its last
                           [HEAPWATCH_HOLDER_REQUEST_COOLDOWN_MS] (default 3600000)
  --leak-min-growth-ms N   a leak is flagged only once its growth has lasted this long (a bounded
                           cache filling faster is never flagged), 0 = no minimum
                           [HEAPWATCH_LEAK_MIN_GROWTH_MS] (default ${DEFAULT_ALERT.minGrowthMs})
  --alert-webhook URL      POST a JSON (Slack-compatible) message when a leak is flagged or
                           cleared; repeatable [HEAPWATCH_ALERT_WEBHOOKS, comma-separated]
  --public-url URL         the HTTP API's address as alert receivers reach it, for links
                           [HEAPWATCH_PUBLIC_URL] (default http://HOST:HTTP-PORT)
  --max-in-flight-requests N
                           ingest requests worked on at once, gRPC and HTTP together;
                           more get RESOURCE_EXHAUSTED (gRPC) or 429 (HTTP)
                           [HEAPWATCH_MAX_IN_FLIGHT_REQUESTS] (default ${DEFAULT_ADMISSION.maxInFlightRequests})
  --max-in-flight-bytes N  their gzipped profile bytes together [HEAPWATCH_MAX_IN_FLIGHT_BYTES]
                           (default ${DEFAULT_ADMISSION.maxInFlightBytes})
  --max-hold-ms N          longest an ingest request holds its place, deadline or not
                           [HEAPWATCH_MAX_HOLD_MS] (default ${DEFAULT_ADMISSION.maxHoldMs})
  --limit NAME=N           one per-request limit (repeatable), e.g. --limit maxSamples=500000
                           [HEAPWATCH_LIMITS, comma-separated NAME=N]; names and defaults:
                           ${Object.entries(DEFAULT_LIMITS).filter(([k]) => k !== 'maxAgeMs').map(([k, v]) => `${k}=${v}`).join(' ').replace(/(.{1,70})( |$)/g, '$1\n                           ').trimEnd()}

leaks options:
  --service S              the service (required)
  --url URL                the collector's HTTP API [HEAPWATCH_URL] (default http://127.0.0.1:7800)
  --json                   print the JSON answer instead of a table
  [HEAPWATCH_TOKEN]        sent as the bearer token when set; an https URL with a private CA
                           takes NODE_EXTRA_CA_CERTS=ca.pem
  exit status: 0 nothing flagged, 3 a site or a process finding flagged, 1 error, 2 usage
`;

class UsageError extends Error {}

function int(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

export function serveOptions(argv: string[], env: NodeJS.ProcessEnv): Partial<CollectorOptions> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      'grpc-port': { type: 'string' },
      'http-port': { type: 'string' },
      data: { type: 'string' },
      'clickhouse-url': { type: 'string' },
      cluster: { type: 'string' },
      'retention-days': { type: 'string' },
      token: { type: 'string' },
      'tokens-file': { type: 'string' },
      'auth-max-failures': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      role: { type: 'string' },
      'max-queries': { type: 'string' },
      'max-evaluations': { type: 'string' },
      'query-timeout-ms': { type: 'string' },
      'log-level': { type: 'string' },
      'leak-interval-ms': { type: 'string' },
      'suspect-ttl-ms': { type: 'string' },
      'leak-min-growth-ms': { type: 'string' },
      'holder-request-cooldown-ms': { type: 'string' },
      'alert-webhook': { type: 'string', multiple: true },
      'public-url': { type: 'string' },
      'max-in-flight-requests': { type: 'string' },
      'max-in-flight-bytes': { type: 'string' },
      'max-hold-ms': { type: 'string' },
      limit: { type: 'string', multiple: true },
    },
    strict: true,
    allowPositionals: false,
  });
  const logLevel = values['log-level'] ?? env.HEAPWATCH_LOG_LEVEL;
  if (logLevel !== undefined && !isLogLevel(logLevel)) throw new UsageError(`--log-level must be silent, error, warn, info or debug, got ${JSON.stringify(logLevel)}`);
  const role = values.role ?? env.HEAPWATCH_ROLE;
  if (role !== undefined && !ROLES.includes(role as Role)) throw new UsageError(`--role must be ingest, evaluate or all, got ${JSON.stringify(role)}`);
  const url = values['clickhouse-url'] ?? env.HEAPWATCH_CLICKHOUSE_URL;
  if (url !== undefined && !/^https?:\/\//.test(url)) throw new UsageError(`--clickhouse-url must be an http(s):// URL, got ${JSON.stringify(url)}`);
  const webhooks = values['alert-webhook'] ?? (env.HEAPWATCH_ALERT_WEBHOOKS ?? '').split(',').map((u) => u.trim()).filter(Boolean);
  for (const w of webhooks) if (!/^https?:\/\/[^\s]+$/.test(w)) throw new UsageError(`--alert-webhook must be an http(s):// URL, got ${JSON.stringify(w)}`);
  const publicUrl = values['public-url'] ?? env.HEAPWATCH_PUBLIC_URL;
  if (publicUrl !== undefined && !/^https?:\/\//.test(publicUrl)) throw new UsageError(`--public-url must be an http(s):// URL, got ${JSON.stringify(publicUrl)}`);
  const opts: Partial<CollectorOptions> = {
    host: values.host ?? env.HEAPWATCH_HOST,
    grpcPort: int('--grpc-port', values['grpc-port'] ?? env.HEAPWATCH_GRPC_PORT, 0, 65535),
    httpPort: int('--http-port', values['http-port'] ?? env.HEAPWATCH_HTTP_PORT, 0, 65535),
    dataDir: values.data ?? env.HEAPWATCH_DATA,
    clickhouseUrl: url,
    cluster: values.cluster ?? env.HEAPWATCH_CLICKHOUSE_CLUSTER,
    retentionDays: int('--retention-days', values['retention-days'] ?? env.HEAPWATCH_RETENTION_DAYS, 0, 36500),
    tokens: tokenSpecs(values.token ?? env.HEAPWATCH_TOKEN, values['tokens-file'] ?? env.HEAPWATCH_TOKENS_FILE, env.HEAPWATCH_TOKENS),
    throttle: throttle(int('--auth-max-failures', values['auth-max-failures'] ?? env.HEAPWATCH_AUTH_MAX_FAILURES, 1, 1_000_000)),
    tls: tlsFiles(values['tls-cert'] ?? env.HEAPWATCH_TLS_CERT, values['tls-key'] ?? env.HEAPWATCH_TLS_KEY),
    role: role as Role | undefined,
    queryLimits: queryLimits(
      int('--max-queries', values['max-queries'] ?? env.HEAPWATCH_MAX_QUERIES, 1, 1000),
      int('--max-evaluations', values['max-evaluations'] ?? env.HEAPWATCH_MAX_EVALUATIONS, 1, 100),
      int('--query-timeout-ms', values['query-timeout-ms'] ?? env.HEAPWATCH_QUERY_TIMEOUT_MS, 100, DAY_MS),
    ),
    logLevel,
    leakEvaluationMs: int('--leak-interval-ms', values['leak-interval-ms'] ?? env.HEAPWATCH_LEAK_INTERVAL_MS, 0, DAY_MS),
    suspectTtlMs: int('--suspect-ttl-ms', values['suspect-ttl-ms'] ?? env.HEAPWATCH_SUSPECT_TTL_MS, 0, DAY_MS),
    holderRequestCooldownMs: int('--holder-request-cooldown-ms', values['holder-request-cooldown-ms'] ?? env.HEAPWATCH_HOLDER_REQUEST_COOLDOWN_MS, 0, 30 * DAY_MS),
    leakMinGrowthMs: int('--leak-min-growth-ms', values['leak-min-growth-ms'] ?? env.HEAPWATCH_LEAK_MIN_GROWTH_MS, 0, DAY_MS),
    alertWebhooks: webhooks.length ? webhooks : undefined,
    publicUrl,
  };
  const admission = {
    maxInFlightRequests: int('--max-in-flight-requests', values['max-in-flight-requests'] ?? env.HEAPWATCH_MAX_IN_FLIGHT_REQUESTS, 1, 1_000_000),
    maxInFlightBytes: int('--max-in-flight-bytes', values['max-in-flight-bytes'] ?? env.HEAPWATCH_MAX_IN_FLIGHT_BYTES, 1, 2 ** 40),
    maxHoldMs: int('--max-hold-ms', values['max-hold-ms'] ?? env.HEAPWATCH_MAX_HOLD_MS, 100, DAY_MS),
  };
  if (Object.values(admission).some((v) => v !== undefined)) {
    opts.admission = Object.fromEntries(Object.entries(admission).filter(([, v]) => v !== undefined));
  }
  const limits = parseLimits(values.limit ?? env.HEAPWATCH_LIMITS?.split(',').filter(Boolean) ?? []);
  if (Object.keys(limits).length > 0) opts.ingest = { limits };
  for (const k of Object.keys(opts) as (keyof CollectorOptions)[]) if (opts[k] === undefined || opts[k] === '') delete opts[k];
  return opts;
}

/** Every configured token: --token (read+write, default tenant), the tokens file, HEAPWATCH_TOKENS. */
function tokenSpecs(token: string | undefined, file: string | undefined, inline: string | undefined): TokenSpec[] | undefined {
  const specs: TokenSpec[] = [];
  try {
    if (token) specs.push(checkSpec({ token, scopes: ['read', 'write'], tenant: '' }, '--token'));
    if (file) specs.push(...parseTokensFile(readFile('--tokens-file', file), file));
    if (inline) specs.push(...parseTokensFile(inline.replace(/;/g, '\n'), 'HEAPWATCH_TOKENS'));
    new Tokens(specs); // refuses a token configured twice
  } catch (err) {
    if (err instanceof TokenError) throw new UsageError(err.message);
    throw err;
  }
  return specs.length > 0 ? specs : undefined;
}

function throttle(maxFailures: number | undefined): CollectorOptions['throttle'] {
  return maxFailures === undefined ? undefined : { maxFailures };
}

function readFile(flag: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} ${file}: ${(err as Error).message}`);
  }
}

function tlsFiles(cert: string | undefined, key: string | undefined): CollectorOptions['tls'] {
  if (!cert && !key) return undefined;
  if (!cert || !key) throw new UsageError('--tls-cert and --tls-key go together');
  return { cert: Buffer.from(readFile('--tls-cert', cert)), key: Buffer.from(readFile('--tls-key', key)) };
}

function queryLimits(reads: number | undefined, evaluations: number | undefined, timeoutMs: number | undefined): CollectorOptions['queryLimits'] | undefined {
  if (reads === undefined && evaluations === undefined && timeoutMs === undefined) return undefined;
  const d = DEFAULT_OPTIONS.queryLimits;
  return {
    reads: { ...d.reads, concurrency: reads ?? d.reads.concurrency, timeoutMs: timeoutMs ?? d.reads.timeoutMs },
    evaluations: { ...d.evaluations, concurrency: evaluations ?? d.evaluations.concurrency, timeoutMs: timeoutMs ? 2 * timeoutMs : d.evaluations.timeoutMs },
  };
}
/** `NAME=N` pairs into Limits; maxAgeMs follows --retention-days and is not set here. */
function parseLimits(pairs: string[]): Partial<Limits> {
  const out: Partial<Limits> = {};
  for (const pair of pairs) {
    const [name = '', value] = pair.split('=', 2);
    if (!(name in DEFAULT_LIMITS) || name === 'maxAgeMs') {
      throw new UsageError(`--limit ${JSON.stringify(pair)}: unknown limit; known: ${Object.keys(DEFAULT_LIMITS).filter((k) => k !== 'maxAgeMs').join(', ')}`);
    }
    out[name as keyof Limits] = int(`--limit ${name}`, value ?? '', 1, 2 ** 40);
  }
  return out;
}

/**
 * libuv's thread pool runs both gunzip and every query of the embedded
 * engine (chDB queues its work there); with the default 4 threads, a few
 * large inflations made /healthz and the inserts wait seconds for a thread.
 * Read once, when the pool first starts, so it is set before anything runs.
 */
const THREADPOOL_SIZE = '16';

async function serve(argv: string[]): Promise<void> {
  process.env.UV_THREADPOOL_SIZE ??= THREADPOOL_SIZE;
  const opts = serveOptions(argv, process.env);
  if (argv.some((a) => a === '--token' || a.startsWith('--token='))) {
    process.stderr.write('heapwatch: warning: --token is visible in the process list; use HEAPWATCH_TOKEN or --tokens-file\n');
  }
  const collector = await startCollector(opts);
  const host = opts.host ?? DEFAULT_OPTIONS.host;
  const store = opts.clickhouseUrl ? `ClickHouse at ${new URL(opts.clickhouseUrl).host}` : `embedded ClickHouse in ${opts.dataDir ?? DEFAULT_OPTIONS.dataDir}`;
  // Machine-readable first lines: tests and scripts read the chosen ports here.
  process.stdout.write(`heapwatch collector: grpc ${host}:${collector.grpcPort}\n`);
  process.stdout.write(`heapwatch collector: http ${opts.tls ? 'https' : 'http'}://${host}:${collector.httpPort}\n`);
  process.stdout.write(`heapwatch collector: store ${store}\n`);
  process.stdout.write(
    collector.webUi ? `heapwatch collector: web UI ${opts.tls ? 'https' : 'http'}://${host}:${collector.httpPort}/\n` : 'heapwatch collector: web UI not built (npm run build)\n',
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1); // a second signal: do not wait
    stopping = true;
    collector.log.info(`${signal}: flushing and stopping`);
    collector.close().then(
      () => process.exit(0),
      (err: unknown) => {
        collector.log.error(`stopping failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The collector URL `heapwatch leaks` asks: the flag, else HEAPWATCH_URL unless empty, else the default; checked before use. */
export function leaksBaseUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const raw = flag ?? (env.HEAPWATCH_URL || 'http://127.0.0.1:7800');
  const from = flag !== undefined ? '--url' : env.HEAPWATCH_URL ? 'HEAPWATCH_URL' : 'the default URL';
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`${from} ${JSON.stringify(raw)} is not a valid URL (a bad host or a port above 65535?)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${from} ${JSON.stringify(raw)} must be an http(s):// URL`);
  return raw.replace(/\/+$/, '');
}

/** 3 when the report flags anything (a site, or a process's heap or off-heap memory), else 0. */
export function leaksExitStatus(report: Pick<LeakReport, 'leaks' | 'process'>): number {
  return report.leaks.length > 0 || report.process.length > 0 ? 3 : 0;
}

async function leaks(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { service: { type: 'string' }, url: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  });
  if (!values.service) throw new UsageError('--service is required');
  const base = leaksBaseUrl(values.url, process.env);
  const url = `${base}/api/v1/leaks?service=${encodeURIComponent(values.service)}`;
  let res: Response;
  try {
    // The token from the environment only: a flag would show it in the process list.
    const token = process.env.HEAPWATCH_TOKEN;
    res = await fetch(url, { signal: AbortSignal.timeout(MINUTE_MS), headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    throw new Error(`cannot reach the collector at ${base}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  const body = (await res.json().catch(() => ({ error: `HTTP ${res.status} with a body that is not JSON` }))) as LeakReport & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : formatLeakTable(body));
  // Scripts can tell "something is leaking" from "all clear" without parsing.
  return leaksExitStatus(body);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      await serve(rest);
      return -1; // keeps running
    case 'leaks':
      return leaks(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

/** Runs the command line; the process exit code says how it went. */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`heapwatch: ${(err as Error).message}\n\n${USAGE}`);
        process.exitCode = 2;
      } else {
        process.stderr.write(`heapwatch: ${(err as Error)?.message ?? String(err)}\n`);
        process.exitCode = 1;
      }
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
