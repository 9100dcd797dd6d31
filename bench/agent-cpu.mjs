// Part 7: what the agent costs a CPU-bound worker, in instructions.
//
// Wall-clock pairs on a shared 2-core machine spread too widely to see a few
// per cent, so this part counts instructions: valgrind's callgrind on
// `node --predictable --predictable-gc-schedule` (V8 on one thread, and a
// fixed heap-growing schedule: without it V8 sizes the old generation from
// measured GC and mutator speeds, so a run slowed by other tenants collects
// differently), the worker bench/workers/cpu-worker.js (JSON parse and
// serialise, small classes, a 200,000-object working set).
//
// The measured window. Each run does --warm-jobs jobs, then a window of
// --window-jobs jobs that starts and ends with a full GC, and callgrind
// writes the window as a part of its own (the worker calls os.getPriority()
// at both edges; callgrind runs with --dump-before=uv_os_getpriority).
// Start-up and warm-up are outside it. Why the GCs: a major GC cycle of this
// worker spans ~36,000 jobs and its incremental marking costs ~13 % of the
// jobs it overlaps, so a window that caught a different part of a cycle in
// two variants differed by several per cent with no profiler cost at all
// (an earlier version of this part subtracted a 10,000-job run from a
// 40,000-job one: the V8 sampler alone came out at +1.9 % to +3.4 %, of which
// the sampler's own code, counted by function, was 0.05 %; the rest was
// marking that started earlier because loading the profiler's modules had
// grown the heap). Every window here starts right after a full GC, ends with
// one, and the table shows the major GCs, scavenges and heap samples inside
// it: two windows compare cleanly when they ran the same GCs.
//
// Per-tick and continuous costs are measured apart, then composed at the
// production interval. Under valgrind a job runs ~30-70x slower, so a 2 s
// interval there is one profile per ~50 ms of native work, a thousand times
// more often than the field's 60 s. So each profiler runs twice: with an
// interval longer than the run ("idle": only what it costs between
// profiles: the sampler, the GC sentinel, de-inlining, ...) and with a
// 2 s interval ("ticking"); (ticking - idle) / profiles taken in the window
// is the cost of one profile. The ratio at the production interval is
// (idle + one profile x profiles per 60 s of native work) / no profiler,
// with native seconds per job measured outside valgrind. The agent also
// reads (without sending) a post-GC capture at most every quarter interval
// (agent/src/agent.ts, POST_GC_SPACING_FRACTION); the production figure
// counts 5 profiles an interval, an upper bound for any GC rate.
//
// Variants: none (twice: the noise floor); sampler (the V8 sampling heap
// profiler alone, through the agent's @datadog/pprof, never read: a
// diagnostic); heapwatch in its default mode; heapwatch in precise mode
// (HEAPWATCH_PRECISE=always: inlining off from start, GC assist on);
// @pyroscope/nodejs with heap profiling (512 KiB, as the agent); switch-on
// and switch-off (the default agent, and the agent's own inlining switch,
// agent/dist/inlining.js, run on warm code at the start of the window: on =
// inlining off, as precise mode starts; off = the whole warm-up without
// inlining, then back on, as precise mode ends), for the one-time cost of
// the switches against precise and default windows. gc-observer and
// gc-sentinel (diagnostics, --variants): no profiler, only a way of
// noticing major GCs. heapwatch sends to a gRPC sink
// (bench/lib/grpc-sink.mjs) that answers as a collector would; pyroscope to
// an HTTP sink.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fmt, header, parseArgs, table, targetsTable, writeResult } from './lib/report.mjs';
import { startGrpcSink } from './lib/grpc-sink.mjs';
import { readCallgrind } from './lib/callgrind.mjs';
import { DEFAULT_AGENT_DIR, loadavg, startPyroscopeSink } from './lib/worker-run.mjs';
import { BENCH_DIR, ROOT } from './lib/report.mjs';

const opts = parseArgs({
  warmJobs: 25000,
  preGcAt: 12000,
  windowJobs: 50000,
  tickIntervalMs: 2000,
  productionIntervalS: 60,
  nativeRounds: 5,
  nativeJobs: 400000,
  variants: 'none,sampler,default,precise,pyroscope,switch-on,switch-off',
  result: 'agent-cpu',
  parallel: 1,
  agentDir: DEFAULT_AGENT_DIR,
  // Keep each run's window file here (<run>.window.out) for callgrind_annotate.
  keepDir: '',
  // The V8 flags of every run, under valgrind and natively (see the top of this file).
  v8Flags: '--predictable --predictable-gc-schedule --no-incremental-marking --no-memory-reducer',
  quick: false,
});
if (opts.quick) Object.assign(opts, { warmJobs: 12000, preGcAt: 6000, windowJobs: 20000, nativeRounds: 2, nativeJobs: 100000 });
const WORKER = path.join(BENCH_DIR, 'workers/cpu-worker.js');
const IDLE_INTERVAL_MS = 3_600_000;
const V8_FLAGS = opts.v8Flags.split(' ').filter(Boolean);
/** Captures an interval can hold (1 / POST_GC_SPACING_FRACTION + 1), for the production bound. */
const CAPTURES_PER_INTERVAL = 5;
const loadStart = loadavg();

if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('agent-cpu: valgrind is not installed (Debian: apt-get install valgrind)');
  process.exit(1);
}

const COUNTED = {
  majorGcs: /^v8::internal::MarkCompactCollector::CollectGarbage\(\)/,
  scavenges: /^v8::internal::ScavengerCollector::CollectGarbage\(\)/,
  heapSamples: /^v8::internal::SamplingHeapProfiler::SampleObject\(/,
  markingSteps: /^v8::internal::IncrementalMarking::Step\(/,
  collections: /^v8::internal::Heap::CollectGarbage\(/,
  optimizations: /^v8::internal::compiler::PipelineCompilationJob::ExecuteJobImpl\(/,
  deoptimizations: /^v8::internal::Deoptimizer::Deoptimizer\(/,
};

/**
 * One worker run under callgrind. Resolves with the window's instructions,
 * the counts of COUNTED inside it, the worker's RESULT and the profiles the
 * sink received. Runs may go in parallel (--parallel): instruction counts do
 * not depend on it, only the wall time does, and with it how many profiles
 * a ticking run takes, which the per-profile figure divides by.
 */
let runSeq = 0;
async function callgrind(key, { variant, intervalMs, env = {}, switchInlining }) {
  const out = path.join(os.tmpdir(), `heapwatch-cg-${process.pid}-${++runSeq}.out`);
  const sink = variant === 'heapwatch' ? await startGrpcSink() : undefined;
  const pyroSink = variant === 'pyroscope' ? await startPyroscopeSink() : undefined;
  const nodeArgs = [...V8_FLAGS, '--expose-gc'];
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
  const cfg = { variant, intervalMs, sinkUrl: pyroSink?.url, agentDir: opts.agentDir, warmJobs: opts.warmJobs, windowJobs: opts.windowJobs, preGcAt: opts.preGcAt, switchInlining };
  const args = ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, '--dump-before=uv_os_getpriority', process.execPath, ...nodeArgs, WORKER, JSON.stringify(cfg)];
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
  // Part 1 is start-up and warm-up, part 2 the window, the last file the exit.
  let win;
  try {
    win = readCallgrind(`${out}.2`, COUNTED);
  } catch {}
  if (opts.keepDir && fs.existsSync(`${out}.2`)) {
    fs.mkdirSync(opts.keepDir, { recursive: true });
    fs.copyFileSync(`${out}.2`, path.join(opts.keepDir, `${key.replace('/', '-')}.window.out`));
  }
  for (const f of [out, `${out}.1`, `${out}.2`]) fs.rmSync(f, { force: true });
  if (code !== 0 || !line || !Number.isFinite(win?.total)) throw new Error(`callgrind run ${key} failed (exit ${code}):\n${stderr}`);
  const result = JSON.parse(line.slice('RESULT '.length));
  const counts = Object.fromEntries(Object.entries(win.byKey).map(([k, v]) => [k, v.calls]));
  const gcInstructions = win.byKey.collections.inclusive + win.byKey.markingSteps.inclusive;
  const delta = (f) => (result.window?.end?.agent?.[f] ?? 0) - (result.window?.start?.agent?.[f] ?? 0);
  const r = {
    instructions: win.total,
    counts,
    gcInstructions,
    samplerInstructions: win.byKey.heapSamples.inclusive,
    // Profiles sent and post-GC captures taken inside the window (heapwatch only).
    windowProfiles: delta('profilesSent'),
    windowCaptures: delta('postGcCaptures'),
    windowForcedGcs: delta('forcedGcs'),
    result,
    requests: (sink ?? pyroSink)?.stats.requests ?? 0,
    wallS: (Date.now() - t0) / 1000,
  };
  console.error(`  ${key}: ${fmt(win.total)} instructions in the window (${JSON.stringify(counts)}), ${r.windowProfiles} profiles, ${r.requests} requests, ${r.wallS.toFixed(0)} s`);
  return r;
}

const heapwatch = (env = {}) => ({ variant: 'heapwatch', env });
const PLAN = {
  none: { variant: 'none', intervalMs: IDLE_INTERVAL_MS },
  'none-again': { variant: 'none', intervalMs: IDLE_INTERVAL_MS },
  sampler: { variant: 'sampler', intervalMs: IDLE_INTERVAL_MS },
  'default/idle': { ...heapwatch(), intervalMs: IDLE_INTERVAL_MS },
  'default/ticking': { ...heapwatch(), intervalMs: opts.tickIntervalMs },
  'precise/idle': { ...heapwatch({ HEAPWATCH_PRECISE: 'always' }), intervalMs: IDLE_INTERVAL_MS },
  'precise/ticking': { ...heapwatch({ HEAPWATCH_PRECISE: 'always' }), intervalMs: opts.tickIntervalMs },
  'pyroscope/idle': { variant: 'pyroscope', intervalMs: IDLE_INTERVAL_MS },
  'switch-on': { ...heapwatch(), intervalMs: IDLE_INTERVAL_MS, switchInlining: 'on' },
  'switch-off': { ...heapwatch(), intervalMs: IDLE_INTERVAL_MS, switchInlining: 'off' },
  'gc-observer': { variant: 'gc-observer', intervalMs: IDLE_INTERVAL_MS },
  'gc-sentinel': { variant: 'gc-sentinel', intervalMs: IDLE_INTERVAL_MS },
};
const wanted = new Set(opts.variants.split(','));
// A variant name selects its idle and ticking runs; a run's own key (default/idle) selects that run alone.
const keys = ['none', ...Object.keys(PLAN).filter((k) => k !== 'none' && k !== 'none-again' && (wanted.has(k) || wanted.has(k.split('/')[0]))), 'none-again'];
if (wanted.has('switch-on')) keys.splice(-1, 0, 'precise/idle');
if (wanted.has('switch-off')) keys.splice(-1, 0, 'default/idle');
const plan = [...new Set(keys)];
console.error(`agent-cpu: a window of ${opts.windowJobs} jobs after ${opts.warmJobs}, ${plan.length} runs under callgrind, ${opts.parallel} at a time`);

const done = new Map();
const queue = [...plan];
await Promise.all(
  Array.from({ length: Math.max(1, opts.parallel) }, async () => {
    for (let key = queue.shift(); key; key = queue.shift()) done.set(key, await callgrind(key, PLAN[key]));
  }),
);

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
const none = done.get('none');
const noneWindow = none.instructions;
const instructionsPerNativeSec = noneWindow / opts.windowJobs / nativeSecPerJob;
const profilesPerWindowAtProduction = (opts.windowJobs * nativeSecPerJob) / opts.productionIntervalS;
const noise = done.get('none-again').instructions / noneWindow - 1;

const summary = {};
for (const [name, key] of [['sampler', 'sampler'], ['gc-observer', 'gc-observer'], ['gc-sentinel', 'gc-sentinel'], ['pyroscope', 'pyroscope/idle']]) {
  const r = done.get(key);
  if (r) summary[name] = { idleRatio: r.instructions / noneWindow, idle: r };
}
for (const name of ['default', 'precise']) {
  const idle = done.get(`${name}/idle`);
  const ticking = done.get(`${name}/ticking`);
  if (!idle || !ticking) continue;
  const perProfile = ticking.windowProfiles > 0 ? (ticking.instructions - idle.instructions) / ticking.windowProfiles : NaN;
  summary[name] = {
    idle,
    ticking,
    idleRatio: idle.instructions / noneWindow,
    tickingRatio: ticking.instructions / noneWindow,
    perProfileInstructions: perProfile,
    perProfileNativeMs: (perProfile / instructionsPerNativeSec) * 1000,
    // One profile sent an interval, and up to CAPTURES_PER_INTERVAL - 1 more
    // read and encoded after major GCs: counted as whole profiles, an upper bound.
    productionRatio: (idle.instructions + Math.max(0, perProfile) * CAPTURES_PER_INTERVAL * profilesPerWindowAtProduction) / noneWindow,
    productionRatioOneProfile: (idle.instructions + Math.max(0, perProfile) * profilesPerWindowAtProduction) / noneWindow,
  };
}
const switches = {};
for (const [name, key, against] of [['on', 'switch-on', 'precise/idle'], ['off', 'switch-off', 'default/idle']]) {
  const r = done.get(key);
  const base = done.get(against);
  if (!r || !base) continue;
  const extra = r.instructions - base.instructions;
  switches[name] = { against, instructions: extra, nativeMs: (extra / instructionsPerNativeSec) * 1000, switchUsUnderValgrind: r.result.window?.switchUs, run: r, base };
}

const pct = (x) => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(2)} %`;
const m = (x) => `${fmt(x / 1e6)} M`;
const settings = { ...opts, nativeSecPerJobUs: +(nativeSecPerJob * 1e6).toFixed(2), instructionsPerNativeSec: Math.round(instructionsPerNativeSec), loadavgStart: loadStart.join(' '), loadavgEnd: loadavg().join(' ') };
const windowRow = (label, r, ratio) => [
  label,
  fmt(r.instructions),
  ratio === undefined ? '-' : pct(ratio),
  `${r.counts.majorGcs} / ${r.counts.scavenges}`,
  m(r.gcInstructions),
  r.counts.heapSamples ? `${r.counts.heapSamples} (${m(r.samplerInstructions)})` : '-',
  `${r.counts.optimizations} / ${r.counts.deoptimizations}`,
  r.result.variant === 'heapwatch' ? `${r.windowProfiles} / ${r.windowCaptures}` : '-',
];
const windowRows = plan.map((k) => windowRow(k, done.get(k), k === 'none' ? undefined : done.get(k).instructions / noneWindow));
const rows = ['default', 'precise'].filter((n) => summary[n]).map((name) => {
  const s = summary[name];
  return [name, `${pct(s.productionRatio)} (${pct(s.productionRatioOneProfile)} with one profile)`, pct(s.idleRatio), pct(s.tickingRatio), `${m(s.perProfileInstructions)} (${fmt(s.perProfileNativeMs, 2)} ms)`];
});
for (const name of ['sampler', 'pyroscope', 'gc-observer', 'gc-sentinel']) if (summary[name]) rows.push([name, '-', pct(summary[name].idleRatio), '-', '-']);

const targets = [];
if (summary.default) targets.push({ name: `default mode at a ${opts.productionIntervalS} s interval <= 1.01 of no agent (instructions)`, measured: `${summary.default.productionRatio.toFixed(4)} (between profiles ${summary.default.idleRatio.toFixed(4)}; noise floor ${(noise * 100).toFixed(3)} %)`, met: summary.default.productionRatio <= 1.01 });
if (summary.precise) targets.push({ name: 'precise mode: cost printed', measured: `${summary.precise.productionRatio.toFixed(4)} at ${opts.productionIntervalS} s (between profiles ${summary.precise.idleRatio.toFixed(4)})`, met: true });
if (switches.on || switches.off) targets.push({ name: 'precise mode switch: one-time cost printed', measured: ['on', 'off'].filter((n) => switches[n]).map((n) => `${n} ${m(switches[n].instructions)} instructions (~${fmt(switches[n].nativeMs, 0)} ms native)`).join('; '), met: true });
if (summary.pyroscope && summary.default) targets.push({ name: 'default mode no costlier than @pyroscope/nodejs heap profiling', measured: `${summary.default.productionRatio.toFixed(4)} vs ${summary.pyroscope.idleRatio.toFixed(4)} (between profiles)`, met: summary.default.productionRatio <= summary.pyroscope.idleRatio + 0.002 });

const md = [
  header(opts.result === 'agent-cpu' ? '7. Agent CPU cost in instructions (callgrind)' : `7. Agent CPU cost in instructions (callgrind): ${opts.variants}`, settings),
  `Instructions of a window of ${fmt(opts.windowJobs)} jobs of bench/workers/cpu-worker.js after ${fmt(opts.warmJobs)} jobs of warm-up, the window starting right after a full GC and ending with one, under \`valgrind --tool=callgrind --smc-check=all-non-file\` on \`node ${V8_FLAGS.join(' ')} --expose-gc\`. Noise floor: the no-agent run, repeated, differed by ${(noise * 100).toFixed(3)} %. No profiler: ${fmt(noneWindow / opts.windowJobs)} instructions a job; natively ${(nativeSecPerJob * 1e6).toFixed(1)} µs of CPU a job, so ${fmt(instructionsPerNativeSec / 1e9, 2)} G instructions per native second and one ${opts.productionIntervalS} s interval per ${fmt(opts.productionIntervalS / nativeSecPerJob)} jobs (${fmt(profilesPerWindowAtProduction, 4)} intervals per window).`,
  '',
  targetsTable(targets),
  '',
  table(['variant', `at ${opts.productionIntervalS} s (production; ${CAPTURES_PER_INTERVAL} profiles an interval, the bound)`, 'between profiles (idle)', `ticking (${opts.tickIntervalMs} ms under valgrind)`, 'one profile (read, encode, gzip, send)'], rows),
  '',
  'Every window (a variant is comparable with "none" when it ran the same major GCs):',
  '',
  table(['run', 'window instructions', 'vs none', 'major GCs / scavenges', 'GC instructions (collections + marking steps)', 'heap samples (their instructions)', 'optimized / deoptimized', 'profiles sent / post-GC captures'], windowRows),
  '',
  Object.keys(switches).length
    ? ['on', 'off']
        .filter((n) => switches[n])
        .map((n) => `Switching ${n === 'on' ? 'into' : 'out of'} precise mode on a warm worker (${n === 'on' ? 'inlining off' : 'inlining back on'}, every function deoptimized, then re-optimized under the new setting), against the ${switches[n].against} window: ${m(switches[n].instructions)} instructions, about ${fmt(switches[n].nativeMs, 0)} ms of native CPU, once per switch (its main-thread pause, timed under valgrind: ${fmt((switches[n].switchUsUnderValgrind ?? NaN) / 1000, 0)} ms).`)
        .join(' ')
    : 'Switch cost: not measured in this run.',
  '',
  'idle = the profiler running with an interval longer than the run (sampler, major-GC notice, de-inlining, ...); ticking = one profile every 2 s of valgrind time; one profile = (ticking - idle) / profiles sent in the window, in instructions and native milliseconds.',
].join('\n');
writeResult(opts.result, { settings, data: { runs: Object.fromEntries(done), summary, switches, native, noise }, markdown: md, targets });
