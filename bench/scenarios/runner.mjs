/**
 * Runs scenario workers (this folder) with the agent preloaded against a
 * collector, and reads back what the detector said. Shared by the scorecard
 * (bench/leaks/scorecard.mjs) and the integration test
 * (test/leaks/detector.integration.test.ts).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCollectorProcess } from '../../scripts/lib/collector-process.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = process.env.HEAPWATCH_BENCH_CLI ?? path.join(ROOT, 'collector/dist/cli.js');
const AGENT = process.env.HEAPWATCH_BENCH_AGENT ?? path.join(ROOT, 'agent/register.js');
const SCENARIOS = path.join(ROOT, 'bench/scenarios');

/** Reads the machine-readable header of a scenario file. */
export function readScenario(file) {
  const text = fs.readFileSync(file, 'utf8');
  const leak = /^\/\/ @leak (\S+)/m.exec(text);
  const ok = /^\/\/ @ok\b/m.test(text);
  const bpj = /^\/\/ @bytes-per-job (\d+)/m.exec(text);
  return {
    name: path.basename(file, '.js'),
    file,
    kind: leak ? 'leak' : ok ? 'ok' : 'unknown',
    trueSite: leak ? leak[1] : null,
    bytesPerJob: bpj ? Number(bpj[1]) : null,
  };
}

export function listScenarios() {
  const out = [];
  for (const dir of ['leaks', 'ok']) {
    for (const f of fs.readdirSync(path.join(SCENARIOS, dir)).sort()) {
      if (f.endsWith('.js')) out.push(readScenario(path.join(SCENARIOS, dir, f)));
    }
  }
  return out;
}

/** Environment for a non-leak scenario: its periods in profile intervals. */
export function okEnv(name, intervalMs) {
  const s = intervalMs / 1000;
  switch (name) {
    case 'warmup-cache': return { SCENARIO_JOBS_PER_SEC: String(Math.round(600 / (3 * s))) }; // ~3 intervals to fill 600 keys
    case 'batch-release': return { SCENARIO_PERIOD_MS: String(3 * intervalMs) };
    case 'sawtooth-flush': return { SCENARIO_PERIOD_MS: String(Math.round(2.5 * intervalMs)) };
    case 'ramp-then-hold': return { SCENARIO_PERIOD_MS: String(5 * intervalMs) };
    // 2000 entries, one insert in three a new key: full after ~4 intervals, then evicting one per new key.
    case 'lru-at-capacity': return { SCENARIO_KEYS: '2000', SCENARIO_JOBS_PER_SEC: String(Math.round((3 * 2000) / (4 * s))) };
    case 'ttl-cache': return { SCENARIO_PERIOD_MS: String(4 * intervalMs) };
    case 'lazy-require-jit': return { SCENARIO_PERIOD_MS: String(Math.round(intervalMs / 3)) };
    default: return {};
  }
}

export async function startCollector(dataDir, intervalMs) {
  const c = await startCollectorProcess({ dataDir, cli: CLI, args: ['--leak-interval-ms', String(intervalMs)] });
  return { grpc: c.grpcAddress, http: c.httpUrl, output: c.output, stop: c.stop };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function leaksOf(http, service) {
  try {
    const res = await fetch(`${http}/api/v1/leaks?service=${encodeURIComponent(service)}`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) return null;
    return await res.json();
  } catch {
    return null;
  }
}

/**
 * The agent's GcAssist budget for scenario runs. A forced major GC of these
 * workers' heaps takes a few ms; the default budget (1 % of wall time) allows
 * one every profile at a 60 s interval but only every other one at 500 ms.
 * 5 % gives 500 ms profiles the proportions of production's 60 s ones.
 */
export const SCENARIO_GC_ASSIST_BUDGET = 0.05;

/**
 * Runs one scenario with the agent until it is flagged (leaks) or for its
 * whole duration (non-leaks), polling the stored report once per interval.
 */
export async function runScenario(collector, sc, { mode, samplingBytes, intervalMs, maxIntervals, service, gcAssistBudget = SCENARIO_GC_ASSIST_BUDGET }) {
  const env = {
    ...process.env,
    HEAPWATCH_COLLECTOR: collector.grpc,
    HEAPWATCH_SERVICE: service,
    HEAPWATCH_INTERVAL_MS: String(intervalMs),
    HEAPWATCH_SAMPLING_INTERVAL_BYTES: String(samplingBytes),
    HEAPWATCH_GC_ASSIST_BUDGET: String(gcAssistBudget),
    HEAPWATCH_LOG_LEVEL: 'error',
  };
  let targetBytesPerInterval = null;
  if (sc.kind === 'leak') {
    const multiple = mode === 'slow' ? 0.25 : 2;
    targetBytesPerInterval = multiple * samplingBytes;
    const jobsPerSec = targetBytesPerInterval / (sc.bytesPerJob * (intervalMs / 1000));
    env.SCENARIO_JOBS_PER_SEC = String(Math.max(0.5, Math.min(20_000, jobsPerSec)).toFixed(2));
  } else {
    Object.assign(env, okEnv(sc.name, intervalMs));
  }
  const child = spawn(process.execPath, ['--require', AGENT, sc.file], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const startMs = Date.now();
  const result = { scenario: sc.name, kind: sc.kind, mode, samplingBytes, gcAssistBudget, trueSite: sc.trueSite, flagged: false, reported: null, reportedAt: null, sites: [], intervalsToFlag: null, measuredRate: null, error: null };
  try {
    while (Date.now() - startMs < maxIntervals * intervalMs) {
      if (child.exitCode !== null) {
        result.error = `scenario exited with ${child.exitCode}: ${stderr.slice(-300)}`;
        break;
      }
      await sleep(intervalMs);
      const r = await leaksOf(collector.http, service);
      if (!r || !Array.isArray(r.leaks) || r.leaks.length === 0) continue;
      result.flagged = true;
      result.reported = r.leaks[0].function;
      result.reportedAt = `${r.leaks[0].file}:${r.leaks[0].line}`;
      for (const l of r.leaks) if (!result.sites.includes(l.function)) result.sites.push(l.function);
      if (result.intervalsToFlag === null) result.intervalsToFlag = Math.round((Date.parse(r.leaks[0].firstFlaggedAt) - startMs) / intervalMs);
      const own = r.leaks.find((l) => l.function === sc.trueSite);
      if (own) result.measuredRate = own.growthBytesPerInterval / samplingBytes;
      if (sc.kind === 'leak') break;
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
  }
  return result;
}

