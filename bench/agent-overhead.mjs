// Part 1: what the agent costs a realistic worker, against no agent, the
// Node SDK people pick today (@pyroscope/nodejs, heap profiling) and the
// do-it-yourself node:inspector sampler, all polling at the same interval.
//
// Every variant runs the same worker (bench/workers/job-worker.js) in its own
// process; runs are interleaved (none, heapwatch, pyroscope, inspector, none,
// ...) so drift of this shared machine hits every variant alike. Ratios are
// paired by round (variant / none of the same round), then the median taken.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { header, machine, median, parseArgs, table, targetsTable, writeResult, fmt } from './lib/report.mjs';
import { startCollectorProcess, tempDir } from './lib/collector.mjs';
import { DEFAULT_AGENT_DIR, loadavg, runWorker, startPyroscopeSink } from './lib/worker-run.mjs';

const opts = parseArgs({
  workingSetsMb: '50,1024',
  variants: 'none,heapwatch,pyroscope,inspector,heapwatch-precise',
  intervalMs: 2000,
  samplingIntervalBytes: 524288,
  warmupS: 4,
  measureS: 12,
  rounds: 3,
  roundsLargeHeap: 2,
  agentDir: DEFAULT_AGENT_DIR,
  quick: false,
});
if (opts.quick) Object.assign(opts, { workingSetsMb: '50', warmupS: 2, measureS: 6, rounds: 1, roundsLargeHeap: 1 });
const sets = String(opts.workingSetsMb).split(',').map(Number);
const variants = opts.variants.split(',');

const collector = await startCollectorProcess({ dataDir: tempDir('overhead') });
const sink = await startPyroscopeSink();
const runs = [];
const loadStart = loadavg();
try {
  for (const ws of sets) {
    const rounds = ws >= 512 ? opts.roundsLargeHeap : opts.rounds;
    for (let r = 0; r < rounds; r++) {
      for (const variant of variants) {
        const load = loadavg();
        const t0 = Date.now();
        const res = await runWorker({
          variant,
          agentDir: opts.agentDir,
          collector: collector.grpcAddress,
          service: `bench-overhead-${ws}mb`,
          sinkUrl: sink.url,
          maxOldSpaceMb: Math.max(2048, ws * 4),
          workingSetMb: ws,
          intervalMs: opts.intervalMs,
          samplingIntervalBytes: opts.samplingIntervalBytes,
          warmupS: opts.warmupS,
          measureS: opts.measureS,
        });
        delete res.stderr;
        runs.push({ ...res, round: r, loadavg: load, wallS: (Date.now() - t0) / 1000 });
        console.error(
          `${ws} MB r${r} ${variant.padEnd(9)} ${fmt(res.jobsPerSec, 0)} jobs/s p99 ${fmt(res.latencyMs.p99, 2)} ms polls ${res.polls} ` +
            `poll stall max ${fmt(Math.max(0, ...res.pollStallMs), 1)} ms rss ${fmt(res.rssMb)} MB heap ${fmt(res.heapUsedMb)} MB load ${load[0]}`,
        );
      }
    }
  }
} finally {
  await collector.stop();
  await sink.close();
  fs.rmSync(collector.dataDir, { recursive: true, force: true });
}

// ---- aggregate
const maxOf = (a) => (a.length ? Math.max(...a) : NaN);
const summary = [];
for (const ws of sets) {
  const base = runs.filter((x) => x.workingSetMb === ws && x.variant === 'none');
  const baseOf = (round) => base.find((b) => b.round === round);
  for (const variant of variants) {
    const rs = runs.filter((x) => x.workingSetMb === ws && x.variant === variant);
    const paired = (f) => median(rs.map((x) => f(x, baseOf(x.round))).filter((v) => Number.isFinite(v)));
    const polls = rs.flatMap((x) => x.pollStallMs);
    summary.push({
      workingSetMb: ws,
      variant,
      rounds: rs.length,
      jobsPerSec: median(rs.map((x) => x.jobsPerSec)),
      // Jobs per CPU-second of the worker (all its threads): on a shared
      // machine a variant can lose wall-clock throughput to other tenants;
      // this ratio only moves with what the worker itself spends.
      jobsPerCpuS: median(rs.map((x) => x.jobs / (x.cpuMs / 1000))),
      efficiencyRatio: paired((x, b) => x.jobs / x.cpuMs / (b.jobs / b.cpuMs)),
      throughputRatio: paired((x, b) => x.jobsPerSec / b.jobsPerSec),
      p99Ms: median(rs.map((x) => x.latencyMs.p99)),
      polls: rs.reduce((s, x) => s + x.polls, 0),
      pollStallMedianMs: polls.length ? median(polls) : NaN,
      pollStallMaxMs: maxOf(polls),
      pollBlockMedianMs: median(rs.flatMap((x) => x.pollBlockMs)),
      pollBlockMaxMs: maxOf(rs.flatMap((x) => x.pollBlockMs)),
      pollReadMedianMs: median(rs.flatMap((x) => x.pollReadMs)),
      pollReadMaxMs: maxOf(rs.flatMap((x) => x.pollReadMs)),
      windowStallMedianMs: median(rs.flatMap((x) => x.windowStallMs)),
      windowStallMaxMs: maxOf(rs.flatMap((x) => x.windowStallMs)),
      cpuMsPerSec: median(rs.map((x) => x.cpuMsPerSec)),
      cpuUsPerJob: median(rs.map((x) => (x.cpuMs * 1000) / x.jobs)),
      cpuRatio: paired((x, b) => x.cpuMsPerSec / b.cpuMsPerSec),
      rssMb: median(rs.map((x) => x.rssMb)),
      rssOverheadMb: paired((x, b) => x.rssMb - b.rssMb),
      heapOverheadMb: paired((x, b) => x.heapUsedMb - b.heapUsedMb),
    });
  }
}

const rows = summary.map((s) => [
  `${s.workingSetMb} MB`,
  s.variant,
  fmt(s.jobsPerSec, 0),
  s.variant === 'none' ? '1' : fmt(s.throughputRatio, 3),
  s.variant === 'none' ? '1' : fmt(s.efficiencyRatio, 3),
  fmt(s.p99Ms, 2),
  s.polls,
  s.polls ? `${fmt(s.pollStallMedianMs)} / ${fmt(s.pollStallMaxMs)}` : '-',
  s.polls ? `${fmt(s.pollBlockMedianMs, 2)} / ${fmt(s.pollBlockMaxMs, 2)}` : '-',
  `${fmt(s.windowStallMedianMs)} / ${fmt(s.windowStallMaxMs)}`,
  `${fmt(s.cpuUsPerJob, 2)} (${s.variant === 'none' ? '1' : fmt(1 / s.efficiencyRatio, 3)})`,
  fmt(s.rssMb),
  s.variant === 'none' ? '-' : fmt(s.rssOverheadMb),
  s.variant === 'none' ? '-' : fmt(s.heapOverheadMb),
]);
const mainTable = table(
  ['heap', 'variant', 'jobs/s', 'vs none', 'jobs per CPU-s vs none', 'p99 job ms', 'polls', 'stall at poll ms, med / max', 'poll blocks loop ms, med / max', 'worst stall per interval ms, med / max', 'CPU µs per job (vs none)', 'RSS MB', 'RSS +MB', 'heap +MB'],
  rows,
);

const get = (ws, v) => summary.find((s) => s.workingSetMb === ws && s.variant === v);
const targets = [];
for (const ws of sets) {
  const hw = get(ws, 'heapwatch');
  const py = get(ws, 'pyroscope');
  if (!hw) continue;
  targets.push({ name: `${ws} MB: throughput >= 0.99 of no agent (jobs/s; jobs per CPU-s)`, measured: `${fmt(hw.throughputRatio, 3)}; ${fmt(hw.efficiencyRatio, 3)}`, met: hw.throughputRatio >= 0.99 && hw.efficiencyRatio >= 0.99 });
  if (ws >= 1000) {
    const base = get(ws, 'none');
    targets.push({
      name: `${ws} MB: no poll stall over 10 ms (the loop held by the poll)`,
      measured: `max ${fmt(hw.pollBlockMaxMs, 2)} ms over ${hw.polls} polls (event-loop delay around polls max ${fmt(hw.pollStallMaxMs)} ms; no agent's worst per interval max ${fmt(base?.windowStallMaxMs)} ms)`,
      met: hw.pollBlockMaxMs <= 10,
    });
  }
  targets.push({ name: `${ws} MB: RSS overhead <= 15 MB`, measured: `${fmt(hw.rssOverheadMb)} MB`, met: hw.rssOverheadMb <= 15 });
  if (py) {
    const cmp = [
      ['jobs/s ratio', hw.throughputRatio, py.throughputRatio, 1, 3],
      ['p99 job ms', hw.p99Ms, py.p99Ms, -1, 2],
      ['max loop held by a poll ms', hw.pollBlockMaxMs, py.pollBlockMaxMs, -1, 2],
      ['max stall at poll ms', hw.pollStallMaxMs, py.pollStallMaxMs, -1, 1],
      ['CPU µs per job', hw.cpuUsPerJob, py.cpuUsPerJob, -1, 2],
      ['RSS +MB', hw.rssOverheadMb, py.rssOverheadMb, -1, 1],
      ['heap +MB', hw.heapOverheadMb, py.heapOverheadMb, -1, 1],
    ];
    for (const [name, a, b, dir, d] of cmp) {
      targets.push({ name: `${ws} MB: ${name} at least as good as @pyroscope/nodejs`, measured: `${fmt(a, d)} vs ${fmt(b, d)}`, met: dir > 0 ? a >= b : a <= b });
    }
  }
}

const settings = { ...opts, workingSetsMb: sets.join(','), loadavgStart: loadStart.join(' '), loadavgEnd: loadavg().join(' '), pyroscopeSink: sink.stats, agentCommit: readAgentCommit(opts.agentDir) };
function readAgentCommit(dir) {
  try {
    return fs.readFileSync(`${dir}/../COMMIT`, 'utf8').trim();
  } catch {
    return machine().commit;
  }
}
const markdown = [
  header('Agent overhead on a job-processing worker (part 1)', {
    interval: `${opts.intervalMs} ms (all variants)`,
    samplingInterval: `${opts.samplingIntervalBytes} B`,
    rounds: `${opts.rounds} (${opts.roundsLargeHeap} at >= 512 MB), interleaved`,
    measure: `${opts.measureS} s after ${opts.warmupS} s warm-up`,
    agent: `${opts.agentDir} @ ${settings.agentCommit}`,
    loadavg: `${settings.loadavgStart} -> ${settings.loadavgEnd}`,
  }),
  'Medians over rounds; "vs none", "RSS +MB", "heap +MB" and the CPU ratio are paired with the no-agent run of the same round. ' +
    '"stall at poll": the longest event-loop delay (monitorEventLoopDelay, 1 ms resolution, 100 ms slices) from the poll to 300 ms after it; ' +
    '"poll blocks loop": from the start of the sampler read (heap.profile, or the inspector\'s getSamplingProfile) to the next turn of the event loop, i.e. the read plus whatever the profiler does synchronously after it (encode, hand-off); ' +
    '"jobs per CPU-s": jobs over the CPU time of the worker, the throughput figure that other tenants of this shared machine cannot move; ' +
    'heapwatch-precise = the agent in precise mode for the whole run (HEAPWATCH_PRECISE=always: inlining off, GC assist), what a worker pays while a leak is suspected. ' +
    '"worst stall per interval": the longest delay in each interval-long window, polls or not (for "none" it is the workload\'s own GC). ' +
    'inspector = HeapProfiler.getSamplingProfile every interval, nothing encoded or sent (the floor of a DIY approach). ' +
    'CPU = process.cpuUsage() over the measured window (all threads of the worker).',
  '',
  mainTable,
  '',
  `Load average (1 min) when each run started, in run order: ${runs.map((r) => `${r.variant} ${fmt(r.loadavg[0])}`).join(', ')}. The machine is shared (2 cores): other tenants take CPU from every variant alike only on average, which is why the runs are interleaved and "jobs per CPU-s" is given beside jobs/s.`,
  '',
  targetsTable(targets),
].join('\n');
writeResult('agent-overhead', { settings, data: { summary, runs }, markdown, targets });
