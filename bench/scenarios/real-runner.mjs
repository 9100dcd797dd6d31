/**
 * Runs the real-worker corpus (bench/scenarios/real: BullMQ and amqplib
 * workers, a TypeScript worker, worker_threads, fetch) with the agent
 * preloaded against a collector, and records what the stored leak report
 * said at every poll. Shared by the long scorecard
 * (bench/leaks/real-scorecard.mjs) and its CI subset
 * (test/leaks/real-workers.test.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const AGENT = process.env.HEAPWATCH_BENCH_AGENT ?? path.join(ROOT, 'agent/register.js');
export const REAL = path.join(ROOT, 'bench/scenarios/real');

/**
 * The header of a real scenario (see bench/scenarios/real/README.md):
 * `@leak` the site a developer should be shown, `@holder` the function that
 * keeps the data (should be on the reported stack), `@file` the original
 * file of the site when it is compiled, `@offheap`, `@threads`, `@ok`.
 */
export function readRealScenario(name) {
  const dir = path.join(REAL, name);
  const ts = fs.existsSync(path.join(dir, 'tsconfig.json'));
  const headerFile = ts ? path.join(dir, 'src/worker.ts') : path.join(REAL, `${name}.js`);
  const text = fs.readFileSync(headerFile, 'utf8');
  const tag = (t) => new RegExp(`^// @${t}(?: (\\S+))?$`, 'm').exec(text);
  const leak = tag('leak');
  return {
    name,
    kind: leak ? 'leak' : tag('ok') ? 'ok' : 'unknown',
    trueSite: leak?.[1] ?? null,
    holder: tag('holder')?.[1] ?? null,
    trueFile: tag('file')?.[1] ?? null,
    offHeap: tag('offheap') !== null,
    threads: tag('threads') !== null,
    jobsPerSec: Number(tag('jobs-per-sec')?.[1] ?? NaN),
    bytesPerJob: Number(tag('bytes-per-job')?.[1] ?? NaN),
    typescript: ts ? dir : null,
    entry: ts ? path.join(dir, 'dist/worker.js') : headerFile,
    needs: { redis: /require\('bullmq'\)|from 'bullmq'/.test(text), rabbitmq: /require\('amqplib'\)/.test(text) },
  };
}

export function listRealScenarios() {
  return fs
    .readdirSync(REAL, { withFileTypes: true })
    .filter((e) => (e.isFile() && e.name.endsWith('.js')) || (e.isDirectory() && fs.existsSync(path.join(REAL, e.name, 'tsconfig.json'))))
    .map((e) => readRealScenario(e.name.replace(/\.js$/, '')))
    .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'leak' ? -1 : 1));
}

/** Compiles a TypeScript scenario (tsc, source maps on) into its dist/. */
export function buildScenario(sc) {
  if (!sc.typescript) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', sc.typescript], { stdio: 'pipe' });
}

function answers(host, port, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Whether the machine's Redis (6379) and RabbitMQ (5672) accept connections. */
export async function servicesAnswer() {
  const [redis, rabbitmq] = await Promise.all([answers('127.0.0.1', 6379), answers('127.0.0.1', 5672)]);
  return { redis, rabbitmq };
}

/** Why a scenario cannot run here, or null. */
export function missingService(sc, up) {
  if (sc.needs.redis && !up.redis) return 'Redis does not answer on 127.0.0.1:6379';
  if (sc.needs.rabbitmq && !up.rabbitmq) return 'RabbitMQ does not answer on 127.0.0.1:5672';
  return null;
}

/** Deletes what a killed BullMQ worker of run `runId` left in Redis. */
async function sweepRedis(runId) {
  const { default: Redis } = await import('ioredis');
  const r = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `hwreal-${runId}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } catch {
    // Redis gone: nothing to sweep
  } finally {
    r.disconnect();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function getJson(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

/** Profiles the collector has stored for `service`. */
export async function profilesOf(collector, service) {
  const list = await getJson(`${collector.http}/api/v1/services`);
  return list?.find((s) => s.service === service)?.profiles ?? 0;
}

/** The stored leak report of `service`, or null. */
export function leaksOf(collector, service) {
  return getJson(`${collector.http}/api/v1/leaks?service=${encodeURIComponent(service)}`);
}

/**
 * Starts a scenario with the agent at its defaults but for the interval
 * (and the sampling interval if given). Returns { stop(), exited() }.
 */
export function startRealScenario(collector, sc, { service, intervalMs, samplingBytes, env = {} }) {
  const runId = `${service}-${process.pid}-${Date.now().toString(36)}`;
  const childEnv = {
    ...process.env,
    HEAPWATCH_COLLECTOR: collector.grpc,
    HEAPWATCH_SERVICE: service,
    HEAPWATCH_INTERVAL_MS: String(intervalMs),
    HEAPWATCH_LOG_LEVEL: 'error',
    SCENARIO_RUN_ID: runId,
    ...env,
  };
  if (samplingBytes) childEnv.HEAPWATCH_SAMPLING_INTERVAL_BYTES = String(samplingBytes);
  const child = spawn(process.execPath, ['--require', AGENT, sc.entry], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exit = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return {
    runId,
    get stderr() {
      return stderr;
    },
    exitCode: () => child.exitCode,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exit;
        clearTimeout(t);
      }
      if (sc.needs.redis) await sweepRedis(runId);
    },
  };
}

const frameFn = (s) => s.replace(/ \(.*\)$/, '');

/**
 * Judges one poll of the report against the scenario's truth. A leak is
 * "flagged" when a site is flagged or, for an off-heap leak, an external
 * process finding is; any finding on a non-leak is a false one.
 */
export function judge(sc, report) {
  const leaks = report?.leaks ?? [];
  const proc = report?.process ?? [];
  const top = leaks[0];
  const own = leaks.find((l) => l.function === sc.trueSite) ?? top;
  return {
    flagged: leaks.length > 0 || (sc.offHeap && proc.some((p) => p.kind === 'external')) || (sc.kind === 'ok' && proc.length > 0),
    sites: leaks.map((l) => `${l.function || '(anonymous)'} (${l.file}:${l.line})`),
    process: proc.map((p) => p.kind),
    top: top ? { function: top.function, file: top.file, line: top.line, siteKind: top.siteKind ?? null, allocatedIn: top.allocatedIn ?? null, firstFlaggedAt: top.firstFlaggedAt } : null,
    siteMatch: top ? top.function === sc.trueSite && (!sc.trueFile || top.file.endsWith(sc.trueFile)) : false,
    holderOnStack: own ? own.stack.some((f) => frameFn(f) === sc.holder) || own.function === sc.holder : false,
    stack: own?.stack ?? [],
    ...judgeHolder(sc, report, own),
  };
}

/**
 * The holder (docs/detector.md#holders) against the truth: for an off-heap
 * leak the capture's top off-heap holder, for a heap leak the holder the
 * report attaches to the leak's finding (`heldBy`); it names `@holder` as
 * the function that declares the held variable, or among the functions that
 * use it (else the closures that keep it).
 */
function judgeHolder(sc, report, own) {
  const capture = report?.holders ?? null;
  // No finding this poll (not flagged yet, or a flicker): nothing to judge, the last verdict stands.
  if (!capture || (!sc.offHeap && !own)) return { reportedHolder: null, holderMatch: false };
  if (capture.skipped) return { reportedHolder: { skipped: capture.skipped }, holderMatch: false };
  const top = sc.offHeap ? capture.holders.find((h) => h.offHeapBytes > 0) : own?.heldBy;
  if (!top) return { reportedHolder: { path: '(none found)' }, holderMatch: false };
  const keptBy = /(?:used|kept) by (.*)$/.exec(top.path)?.[1]?.split(', ') ?? [];
  return {
    reportedHolder: { owner: top.owner, function: top.function, file: top.file, line: top.line, path: top.path, offHeapBytes: top.offHeapBytes, heapBytes: top.heapBytes, match: top.match ?? null },
    holderMatch: !!sc.holder && (top.function === sc.holder || keptBy.includes(sc.holder)),
  };
}

/**
 * Runs one scenario for `durationMs`, polling the stored report every
 * interval. Records time to first flag, the site and stack against the
 * truth, flicker (flag/unflag changes after the first flag plus resets of
 * the top site's firstFlaggedAt) and false findings. A TypeScript
 * scenario must have been built (buildScenario) first.
 */
export async function runRealScenario(collector, sc, { service, intervalMs, samplingBytes, durationMs, onPoll }) {
  const run = startRealScenario(collector, sc, { service, intervalMs, samplingBytes });
  const startMs = Date.now();
  const r = {
    scenario: sc.name, kind: sc.kind, trueSite: sc.trueSite, holder: sc.holder, trueFile: sc.trueFile, offHeap: sc.offHeap,
    flagged: false, flaggedAtEnd: false, secondsToFlag: null, profilesToFlag: null, site: null, siteMatch: false, holderOnStack: false,
    stack: [], process: [], flicker: 0, falseFindings: [], profiles: 0, error: null, reportedHolder: null, holderMatch: false,
  };
  let prev = false;
  let firstFlaggedAt = null;
  try {
    while (Date.now() - startMs < durationMs) {
      if (run.exitCode() !== null) {
        r.error = `scenario exited with ${run.exitCode()}: ${run.stderr.slice(-300)}`;
        break;
      }
      await sleep(intervalMs);
      const report = await leaksOf(collector, service);
      if (!report) continue;
      const j = judge(sc, report);
      onPoll?.(j);
      if (j.flagged && !r.flagged) {
        r.flagged = true;
        r.secondsToFlag = Math.round((Date.now() - startMs) / 1000);
        r.profilesToFlag = await profilesOf(collector, service);
      } else if (r.flagged && j.flagged !== prev) {
        r.flicker++;
      }
      if (j.top) {
        if (firstFlaggedAt && j.top.firstFlaggedAt !== firstFlaggedAt && j.top.function === r.site?.function) r.flicker++;
        firstFlaggedAt = j.top.firstFlaggedAt;
        r.site = j.top;
        r.siteMatch = j.siteMatch;
        r.holderOnStack = j.holderOnStack;
        r.stack = j.stack;
      }
      if (j.reportedHolder) {
        r.reportedHolder = j.reportedHolder;
        r.holderMatch = j.holderMatch;
      }
      for (const k of j.process) if (!r.process.includes(k)) r.process.push(k);
      if (sc.kind === 'ok') for (const f of [...j.sites, ...j.process]) if (!r.falseFindings.includes(f)) r.falseFindings.push(f);
      prev = j.flagged;
    }
    r.flaggedAtEnd = prev;
    r.profiles = await profilesOf(collector, service);
  } finally {
    await run.stop();
  }
  return r;
}
