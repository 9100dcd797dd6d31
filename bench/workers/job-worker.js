'use strict';
// A job-processing worker, the host every variant of bench/agent-overhead.mjs
// and bench/agent-leak.mjs runs in. Same code for every variant; only the
// profiler differs (chosen by the parent: HEAPWATCH via --require, the others
// started here before the working set is built, so every sampler sees it).
//
// A job: JSON.parse a ~2 KB message, look up a few entries of the retained
// working set, build a result object, await one macrotask (the I/O a real job
// waits on, so a stall of the event loop lands inside job latencies), then
// JSON.stringify the result. CONCURRENCY jobs are in flight at all times
// (closed loop: the CPU is saturated, as in a busy worker). A bounded ring of
// recent results gives the old generation some churn, as a real cache would.
//
// Measured here, in the worker: jobs/s, per-job latency, event-loop delay
// (monitorEventLoopDelay, 1 ms resolution, harvested in 100 ms slices so a
// stall can be placed in time), CPU time (process.cpuUsage: all threads of
// the process, so a transport thread counts), RSS and heapUsed. The time and
// main-thread duration of each poll are recorded by wrapping the sampler's
// read (heap.profile of the @datadog/pprof copy the profiler loads, or the
// inspector call we make ourselves): a few hundred ns per poll.
//
// Config: JSON in argv[2]. Output: lines on stdout, `SAMPLE {...}` every
// sampleEveryMs when set, and one `RESULT {...}` at the end.
const path = require('node:path');
const { monitorEventLoopDelay, createHistogram, performance } = require('node:perf_hooks');

const cfg = JSON.parse(process.argv[2]);
const {
  variant, // none | heapwatch | pyroscope | inspector
  workingSetMb,
  intervalMs,
  warmupS,
  measureS,
  samplingIntervalBytes = 524288,
  sinkUrl,
  agentDir,
  sampleEveryMs = 250,
  printSamples = false,
  gcEveryMs = 0,
  // Part 2: heap snapshots at these seconds of the measured window, written
  // to snapshotDir (v8.writeHeapSnapshot, which runs a full GC first).
  snapshotAtS = [],
  snapshotDir,
  // { period, from, to }: see the snapshots in main().
} = cfg;
const CONCURRENCY = 8;
const SLICE_MS = 100;

const polls = []; // { t: ms since timeOrigin, ms: main-thread duration }
/** `heap`: the object whose `profile` the profiler calls (the agent loads @datadog/pprof's heap-profiler module alone, see agent/src/pprof-heap.ts; pyroscope its index's `heap`). */
function wrapHeapProfile(heap) {
  const original = heap.profile;
  heap.profile = function (...args) {
    const t0 = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      const poll = { t: t0, ms: performance.now() - t0, blockMs: NaN };
      polls.push(poll);
      // Whatever the profiler does synchronously after the read (encode,
      // hand-off) runs before this callback: the loop is held that long.
      setImmediate(() => (poll.blockMs = performance.now() - t0));
    }
  };
}

let agentStats = () => undefined;
const timers = [];
function startVariant() {
  if (variant === 'heapwatch') {
    // Preloaded by the parent with --require <agentDir>/register.js.
    wrapHeapProfile(require(require.resolve('@datadog/pprof/out/src/heap-profiler', { paths: [agentDir] })));
    const agent = require(agentDir);
    agentStats = () => agent.stats();
  } else if (variant === 'pyroscope') {
    const entry = require.resolve('@pyroscope/nodejs');
    const Pyroscope = require(entry).default;
    Pyroscope.init({
      serverAddress: sinkUrl,
      appName: 'job-worker',
      flushIntervalMs: intervalMs,
      heap: { samplingIntervalBytes, stackDepth: 64 },
    });
    // Heap only: the wall profiler is a different product feature.
    Pyroscope.startHeapProfiling();
    wrapHeapProfile(require(require.resolve('@datadog/pprof', { paths: [path.dirname(entry)] })).heap);
  } else if (variant === 'inspector') {
    // The do-it-yourself floor: the inspector's own sampler, read every
    // interval, nothing encoded or sent. getSamplingProfile forces a full GC
    // before it answers (V8 sets kSamplingForceGC for protocol clients).
    const inspector = require('node:inspector');
    const session = new inspector.Session();
    session.connect();
    session.post('HeapProfiler.enable');
    session.post('HeapProfiler.startSampling', { samplingInterval: samplingIntervalBytes, stackDepth: 64 });
    const t = setInterval(() => {
      const t0 = performance.now();
      session.post('HeapProfiler.getSamplingProfile', (err, res) => {
        const poll = { t: t0, ms: performance.now() - t0, blockMs: NaN, nodes: res ? countNodes(res.profile.head) : -1 };
        polls.push(poll);
        setImmediate(() => (poll.blockMs = performance.now() - t0));
      });
    }, intervalMs);
    t.unref();
    timers.push(t);
  }
}
function countNodes(n) {
  let c = 1;
  for (const ch of n.children) c += countNodes(ch);
  return c;
}

// ---- the retained working set: arrays of small objects, built once, held.
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
function buildWorkingSet(mb) {
  // ~ 232 bytes per entry measured on Node 20 (object + 2 strings + array).
  const perEntry = 232;
  const n = Math.round((mb * 2 ** 20) / perEntry);
  const chunks = [];
  const CHUNK = 65536;
  for (let i = 0; i < n; i += CHUNK) {
    const chunk = new Array(Math.min(CHUNK, n - i));
    for (let j = 0; j < chunk.length; j++) {
      const id = i + j;
      chunk[j] = { id, name: `customer-${id}`, region: WORDS[id % 10], score: id % 997, tags: [id % 7, id % 11], note: `n${id}` };
    }
    chunks.push(chunk);
  }
  return { chunks, n };
}

function makeMessage(seq) {
  const items = [];
  for (let i = 0; i < 12; i++) items.push({ sku: `SKU-${(seq * 31 + i) % 5000}`, qty: 1 + ((seq + i) % 5), price: ((seq * 7 + i * 13) % 10000) / 100, attrs: { color: WORDS[(seq + i) % 10], size: (i % 4) + 1 } });
  return JSON.stringify({ id: seq, type: 'order', customer: seq * 2654435761 % 1e9, items, meta: { source: 'queue', attempt: 1, ts: 1700000000000 + seq } });
}
const MESSAGES = [];
for (let i = 0; i < 256; i++) MESSAGES.push(makeMessage(i));

const recent = new Array(2000); // bounded ring of results: old-gen churn
let recentPos = 0;
let ws;

const latency = createHistogram({ lowest: 1, highest: 60e9, figures: 3 });
let jobsDone = 0;
let seq = 0;
let measuring = false;

async function job() {
  const t0 = performance.now();
  const msg = JSON.parse(MESSAGES[seq++ & 255]);
  const ref = ws.chunks[(msg.customer >>> 0) % ws.chunks.length];
  const customer = ref[msg.id % ref.length];
  let total = 0;
  const lines = msg.items.map((it) => {
    const amount = it.qty * it.price;
    total += amount;
    return { sku: it.sku, amount, label: `${it.attrs.color}/${it.attrs.size}` };
  });
  await new Promise((r) => setImmediate(r)); // the I/O the job waits on
  const out = JSON.stringify({ order: msg.id, customer: customer.name, region: customer.region, total, lines });
  recent[recentPos++ % recent.length] = out;
  if (measuring) {
    latency.record(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
    jobsDone++;
  }
}

let running = true;
async function lane() {
  while (running) await job();
}

// ---- measurement
const eld = monitorEventLoopDelay({ resolution: 1 });
const slices = []; // { end, maxMs }
const memSamples = []; // { t, rss, heapUsed }
function harvestSlice() {
  // In sample-printing mode (part 2) nothing is kept in memory: the
  // harness must not grow the heap it is watching.
  if (!measuring || printSamples) return;
  slices.push({ end: performance.now(), maxMs: eld.max / 1e6 });
  eld.reset();
}

function summarize(t0, t1, cpu0, cpu1) {
  const inWindow = polls.filter((p) => p.t >= t0 && p.t < t1);
  // Stall at a poll: the longest event-loop delay in the slices that end
  // within 300 ms after the poll released the loop (the read, the encode and what the
  // profiler does next on this thread). Slices are 100 ms, so a stall that
  // began shortly before the poll (a GC) can be counted with it.
  const pollStalls = inWindow.map((p) => {
    let m = 0;
    const until = p.t + (Number.isFinite(p.blockMs) ? p.blockMs : p.ms) + 300 + SLICE_MS;
    for (const s of slices) if (s.end >= p.t && s.end <= until) m = Math.max(m, s.maxMs);
    return m;
  });
  // Worst stall in each interval-long window, for every variant (the
  // no-agent baseline has no polls: this shows the workload's own GC stalls).
  const windowMax = [];
  for (let w = t0; w + intervalMs <= t1 + 1; w += intervalMs) {
    let m = 0;
    for (const s of slices) if (s.end > w && s.end <= w + intervalMs) m = Math.max(m, s.maxMs);
    windowMax.push(m);
  }
  const secs = (t1 - t0) / 1000;
  const med = (a) => {
    const s = [...a].sort((x, y) => x - y);
    return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
  };
  const ms = memSamples.filter((m) => m.t >= t0 && m.t <= t1);
  return {
    variant,
    workingSetMb,
    jobs: jobsDone,
    seconds: secs,
    jobsPerSec: jobsDone / secs,
    latencyMs: { p50: latency.percentile(50) / 1e6, p99: latency.percentile(99) / 1e6, max: latency.max / 1e6 },
    cpuMs: (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / 1000,
    cpuMsPerSec: (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / 1000 / secs,
    rssMb: med(ms.map((m) => m.rss)) / 2 ** 20,
    rssMaxMb: Math.max(...ms.map((m) => m.rss)) / 2 ** 20,
    heapUsedMb: med(ms.map((m) => m.heapUsed)) / 2 ** 20,
    polls: inWindow.length,
    pollReadMs: inWindow.map((p) => p.ms),
    pollBlockMs: inWindow.map((p) => p.blockMs).filter((x) => Number.isFinite(x)),
    pollStallMs: pollStalls,
    windowStallMs: windowMax,
    agent: agentStats(),
    // Where the long delays were, relative to the window start (ms), so a
    // stall can be told apart from a poll by its timing.
    longStalls: slices.filter((x) => x.maxMs >= 20).map((x) => [Math.round(x.end - t0), Math.round(x.maxMs)]),
    pollTimes: inWindow.map((p) => Math.round(p.t - t0)),
  };
}

async function main() {
  startVariant();
  ws = buildWorkingSet(workingSetMb);
  if (global.gc) global.gc();
  const lanes = [];
  for (let i = 0; i < CONCURRENCY; i++) lanes.push(lane());
  const memTimer = setInterval(() => {
    const m = process.memoryUsage();
    const s = { t: performance.now(), rss: m.rss, heapUsed: m.heapUsed, external: m.external };
    if (measuring && !printSamples) memSamples.push(s);
    if (printSamples) process.stdout.write(`SAMPLE ${JSON.stringify({ ...s, wallMs: Date.now(), jobs: jobsDone, agent: agentStats() })}\n`);
  }, sampleEveryMs);
  // Part 2 only: a forced full GC every gcEveryMs, then heapUsed. V8 lets
  // old-generation garbage pile up to a multiple of the live size before a
  // major GC, so heapUsed between GCs climbs for tens of seconds with no
  // leak at all; the heap right after a full GC is the live size, the
  // series a leak (or its absence) shows in.
  const gcTimer =
    gcEveryMs > 0 && global.gc
      ? setInterval(() => {
          global.gc();
          const m = process.memoryUsage();
          process.stdout.write(`LIVE ${JSON.stringify({ wallMs: Date.now(), heapUsed: m.heapUsed, rss: m.rss, external: m.external, agent: agentStats() })}\n`);
        }, gcEveryMs)
      : undefined;
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  const cpu0 = process.cpuUsage();
  eld.enable();
  const sliceTimer = setInterval(harvestSlice, SLICE_MS);
  measuring = true;
  const t0 = performance.now();
  process.stdout.write(`MEASURING ${JSON.stringify({ wallMs: Date.now() })}\n`);
  // Each snapshot waits, after its time, for the agent's queue to be empty
  // and for profilesSent to be in snapshotGate's range (modulo its period):
  // part 2 switches precise mode every so many profiles, and code space
  // follows the optimization state, so both snapshots are taken in the same
  // phase of that cycle. A no-agent worker takes it at its time.
  const snapshotTimers = [];
  const snapshotTaken = [];
  const takeSnapshot = (i) => {
    clearTimeout(snapshotTimers[i]);
    snapshotTaken[i] = true;
    const file = require('node:v8').writeHeapSnapshot(path.join(snapshotDir, `worker-${i}.heapsnapshot`));
    const m = process.memoryUsage();
    process.stdout.write(`SNAPSHOT ${JSON.stringify({ index: i, wallMs: Date.now(), file, heapUsed: m.heapUsed, agent: agentStats() })}\n`);
  };
  const snapshotAt = (i, s) => {
    let startedAt;
    snapshotTimers[i] = setTimeout(function attempt() {
      startedAt ??= Date.now();
      const a = agentStats();
      const g = cfg.snapshotGate;
      const phase = a && g ? (a.profilesSent - 1 + g.period) % g.period : 0;
      // ...for at most g.maxWaitS: a sender that cannot keep up (a starved
      // collector) never empties its queue, and 32 queued profiles are a few
      // tens of KiB, reported with the snapshot.
      const waited = (Date.now() - startedAt) / 1000;
      if (a && waited < (g?.maxWaitS ?? 60) && (a.queueLength > 0 || (g && (phase < g.from || phase > g.to)))) {
        snapshotTimers[i] = setTimeout(attempt, 100);
        return;
      }
      takeSnapshot(i);
    }, s * 1000);
  };
  if (snapshotDir) snapshotAtS.forEach((s, i) => snapshotAt(i, s));
  await new Promise((r) => setTimeout(r, measureS * 1000));
  // One still waiting for its gate when the run ends is taken now.
  if (snapshotDir) snapshotAtS.forEach((_, i) => snapshotTaken[i] || takeSnapshot(i));
  harvestSlice();
  measuring = false;
  const t1 = performance.now();
  const cpu1 = process.cpuUsage();
  running = false;
  clearInterval(sliceTimer);
  clearInterval(memTimer);
  if (gcTimer) clearInterval(gcTimer);
  eld.disable();
  await Promise.all(lanes);
  const result = summarize(t0, t1, cpu0, cpu1);
  result.workingSetEntries = ws.n;
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
}
main().catch((e) => {
  process.stderr.write(`job-worker: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
