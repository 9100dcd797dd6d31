// Part 2: the agent does not leak. One worker (bench/workers/job-worker.js,
// the part 1 workload) runs with the agent at a fast interval for a few
// minutes (--duration-s; 1800 for the half-hour run) against a real
// collector; the collector is stopped for the middle third of the run, then
// restarted on the same ports and data directory. The agent reaches the
// collector through a proxy (bench/lib/grpc-sink.mjs) that answers with a
// directive switching precise mode on and off every --precise-every
// profiles, so the run also goes in and out of precise mode (inlining off
// and back, deoptimizations, GC assist) many times.
//
// From inside the worker, every sampleEveryMs: RSS, heapUsed and the agent's
// stats() (queue length and bytes, sent, dropped). Checks:
//  1. while the collector is down the queue stays within its bounds
//     (maxQueueProfiles, maxQueueBytes) and overflow is counted as dropped;
//  2. once it is back the queue drains and memory returns to its level
//     before the outage;
//  3. no trend: Theil-Sen slope (95 % interval) of the live heap (heapUsed
//     right after a forced full GC every few seconds) over the
//     recovered phase, and over the run outside the outage;
//  4. the product's own detector (GET /api/v1/leaks?evaluate=true) on the
//     worker's service flags nothing: the agent's own allocations are in the
//     profiles it sends, so an agent leak would be a flagged site.
import * as fs from 'node:fs';
import { header, median, parseArgs, sleep, table, targetsTable, writeResult, fmt, mib } from './lib/report.mjs';
import { httpGet, startCollectorProcess, tempDir } from './lib/collector.mjs';
import { startGrpcSink } from './lib/grpc-sink.mjs';
import { DEFAULT_AGENT_DIR, loadavg, runWorker, theilSen } from './lib/worker-run.mjs';
import { diffSnapshots, summarizeSnapshot } from './lib/heap-snapshot.mjs';

const opts = parseArgs({
  durationS: 180,
  intervalMs: 250,
  outageStart: 1 / 3,
  outageEnd: 2 / 3,
  workingSetMb: 50,
  sampleEveryMs: 500,
  gcEveryS: 5,
  maxQueueProfiles: 32,
  maxQueueBytes: 16 << 20,
  agentDir: DEFAULT_AGENT_DIR,
  preciseEvery: 20,
  // The restart after the outage: each attempt may take this long (a
  // collector on a machine at load 30 took over 60 s to open its store),
  // and a failed one is killed and retried on the same ports and data.
  restartTimeoutS: 300,
  restartAttempts: 5,
  // Heap snapshots of the worker before the outage and near the end, diffed by constructor.
  snapshots: true,
  quick: false,
});
if (opts.quick) Object.assign(opts, { durationS: 60, gcEveryS: 3 });
const service = 'bench-agent-leak';
const loadStart = loadavg();

const dataDir = tempDir('leak');
let collector = await startCollectorProcess({ dataDir });
const { grpcPort, httpPort } = collector;
// Precise mode on for preciseEvery profiles, off for as many, and so on.
const proxy = await startGrpcSink({
  forwardTo: collector.grpcAddress,
  directive: (n) => {
    const on = Math.floor((n - 1) / opts.preciseEvery) % 2 === 1;
    return { precise: on, preciseForMs: on ? 3_600_000 : 0, reason: on ? 'bench: switched on' : 'bench: switched off' };
  },
});
const samples = [];
const live = [];
const events = [];
let measureStartMs;
let worker;
const outage = { startS: opts.durationS * opts.outageStart, endS: opts.durationS * opts.outageEnd };
// Before the outage (past warm-up) and near the end of the run, each once
// the queue is empty and in the middle of a default-mode stretch of the
// precise on/off cycle (the directive is off for profiles 1..P, on for
// P+1..2P, ...), so that both see the same optimization state.
// Each may wait up to maxWaitS for its gate: it is scheduled that much
// earlier, plus a precise cycle.
const snapshotLeadS = (9 * opts.preciseEvery * opts.intervalMs) / 1000;
const snapshotAtS = [Math.max(10, outage.startS - snapshotLeadS), Math.max(outage.endS + 10, opts.durationS - snapshotLeadS)];
const snapshotGate = { period: 2 * opts.preciseEvery, from: Math.floor(opts.preciseEvery / 4), to: Math.floor((3 * opts.preciseEvery) / 4), maxWaitS: 6 * opts.preciseEvery * opts.intervalMs / 1000 };
const snapshots = [];

const orchestrate = (async () => {
  while (measureStartMs === undefined) await sleep(50);
  const at = (s) => sleep(Math.max(0, measureStartMs + s * 1000 - Date.now()));
  await at(outage.startS);
  await collector.stop();
  events.push({ event: 'collector stopped', s: (Date.now() - measureStartMs) / 1000 });
  await at(outage.endS);
  collector = await restartCollector();
  events.push({ event: 'collector up again', s: (Date.now() - measureStartMs) / 1000 });
})();
// Never an unhandled rejection while the worker still runs: the failure is
// rethrown when the run is awaited.
orchestrate.catch(() => {});

/** The collector again, on the same ports and data directory; retried, each attempt bounded. */
async function restartCollector() {
  for (let attempt = 1; ; attempt++) {
    const t0 = Date.now();
    try {
      const c = await startCollectorProcess({ dataDir, grpcPort, httpPort, startTimeoutMs: opts.restartTimeoutS * 1000 });
      events.push({ event: `restart attempt ${attempt} took ${((Date.now() - t0) / 1000).toFixed(1)} s`, s: (Date.now() - measureStartMs) / 1000 });
      return c;
    } catch (e) {
      events.push({ event: `restart attempt ${attempt} failed after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${String(e).split('\n')[0]}`, s: (Date.now() - measureStartMs) / 1000 });
      console.error(`agent-leak: ${events.at(-1).event}`);
      if (attempt >= opts.restartAttempts) throw e;
      await sleep(5000);
    }
  }
}

// A no-agent control, same worker and settings, run alongside: whatever
// the workload and V8 themselves drift by is not the agent's.
const controlLive = [];
const controlSnapshots = [];
const controlDir = opts.snapshots ? tempDir('leak-control') : undefined;
let controlStart;
const control = runWorker({
  variant: 'none',
  workingSetMb: opts.workingSetMb,
  intervalMs: opts.intervalMs,
  warmupS: 5,
  measureS: opts.durationS,
  sampleEveryMs: 5000,
  printSamples: true,
  gcEveryMs: opts.gcEveryS * 1000,
  snapshotAtS,
  snapshotDir: controlDir,
  onLine: (kind, obj) => {
    if (kind === 'MEASURING') controlStart = obj.wallMs;
    else if (kind === 'SNAPSHOT') controlSnapshots.push(obj);
    else if (kind === 'LIVE' && controlStart !== undefined) controlLive.push({ ...obj, s: (obj.wallMs - controlStart) / 1000 });
  },
});
let result;
try {
  result = await runWorker({
    variant: 'heapwatch',
    agentDir: opts.agentDir,
    collector: proxy.address,
    service,
    env: {
      HEAPWATCH_MAX_QUEUE_PROFILES: String(opts.maxQueueProfiles),
      HEAPWATCH_MAX_QUEUE_BYTES: String(opts.maxQueueBytes),
      // The proxy decides when precise mode ends; no cool-down in between.
      HEAPWATCH_PRECISE_COOLDOWN_MS: '0',
    },
    workingSetMb: opts.workingSetMb,
    intervalMs: opts.intervalMs,
    warmupS: 5,
    measureS: opts.durationS,
    sampleEveryMs: opts.sampleEveryMs,
    printSamples: true,
    gcEveryMs: opts.gcEveryS * 1000,
    snapshotAtS: snapshotAtS,
    snapshotDir: opts.snapshots ? dataDir : undefined,
    snapshotGate,
    onLine: (kind, obj) => {
      if (kind === 'MEASURING') measureStartMs = obj.wallMs;
      else if (kind === 'SNAPSHOT') snapshots.push({ ...obj, s: (obj.wallMs - measureStartMs) / 1000 });
      else if (kind === 'SAMPLE' && measureStartMs !== undefined) samples.push({ ...obj, s: (obj.wallMs - measureStartMs) / 1000 });
      else if (kind === 'LIVE' && measureStartMs !== undefined) live.push({ ...obj, s: (obj.wallMs - measureStartMs) / 1000 });
    },
  });
  await orchestrate;
  await control;
  // Let the last profiles land before asking the detector.
  await sleep(2000);
} catch (e) {
  await proxy.close();
  await collector.stop();
  throw e;
}
await proxy.close();
const leakRes = await httpGet(`${collector.httpUrl}/api/v1/leaks?service=${service}&evaluate=true`);
const leakReport = leakRes.status === 200 ? JSON.parse(leakRes.body.toString()) : { error: `${leakRes.status} ${leakRes.body.toString().slice(0, 200)}` };
const profilesStored = await httpGet(`${collector.httpUrl}/api/v1/leaks?service=${service}`);
await collector.stop();
// The worker's heap, before the outage and near the end, by constructor.
const diffOf = (snaps) => {
  if (snaps.length !== 2) return { error: `${snaps.length} of 2 snapshots taken` };
  try {
    return diffSnapshots(summarizeSnapshot(snaps[0].file), summarizeSnapshot(snaps[1].file));
  } catch (e) {
    return { error: String(e) };
  }
};
const snapshotDiff = opts.snapshots ? diffOf(snapshots) : undefined;
// Compiled code follows the optimization state (precise mode deoptimizes
// everything at each switch, and V8 flushes old bytecode), not what the
// agent holds: judged apart.
const objectsGrowth = (d) => d.totalAfter - d.totalBefore - d.deltaOf('(code)');
const controlSnapshotDiff = opts.snapshots ? diffOf(controlSnapshots) : undefined;
fs.rmSync(dataDir, { recursive: true, force: true });
if (controlDir) fs.rmSync(controlDir, { recursive: true, force: true });

// ---- analysis
const upAgain = events.find((e) => e.event === 'collector up again')?.s ?? outage.endS;
const downAt = events.find((e) => e.event === 'collector stopped')?.s ?? outage.startS;
const phase = (s) => (s < downAt ? 'before' : s < upAgain ? 'outage' : 'after');
const of = (p) => samples.filter((x) => phase(x.s) === p);
const before = of('before');
const during = of('outage');
const after = of('after');
// Drained: the first sample after the restart with an empty queue.
const drained = after.find((x) => x.agent && x.agent.queueLength === 0 && x.agent.profilesSent > (during.at(-1)?.agent?.profilesSent ?? 0));
const recovered = drained ? after.filter((x) => x.s >= drained.s) : [];
const maxBy = (a, f) => (a.length ? Math.max(...a.map(f)) : NaN);
const medBy = (a, f) => (a.length ? median(a.map(f)) : NaN);

function trend(xs, field = 'heapUsed') {
  if (xs.length < 4) return { slope: NaN, lo: NaN, hi: NaN, n: xs.length };
  const t = theilSen(xs.map((x) => x.s / 60), xs.map((x) => mib(x[field])));
  return { ...t, n: xs.length }; // MiB per minute
}
// The live heap (heapUsed right after a forced full GC) in each phase.
const liveBefore = live.filter((x) => x.s < downAt);
const liveDuring = live.filter((x) => x.s >= downAt && x.s < upAgain);
// After the restart: from the collector's return (its first seconds are the
// queue draining, at most the queue bound).
const liveRecovered = live.filter((x) => x.s >= upAgain);
const trendRecovered = trend(liveRecovered);
const trendOutside = trend([...liveBefore, ...liveRecovered]);
const trendRun = trend(live);
const trendControl = trend(controlLive);
const trendRssRecovered = trend(liveRecovered, 'rss');
const first = samples[0]?.agent ?? {};
const last = samples.at(-1)?.agent ?? {};

const phases = [
  ['before outage', before],
  ['collector down', during],
  ['after restart', after],
].map(([name, xs]) => [
  name,
  xs.length ? `${fmt(xs[0].s, 0)}-${fmt(xs.at(-1).s, 0)}` : '-',
  fmt(mib(medBy(live.filter((l) => xs.length && l.s >= xs[0].s && l.s <= xs.at(-1).s), (x) => x.heapUsed))),
  fmt(mib(maxBy(xs, (x) => x.heapUsed))),
  fmt(mib(medBy(xs, (x) => x.rss))),
  fmt(mib(maxBy(xs, (x) => x.rss))),
  fmt(maxBy(xs, (x) => x.agent?.queueLength ?? 0), 0),
  fmt(maxBy(xs, (x) => (x.agent?.queueBytes ?? 0) / 1024)),
  xs.length ? `${xs[0].agent?.profilesSent ?? 0} -> ${xs.at(-1).agent?.profilesSent ?? 0}` : '-',
  xs.length ? `${xs[0].agent?.profilesDropped ?? 0} -> ${xs.at(-1).agent?.profilesDropped ?? 0}` : '-',
]);
const phaseTable = table(['phase', 's', 'live heap MB med', 'heapUsed MB max', 'RSS MB med', 'RSS MB max', 'queue max', 'queue KiB max', 'sent', 'dropped'], phases);

const heapBefore = mib(medBy(before.filter((x) => x.s >= 10), (x) => x.heapUsed));
const heapAfter = mib(medBy(recovered, (x) => x.heapUsed));
const rssBefore = mib(medBy(before.filter((x) => x.s >= 10), (x) => x.rss));
const rssAfter = mib(medBy(recovered, (x) => x.rss));
const envBefore = mib(medBy(liveBefore, (x) => x.heapUsed));
const envDuringMax = mib(maxBy(liveDuring, (x) => x.heapUsed));
const envAfter = mib(medBy(liveRecovered, (x) => x.heapUsed));
const recoveredMin = liveRecovered.length > 1 ? (liveRecovered.at(-1).s - liveRecovered[0].s) / 60 : 0;
// No trend: the slope's 95 % interval includes 0, or overlaps the no-agent
// control's (the workload's own drift is not the agent's).
// The live heap per block of the run (a sixth of it), agent and control:
// Theil-Sen over a few minutes cannot tell a warm-up that levels off, or a
// bounded sawtooth (code and feedback V8 frees again), from a leak, and it
// leans on wherever the window happens to end; block medians can.
const LEVEL_MB = 0.15;
const blockS = opts.durationS / 6;
const medOf = (xs) => (xs.length ? median(xs.map((x) => mib(x.heapUsed))) : NaN);
const blocks = Array.from({ length: 6 }, (_, i) => {
  const a = i * blockS;
  const b = a + blockS;
  const xs = live.filter((x) => x.s >= a && x.s < b);
  const cs = controlLive.filter((x) => x.s >= a && x.s < b);
  return { fromS: a, toS: b, n: xs.length, med: medOf(xs), min: xs.length ? Math.min(...xs.map((x) => mib(x.heapUsed))) : NaN, max: xs.length ? Math.max(...xs.map((x) => mib(x.heapUsed))) : NaN, control: medOf(cs), phase: b <= downAt ? 'before' : a >= upAgain ? 'after' : a >= downAt && b <= upAgain ? 'down' : 'mixed' };
});
// After recovery: that phase in three blocks of its own. The sixths of the
// run above do not line up with the restart (at two thirds of a half-hour
// run only the last sixth starts after it, one block, nothing to compare).
const recoveredEndS = live.at(-1)?.s ?? opts.durationS;
const recoveredBlockS = (recoveredEndS - upAgain) / 3;
const recoveredBlocks = Array.from({ length: 3 }, (_, i) => {
  const a = upAgain + i * recoveredBlockS;
  const b = i === 2 ? Infinity : a + recoveredBlockS;
  const xs = live.filter((x) => x.s >= a && x.s < b);
  return { fromS: a, n: xs.length, med: medOf(xs), control: medOf(controlLive.filter((x) => x.s >= a && x.s < b)) };
}).filter((b) => b.n > 0);
const lastHalfBlocks = blocks.slice(3).filter((b) => b.n > 0);
const levelOf = (bs) => (bs.length >= 2 ? { agent: bs.at(-1).med - bs[0].med, control: bs.at(-1).control - bs[0].control } : undefined);
const levelChange = (bs) => {
  const l = levelOf(bs);
  return l ? `${fmt(bs[0].med, 2)} -> ${fmt(bs.at(-1).med, 2)} MB (${l.agent >= 0 ? '+' : ''}${fmt(l.agent, 3)}; control ${l.control >= 0 ? '+' : ''}${fmt(l.control, 3)})` : `${bs.length} block(s): too short to judge`;
};
const levelMet = (bs) => {
  const l = levelOf(bs);
  return Boolean(l) && l.agent - Math.max(0, l.control) <= LEVEL_MB;
};
const blockTable = table(
  ['block, s', 'phase', 'live heap MB median', 'min', 'max', 'control median'],
  blocks.map((b) => [`${fmt(b.fromS, 0)}-${fmt(b.toS, 0)}`, b.phase, fmt(b.med, 2), fmt(b.min, 2), fmt(b.max, 2), fmt(b.control, 2)]),
);
const ctl = `; no-agent control ${fmt(trendControl.slope, 3)} [${fmt(trendControl.lo, 3)}, ${fmt(trendControl.hi, 3)}]`;
const flagged = leakReport.error ? undefined : (leakReport.leaks?.length ?? 0) + (leakReport.process?.length ?? 0);

const targets = [
  { name: 'queue within its bounds while the collector is down', measured: `max ${fmt(maxBy(during, (x) => x.agent?.queueLength ?? 0), 0)} profiles (bound ${opts.maxQueueProfiles}), max ${fmt(maxBy(during, (x) => x.agent?.queueBytes ?? 0) / 1024)} KiB (bound ${fmt(opts.maxQueueBytes / 1024, 0)} KiB)`, met: maxBy(samples, (x) => x.agent?.queueLength ?? 0) <= opts.maxQueueProfiles && maxBy(samples, (x) => x.agent?.queueBytes ?? 0) <= opts.maxQueueBytes },
  { name: 'overflow is counted, not kept (dropped rises during the outage)', measured: `${during[0]?.agent?.profilesDropped ?? 0} -> ${during.at(-1)?.agent?.profilesDropped ?? 0}`, met: (during.at(-1)?.agent?.profilesDropped ?? 0) > (during[0]?.agent?.profilesDropped ?? 0) },
  { name: 'queue drains after the restart', measured: drained ? `empty ${fmt(drained.s - upAgain)} s after the collector came back` : 'never', met: Boolean(drained) },
  { name: 'live heap during the outage within the queue bound of its level before', measured: `${fmt(envBefore)} -> max ${fmt(envDuringMax)} MB`, met: envDuringMax - envBefore <= mib(opts.maxQueueBytes) + 2 },
  { name: 'live heap returns after the restart (within 2 MB of before)', measured: `${fmt(envBefore)} -> ${fmt(envAfter)} MB (RSS, median of 500 ms samples: ${fmt(rssBefore)} -> ${fmt(rssAfter)})`, met: envAfter - envBefore <= 2 },
  { name: `no growth after recovery: live heap, first -> last third of the recovered phase (${fmt(recoveredBlockS, 0)} s blocks), median, change <= ${LEVEL_MB} MB (beyond the control's)`, measured: `${levelChange(recoveredBlocks)}; Theil-Sen ${fmt(trendRecovered.slope, 3)} MB/min [${fmt(trendRecovered.lo, 3)}, ${fmt(trendRecovered.hi, 3)}] over ${fmt(recoveredMin)} min${ctl}`, met: levelMet(recoveredBlocks) },
  { name: `levels off: over the last half of the run, first -> last block median, change <= ${LEVEL_MB} MB (beyond the control's)`, measured: `${levelChange(lastHalfBlocks)}; Theil-Sen outside the outage ${fmt(trendOutside.slope, 3)} MB/min [${fmt(trendOutside.lo, 3)}, ${fmt(trendOutside.hi, 3)}]`, met: levelMet(lastHalfBlocks) },
  { name: 'live heap over the whole run (first -> last sample; Theil-Sen, for information)', measured: `${fmt(mib(live[0]?.heapUsed), 2)} -> ${fmt(mib(live.at(-1)?.heapUsed), 2)} MB; ${fmt(trendRun.slope, 3)} MB/min [${fmt(trendRun.lo, 3)}, ${fmt(trendRun.hi, 3)}] (control ${fmt(mib(controlLive[0]?.heapUsed), 2)} -> ${fmt(mib(controlLive.at(-1)?.heapUsed), 2)} MB)`, met: true },
  { name: 'precise mode switched on and off several times (every --precise-every profiles)', measured: `${last.preciseActivations ?? 0} periods, ${fmt((last.preciseTimeMs ?? 0) / 1000, 0)} s in precise mode, switches took ${fmt((last.preciseSwitchTimeUs ?? 0) / 1000, 1)} ms of main thread in all; ${last.forcedGcs ?? 0} forced GCs`, met: (last.preciseActivations ?? 0) >= 3 },
  ...(snapshotDiff
    ? [
        {
          name: 'heap snapshot near the end vs before the outage: objects (all but compiled code) grew within 0.5 MB of the no-agent control',
          measured:
            snapshotDiff.error ??
            controlSnapshotDiff.error ??
            `${fmt(mib(snapshotDiff.totalBefore), 2)} -> ${fmt(mib(snapshotDiff.totalAfter), 2)} MB in all; objects ${fmt(objectsGrowth(snapshotDiff) / 1024, 0)} KiB (control ${fmt(objectsGrowth(controlSnapshotDiff) / 1024, 0)} KiB), compiled code ${fmt(snapshotDiff.deltaOf('(code)') / 1024, 0)} KiB (control ${fmt(controlSnapshotDiff.deltaOf('(code)') / 1024, 0)} KiB)`,
          met: !snapshotDiff.error && !controlSnapshotDiff.error && objectsGrowth(snapshotDiff) - objectsGrowth(controlSnapshotDiff) <= 0.5 * 2 ** 20,
        },
      ]
    : []),
  { name: "the product's detector flags nothing on the worker", measured: flagged === undefined ? leakReport.error : `${leakReport.leaks.length} sites, ${leakReport.process.length} process findings`, met: flagged === 0 },
];

const settings = { ...opts, service, loadavgStart: loadStart.join(' '), loadavgEnd: loadavg().join(' '), agentCommit: readAgentCommit(opts.agentDir) };
function readAgentCommit(dir) {
  try {
    return fs.readFileSync(`${dir}/../COMMIT`, 'utf8').trim();
  } catch {
    return 'working tree';
  }
}
const markdown = [
  header('The agent does not leak (part 2)', {
    interval: `${opts.intervalMs} ms`,
    run: `${opts.durationS} s, collector down ${fmt(downAt, 0)}-${fmt(upAgain, 0)} s`,
    workingSet: `${opts.workingSetMb} MB`,
    queueBounds: `${opts.maxQueueProfiles} profiles / ${fmt(opts.maxQueueBytes / 1024, 0)} KiB`,
    precise: `on and off every ${opts.preciseEvery} profiles`,
    agent: `${opts.agentDir} @ ${settings.agentCommit}`,
    loadavg: `${settings.loadavgStart} -> ${settings.loadavgEnd}`,
  }),
  `"after restart" starts when the collector is back. Samples every ${opts.sampleEveryMs} ms from inside the worker (process.memoryUsage, agent.stats()). "Live heap": heapUsed right after a forced full GC every ${opts.gcEveryS} s (between GCs V8 lets garbage pile up to a multiple of the live size, so raw heapUsed climbs for tens of seconds without any leak); the verdicts compare medians of the live heap over blocks of a sixth of the run (table below) against a no-agent control worker run alongside: a leak moves every block up, while a warm-up levels off and V8's own bounded sawtooth (code and feedback it frees again) does not move the medians; Theil-Sen slopes in MB/min with their 95 % interval (Sen) are given beside them, for information: over a few minutes of a sawtooth they lean on wherever the window ends. ` +
    `The detector ran with evaluate=true over the stored profiles; its window is the last 120 profiles of the instance. RSS after recovery: ${fmt(trendRssRecovered.slope, 3)} MB/min [${fmt(trendRssRecovered.lo, 3)}, ${fmt(trendRssRecovered.hi, 3)}].`,
  '',
  phaseTable,
  '',
  blockTable,
  '',
  events.length ? `Collector events (s from the start of measurement): ${events.map((e) => `${fmt(e.s, 0)} s ${e.event}`).join('; ')}.` : '',
  '',
  snapshotDiff && !snapshotDiff.error
    ? [
        `Heap snapshots of the worker (v8.writeHeapSnapshot, after its own full GC) at ${snapshots.map((x) => `${fmt(x.s, 0)} s`).join(' and ')}, self sizes by constructor (objects, closures, native) or node type; the constructors that grew most, beside the no-agent control's:`,
        '',
        table(
          ['constructor / type', 'count before -> after', 'KiB before -> after', 'KiB grown', 'control KiB grown'],
          snapshotDiff.grew.map((r) => [r.name.slice(0, 60), `${fmt(r.countBefore, 0)} -> ${fmt(r.countAfter, 0)}`, `${fmt(r.bytesBefore / 1024, 1)} -> ${fmt(r.bytesAfter / 1024, 1)}`, fmt(r.delta / 1024, 1), controlSnapshotDiff.error ? '-' : fmt(controlSnapshotDiff.deltaOf(r.name) / 1024, 1)]),
        ),
      ].join('\n')
    : '',
  '',
  targetsTable(targets),
].join('\n');
writeResult('agent-leak', {
  settings,
  data: { live: live.map((x) => ({ s: x.s, heapUsed: x.heapUsed, rss: x.rss, external: x.external, agent: x.agent })), events, outage: { downAt, upAgain }, drainedAtS: drained?.s, trendRecovered, trendOutside, trendRun, trendControl, controlLive: controlLive.map((x) => ({ s: x.s, heapUsed: x.heapUsed })), trendRssRecovered, blocks, leakReport, storedReport: profilesStored.status, agentFirst: first, agentLast: last, workerSummary: { ...result, stderr: undefined }, snapshots, snapshotDiff, controlSnapshotDiff, samples: samples.map((x) => ({ s: x.s, rss: x.rss, heapUsed: x.heapUsed, external: x.external, jobs: x.jobs, agent: x.agent })) },
  markdown,
  targets,
});
