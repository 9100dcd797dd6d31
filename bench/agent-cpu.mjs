// Part 6: what the agent costs a CPU-bound worker, in instructions.
//
// Wall-clock pairs on a shared 2-core machine spread too widely to see a few
// per cent, so this part counts instructions: valgrind's callgrind on
// `node --predictable --predictable-gc-schedule` (V8 on one thread, and a
// fixed heap-growing schedule: without it V8 sizes the old generation from
// measured GC and mutator speeds, so a run slowed by other tenants collects
// differently; two 80,000-job runs without a profiler differed by 4 %), the worker
// bench/workers/cpu-worker.js (JSON parse and serialise, small classes, a
// 200,000-object working set) for a fixed number of jobs. Start-up is
// removed by subtracting a short run from a long one of the same variant:
// the difference is the steady state of (long - short) jobs.
//
// Per-tick and continuous costs are measured apart, then composed at the
// production interval. Under valgrind a job runs ~30-70x slower, so a 2 s
// interval there is one profile per ~50 ms of native work, a thousand times
// more often than the field's 60 s. So each profiler runs twice: with an
// interval longer than the run ("idle": only what it costs between
// profiles: the sampler, the GC sentinel, de-inlining, ...) and with a
// 2 s interval ("ticking"); (ticking - idle) / profiles taken is the cost of
// one profile. The ratio at the production interval is
// (idle + one profile x profiles per 60 s of native work) / no profiler,
// with native seconds per job measured outside valgrind.
//
// Diagnostics (--variants gc-observer,gc-sentinel --result agent-cpu-gc):
// no profiler, only a way of noticing major GCs, idle runs only.
//
// Variants: none; heapwatch in its default mode; heapwatch in precise mode
// (HEAPWATCH_PRECISE=always: inlining off from start, GC assist on);
// @pyroscope/nodejs with heap profiling (512 KiB, as the agent); and
// "switch": the default mode until the first response of the collector
// turns precise mode on, for the one-time cost of the switch on hot code.
// heapwatch sends to a gRPC sink (bench/lib/grpc-sink.mjs) that answers as
// a collector would; pyroscope to an HTTP sink.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fmt, header, median, parseArgs, table, targetsTable, writeResult } from './lib/report.mjs';
import { startGrpcSink } from './lib/grpc-sink.mjs';
import { DEFAULT_AGENT_DIR, loadavg, startPyroscopeSink } from './lib/worker-run.mjs';
import { BENCH_DIR, ROOT } from './lib/report.mjs';

const opts = parseArgs({
  shortJobs: 20000,
  longJobs: 80000,
  tickIntervalMs: 2000,
  productionIntervalS: 60,
  nativeRounds: 5,
  nativeJobs: 400000,
  variants: 'none,default,precise,pyroscope,switch',
  result: 'agent-cpu',
  parallel: 1,
  agentDir: DEFAULT_AGENT_DIR,
  quick: false,
});
if (opts.quick) Object.assign(opts, { shortJobs: 4000, longJobs: 12000, nativeRounds: 2, nativeJobs: 100000 });
const WORKER = path.join(BENCH_DIR, 'workers/cpu-worker.js');
const IDLE_INTERVAL_MS = 3_600_000;
const V8_FLAGS = ['--predictable', '--predictable-gc-schedule'];
const loadStart = loadavg();

if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('agent-cpu: valgrind is not installed (Debian: apt-get install valgrind)');
  process.exit(1);
}

/**
 * One worker run under callgrind. Resolves with { instructions, result,
 * requests }. Runs may go in parallel (--parallel): instruction counts do
 * not depend on it, only the wall time does, and with it how many profiles
 * a ticking run takes, which the per-profile figure divides by.
 */
let runSeq = 0;
async function callgrind({ variant, jobs, intervalMs, env = {}, directive }) {
  const out = path.join(os.tmpdir(), `heapwatch-cg-${process.pid}-${++runSeq}.out`);
  const sink = variant === 'heapwatch' ? await startGrpcSink({ directive }) : undefined;
  const pyroSink = variant === 'pyroscope' ? await startPyroscopeSink() : undefined;
  const nodeArgs = [...V8_FLAGS];
  const childEnv = { ...process.env, HEAPWATCH_ENABLED: 'false' };
  if (variant === 'heapwatch') {
    nodeArgs.push('--require', path.join(opts.agentDir, 'register.js'));
    Object.assign(childEnv, {
      HEAPWATCH_ENABLED: 'true',
      HEAPWATCH_COLLECTOR: sink.address,
      HEAPWATCH_SERVICE: 'bench-agent-cpu',
      HEAPWATCH_INTERVAL_MS: String(intervalMs),
      HEAPWATCH_LOG_LEVEL: 'error',
      ...env,
    });
  }
  const cfg = { variant, jobs, intervalMs, sinkUrl: pyroSink?.url, agentDir: opts.agentDir };
  const args = ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath, ...nodeArgs, WORKER, JSON.stringify(cfg)];
  const t0 = Date.now();
  const child = spawn('valgrind', args, { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-8000)));
  const code = await new Promise((r) => child.once('exit', r));
  await sink?.close();
  await pyroSink?.close();
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  let instructions = NaN;
  try {
    instructions = Number(/^summary: (\d+)/m.exec(fs.readFileSync(out, 'utf8'))?.[1]);
    fs.rmSync(out, { force: true });
  } catch {}
  if (code !== 0 || !line || !Number.isFinite(instructions)) throw new Error(`callgrind run of ${variant} (${jobs} jobs) failed (exit ${code}):\n${stderr}`);
  const result = JSON.parse(line.slice('RESULT '.length));
  const requests = (sink ?? pyroSink)?.stats.requests ?? 0;
  const r = { instructions, result, requests, wallS: (Date.now() - t0) / 1000 };
  console.error(`  ${variant} ${JSON.stringify(env)} ${jobs} jobs @${intervalMs} ms: ${fmt(instructions)} instructions, ${requests} profiles, ${r.wallS.toFixed(0)} s`);
  return r;
}

const SPECS = {
  none: { variant: 'none' },
  default: { variant: 'heapwatch' },
  precise: { variant: 'heapwatch', env: { HEAPWATCH_PRECISE: 'always' } },
  pyroscope: { variant: 'pyroscope' },
  'gc-observer': { variant: 'gc-observer' },
  'gc-sentinel': { variant: 'gc-sentinel' },
};
const wanted = opts.variants.split(',');
const steadyJobs = opts.longJobs - opts.shortJobs;
console.error(`agent-cpu: ${steadyJobs} steady-state jobs per variant under callgrind, ${opts.parallel} at a time`);

// Every run of the part, then all of them through a pool of --parallel.
const plan = new Map();
const both = (key, spec, intervalMs) => {
  plan.set(`${key}/short`, { ...spec, jobs: opts.shortJobs, intervalMs });
  plan.set(`${key}/long`, { ...spec, jobs: opts.longJobs, intervalMs });
};
both('none', SPECS.none, IDLE_INTERVAL_MS);
for (const name of ['default', 'precise', 'pyroscope']) {
  if (!wanted.includes(name)) continue;
  both(`${name}/idle`, SPECS[name], IDLE_INTERVAL_MS);
  both(`${name}/ticking`, SPECS[name], opts.tickIntervalMs);
}
for (const name of ['gc-observer', 'gc-sentinel']) if (wanted.includes(name)) both(`${name}/idle`, SPECS[name], IDLE_INTERVAL_MS);
// The switch: default mode until the first acknowledgement turns precise mode on.
const switching = wanted.includes('switch') && wanted.includes('default') && wanted.includes('precise');
if (switching) plan.set('switch', { ...SPECS.default, jobs: opts.shortJobs, intervalMs: opts.tickIntervalMs, directive: () => ({ precise: true, preciseForMs: IDLE_INTERVAL_MS, reason: 'bench' }) });
// The noise floor: the long run without a profiler, again.
plan.set('none-again', { ...SPECS.none, jobs: opts.longJobs, intervalMs: IDLE_INTERVAL_MS });

const done = new Map();
const queue = [...plan.entries()];
await Promise.all(
  Array.from({ length: Math.max(1, opts.parallel) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) done.set(next[0], await callgrind(next[1]));
  }),
);
const steadyOf = (key) => {
  const short = done.get(`${key}/short`);
  const long = done.get(`${key}/long`);
  return { short, long, instructions: long.instructions - short.instructions, profiles: long.requests - short.requests };
};
const runs = { none: steadyOf('none') };
for (const name of ['default', 'precise', 'pyroscope']) if (wanted.includes(name)) runs[name] = { idle: steadyOf(`${name}/idle`), ticking: steadyOf(`${name}/ticking`) };
for (const name of ['gc-observer', 'gc-sentinel']) if (wanted.includes(name)) runs[name] = { idle: steadyOf(`${name}/idle`) };

// Native seconds per job (no valgrind): how much work a production interval holds.
const native = [];
for (let i = 0; i < opts.nativeRounds; i++) {
  const cpu = (jobs) => {
    const r = spawnSync(process.execPath, [...V8_FLAGS, WORKER, JSON.stringify({ variant: 'none', jobs })], { encoding: 'utf8', cwd: ROOT });
    return JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('RESULT ')).slice(7)).cpuUs;
  };
  native.push((cpu(opts.nativeJobs) - cpu(opts.nativeJobs / 10)) / (opts.nativeJobs * 0.9) / 1e6);
}
// The fastest round is the least disturbed by other tenants.
const nativeSecPerJob = Math.min(...native);
const noneSteady = runs.none.instructions;
const instructionsPerNativeSec = noneSteady / steadyJobs / nativeSecPerJob;
const profilesPerSteadyAtProduction = (steadyJobs * nativeSecPerJob) / opts.productionIntervalS;
const nativeMsPerValgrindInterval = (opts.tickIntervalMs / 1000) * (runs.none.long.result.jobs - runs.none.short.result.jobs) * nativeSecPerJob * 1000 / (runs.none.long.wallS - runs.none.short.wallS);

const summary = {};
for (const name of ['gc-observer', 'gc-sentinel']) {
  const r = runs[name];
  if (!r) continue;
  summary[name] = { idleRatio: r.idle.instructions / noneSteady, majorGcs: r.idle.long.result.agent?.majorGcs };
}
for (const name of ['default', 'precise', 'pyroscope']) {
  const r = runs[name];
  if (!r) continue;
  const perProfile = r.ticking.profiles > 0 ? (r.ticking.instructions - r.idle.instructions) / r.ticking.profiles : NaN;
  summary[name] = {
    idleRatio: r.idle.instructions / noneSteady,
    tickingRatio: r.ticking.instructions / noneSteady,
    perProfileInstructions: perProfile,
    perProfileNativeMs: (perProfile / instructionsPerNativeSec) * 1000,
    productionRatio: (r.idle.instructions + Math.max(0, perProfile) * profilesPerSteadyAtProduction) / noneSteady,
    startupInstructions: r.idle.short.instructions - runs.none.short.instructions,
    startupNativeMs: ((r.idle.short.instructions - runs.none.short.instructions) / instructionsPerNativeSec) * 1000,
    agent: r.ticking.long.result.agent,
  };
}

let switchCost;
if (switching) {
  const s = done.get('switch');
  const J = s.result.preciseAtJob;
  if (J !== null) {
    const slope = (x) => x.idle.instructions / steadyJobs;
    // Precise from the start with no profile taken, less what precise mode
    // cost over the J jobs run in the default mode first, plus the profiles
    // this run took (their count depends on the wall time, not the work).
    const perProfile = (summary.default.perProfileInstructions + summary.precise.perProfileInstructions) / 2;
    const expected = runs.precise.idle.short.instructions - J * (slope(runs.precise) - slope(runs.default)) + s.requests * perProfile;
    const extra = s.instructions - expected;
    switchCost = {
      atJob: J,
      instructions: extra,
      nativeMs: (extra / instructionsPerNativeSec) * 1000,
      switchPauseUs: s.result.agent?.preciseSwitchTimeUs,
      underValgrind: true,
    };
  }
}
const noneAgain = done.get('none-again');
const noise = noneAgain.instructions / runs.none.long.instructions - 1;

const pct = (x) => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(2)} %`;
const settings = { ...opts, steadyJobs, nativeSecPerJobUs: +(nativeSecPerJob * 1e6).toFixed(2), instructionsPerNativeSec: Math.round(instructionsPerNativeSec), loadavgStart: loadStart.join(' '), loadavgEnd: loadavg().join(' ') };
const rows = Object.entries(summary).map(([name, s]) =>
  s.productionRatio === undefined
    ? [`${name} (no profiler; ${s.majorGcs ?? '?'} major GCs noticed in the long run)`, '-', pct(s.idleRatio), '-', '-', '-']
    : [name, pct(s.productionRatio), pct(s.idleRatio), pct(s.tickingRatio), `${fmt(s.perProfileInstructions / 1e6)} M (${fmt(s.perProfileNativeMs, 2)} ms)`, `${fmt(s.startupNativeMs, 0)} ms`],
);
const targets = [];
if (summary.default) targets.push({ name: `default mode at a ${opts.productionIntervalS} s interval <= 1.01 of no agent (instructions)`, measured: (summary.default.productionRatio).toFixed(4), met: summary.default.productionRatio <= 1.01 });
if (summary.precise) targets.push({ name: 'precise mode: cost printed', measured: (summary.precise.productionRatio).toFixed(4), met: true });
if (summary.pyroscope && summary.default) targets.push({ name: 'default mode no costlier than @pyroscope/nodejs heap profiling', measured: `${summary.default.productionRatio.toFixed(4)} vs ${summary.pyroscope.productionRatio.toFixed(4)}`, met: summary.default.productionRatio <= summary.pyroscope.productionRatio + 0.002 });

const md = [
  header(opts.result === 'agent-cpu' ? '7. Agent CPU cost in instructions (callgrind)' : `7. Agent CPU cost in instructions (callgrind): ${opts.variants}`, settings),
  `Instructions of ${fmt(steadyJobs)} steady-state jobs of bench/workers/cpu-worker.js under \`valgrind --tool=callgrind --smc-check=all-non-file\` on \`node ${V8_FLAGS.join(' ')}\` (a ${opts.shortJobs}-job run subtracted from a ${opts.longJobs}-job run). Noise floor: the ${opts.longJobs}-job run without a profiler, repeated at the end, differed by ${(noise * 100).toFixed(2)} % of its instructions (${((noise * runs.none.long.instructions / noneSteady) * 100).toFixed(2)} % of the steady state). No profiler: ${fmt(noneSteady / steadyJobs)} instructions a job; natively ${(nativeSecPerJob * 1e6).toFixed(1)} µs of CPU a job, so ${fmt(instructionsPerNativeSec / 1e9, 2)} G instructions per native second. Under valgrind the ${opts.tickIntervalMs} ms interval came once per ${fmt(nativeMsPerValgrindInterval, 0)} ms of native work, so the ticking runs exaggerate what each profile costs; the production column composes the idle cost with the measured cost of one profile at one profile per ${opts.productionIntervalS} s of native work.`,
  '',
  targetsTable(targets),
  '',
  table(['variant', `at ${opts.productionIntervalS} s (production)`, 'idle (no profile in the run)', `ticking (${opts.tickIntervalMs} ms under valgrind)`, 'one profile', 'start-up CPU'], rows),
  '',
  switchCost
    ? `Switching a warm worker into precise mode (inlining off, every function deoptimized, then re-optimized): ${fmt(switchCost.instructions / 1e6)} M instructions, about ${fmt(switchCost.nativeMs, 0)} ms of native CPU, once per precise period (the switch happened at job ${switchCost.atJob}; the agent timed its pause at ${fmt((switchCost.switchPauseUs ?? NaN) / 1000, 1)} ms under valgrind).`
    : 'Switch cost: not measured in this run.',
  '',
  'idle = the profiler running with an interval longer than the run (sampler, major-GC notice, de-inlining, ...); ticking = one profile every 2 s of valgrind time; one profile = (ticking - idle) / profiles taken, in instructions and native milliseconds; start-up = the short run minus no profiler, in native milliseconds.',
].join('\n');
writeResult(opts.result, { settings, data: { runs, summary, switchCost, native, noneAgain, noise }, markdown: md, targets });
