/**
 * Runs scenario workers (this folder) with the agent preloaded against a
 * collector, and reads back what the detector said. Shared by the scorecard
 * (bench/leaks/scorecard.mjs) and the integration test
 * (test/leaks/detector.integration.test.ts).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCollectorProcess } from '../../scripts/lib/collector-process.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = process.env.HEAPWATCH_BENCH_CLI ?? path.join(ROOT, 'collector/dist/cli.js');
const AGENT = process.env.HEAPWATCH_BENCH_AGENT ?? path.join(ROOT, 'agent/register.js');
/** `agent: 'pyroscope'`: the real @pyroscope/nodejs SDK instead, whose profiles carry no GC information. */
const PYROSCOPE = path.join(ROOT, 'bench/lib/pyroscope-preload.cjs');
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
    case 'buffer-batch-export': return { SCENARIO_PERIOD_MS: String(3 * intervalMs) };
    // 5000 new keys over ~36 intervals (3 minutes at 5 s), then evicting one per new key.
    case 'lru-filling-slowly': return { SCENARIO_KEYS: '5000', SCENARIO_JOBS_PER_SEC: String(Math.round(5000 / (36 * s))) };
    default: return {};
  }
}

/**
 * The collector's minimum growth time (leaks/alert.ts minGrowthMs) for a run
 * whose profile interval stands for production's 60 s (the corpus's periods
 * are in intervals): it is wall-clock, so it is scaled like the interval
 * (10 minutes at 60 s, 5 s at 500 ms, where the window's 14 profiles
 * decide). docs/detector.md#minimum-growth-time.
 */
export function scaledMinGrowthMs(intervalMs) {
  const { DEFAULT_ALERT } = createRequire(import.meta.url)('../../collector/dist/leaks/alert.js');
  return Math.round((DEFAULT_ALERT.minGrowthMs * intervalMs) / 60_000);
}

/**
 * A collector for scenario runs. Its periodic evaluation is off: runScenario
 * evaluates once per interval itself, so a finding is first seen by an
 * evaluation whose profile count it knows. `suspectTtlMs`: how long the
 * collector reuses a service's suspicion (the precise-mode directive); the
 * default 30 s is half of production's 60 s interval but 60 intervals at
 * 500 ms, so a scorecard passes half its own interval. `minGrowthMs`: the
 * alert's minimum growth time (default: the collector's own).
 */
export async function startCollector(dataDir, { suspectTtlMs, minGrowthMs } = {}) {
  const args = ['--leak-interval-ms', '0', ...(suspectTtlMs !== undefined ? ['--suspect-ttl-ms', String(suspectTtlMs)] : [])];
  if (minGrowthMs !== undefined) args.push('--leak-min-growth-ms', String(minGrowthMs));
  const c = await startCollectorProcess({ dataDir, cli: CLI, args });
  return { grpc: c.grpcAddress, http: c.httpUrl, output: c.output, stop: c.stop };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `@leak` values that name a process finding rather than a site. */
const PROCESS_SITES = new Set(['(heap)', '(external)']);

/**
 * A process finding's leak is not sampled, so its rate cannot follow the
 * sampling interval: this stands in for S. A fast run (2x) parks 256 KiB a
 * profile interval, which crosses the 2 MiB a process finding must rise
 * (docs/detector.md#process-findings) in 8 intervals, within the rule's 12.
 */
const OFFHEAP_UNIT_BYTES = 128 * 1024;

/** Profiles the collector has stored for `service` (0 before the first). */
async function profilesOf(http, service) {
  try {
    const res = await fetch(`${http}/api/v1/services`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) return 0;
    return (await res.json()).find((s) => s.service === service)?.profiles ?? 0;
  } catch {
    return 0;
  }
}

async function leaksOf(http, service) {
  try {
    // evaluate=true: the answer covers every profile stored so far, however
    // far behind the collector's periodic evaluation is on a loaded machine.
    const res = await fetch(`${http}/api/v1/leaks?service=${encodeURIComponent(service)}&evaluate=true`, { signal: AbortSignal.timeout(30_000) });
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
 * Slowest the scenario may run, as a multiple of its nominal duration: a
 * worker starved by a loaded machine sends fewer profiles, so runs are
 * counted in profiles and wall time is only a ceiling (an error, never a
 * silent "not flagged").
 */
export const WALL_CLOCK_CEILING = 10;

/**
 * Starts one scenario's worker with the agent, at the rate `mode` asks for;
 * the caller stops it. runScenario uses it; a test that needs a worker to
 * keep running while it looks at the collector (test/ui) uses it directly.
 */
export function spawnScenario(collector, sc, { mode, samplingBytes, intervalMs, service, gcAssistBudget = SCENARIO_GC_ASSIST_BUDGET, precise = 'auto', agent = 'heapwatch' }) {
  const env = {
    ...process.env,
    PYROSCOPE_SERVER_ADDRESS: collector.http,
    PYROSCOPE_APP_NAME: service,
    PYROSCOPE_FLUSH_MS: String(intervalMs),
    PYROSCOPE_SAMPLING_BYTES: String(samplingBytes),
    HEAPWATCH_COLLECTOR: collector.grpc,
    HEAPWATCH_SERVICE: service,
    HEAPWATCH_INTERVAL_MS: String(intervalMs),
    HEAPWATCH_SAMPLING_INTERVAL_BYTES: String(samplingBytes),
    HEAPWATCH_GC_ASSIST_BUDGET: String(gcAssistBudget),
    HEAPWATCH_PRECISE: precise,
    HEAPWATCH_LOG_LEVEL: 'error',
  };
  if (sc.kind === 'leak') {
    const multiple = mode === 'slow' ? 0.25 : 2;
    const targetBytesPerInterval = multiple * (PROCESS_SITES.has(sc.trueSite) ? OFFHEAP_UNIT_BYTES : samplingBytes);
    const jobsPerSec = targetBytesPerInterval / (sc.bytesPerJob * (intervalMs / 1000));
    env.SCENARIO_JOBS_PER_SEC = String(Math.max(0.5, Math.min(20_000, jobsPerSec)).toFixed(2));
  } else {
    Object.assign(env, okEnv(sc.name, intervalMs));
  }
  return spawn(process.execPath, ['--require', agent === 'pyroscope' ? PYROSCOPE : AGENT, sc.file], { env, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Runs one scenario with the agent until it is flagged (leaks) or until
 * `maxIntervals` profiles are stored (non-leaks), evaluating once per
 * interval. `intervalsToFlag` is the number of profiles stored before the
 * evaluation that first flagged it (under load a few more may have arrived
 * while it ran).
 */
export async function runScenario(collector, sc, { mode, samplingBytes, intervalMs, maxIntervals, service, gcAssistBudget = SCENARIO_GC_ASSIST_BUDGET, precise = 'auto', agent = 'heapwatch' }) {
  const child = spawnScenario(collector, sc, { mode, samplingBytes, intervalMs, service, gcAssistBudget, precise, agent });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const startMs = Date.now();
  const result = { scenario: sc.name, kind: sc.kind, mode, samplingBytes, gcAssistBudget, trueSite: sc.trueSite, flagged: false, reported: null, reportedAt: null, sites: [], intervalsToFlag: null, firstReported: null, intervalsToPrecise: null, measuredRate: null, profiles: 0, error: null };
  try {
    for (;;) {
      if (child.exitCode !== null) {
        result.error = `scenario exited with ${child.exitCode}: ${stderr.slice(-300)}`;
        break;
      }
      await sleep(intervalMs);
      // Read the count first: the evaluation then covers at least these
      // profiles, and at most the ones counted after it.
      const profiles = await profilesOf(collector.http, service);
      const r = await leaksOf(collector.http, service);
      result.profiles = profiles;
      const leaks = Array.isArray(r?.leaks) ? r.leaks : [];
      const processes = Array.isArray(r?.process) ? r.process : [];
      for (const name of [...leaks.map((l) => l.function), ...processes.map((p) => `(${p.kind})`)]) if (!result.sites.includes(name)) result.sites.push(name);
      // What counts as flagged: the expected process finding for a leak the
      // sampler cannot attribute (`@leak (external)`), else a site; for a
      // non-leak, any finding at all, process findings included.
      let hit = null;
      if (PROCESS_SITES.has(sc.trueSite)) {
        if (processes.some((p) => `(${p.kind})` === sc.trueSite)) hit = { reported: sc.trueSite, reportedAt: null };
      } else if (leaks.length > 0) {
        // A site first flagged with inlining on may be its caller
        // (attribution 'imprecise'); the run goes on until a site is
        // flagged from precise-mode profiles, and reports that one.
        const top = leaks.find((l) => l.attribution === 'precise') ?? leaks[0];
        hit = { reported: top.function, reportedAt: `${top.file}:${top.line}`, precise: top.attribution === 'precise' };
        const own = leaks.find((l) => l.function === sc.trueSite);
        if (own) result.measuredRate = own.growthBytesPerInterval / samplingBytes;
      } else if (sc.kind === 'ok' && processes.length > 0) {
        hit = { reported: `(${processes[0].kind})`, reportedAt: null };
      }
      if (hit) {
        result.flagged = true;
        if (result.intervalsToFlag === null) Object.assign(result, { firstReported: hit.reported, intervalsToFlag: profiles });
        if (result.intervalsToPrecise === null) Object.assign(result, { reported: hit.reported, reportedAt: hit.reportedAt });
        if (hit.precise !== false && result.intervalsToPrecise === null) result.intervalsToPrecise = profiles;
        if (sc.kind === 'leak' && hit.precise !== false) break;
      }
      if (profiles >= maxIntervals) break;
      if (Date.now() - startMs > WALL_CLOCK_CEILING * maxIntervals * intervalMs) {
        result.error = `only ${profiles} of ${maxIntervals} profiles in ${Math.round((Date.now() - startMs) / 1000)} s (the machine is too loaded for this run)`;
        break;
      }
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
  }
  return result;
}

