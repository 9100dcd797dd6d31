'use strict';
// A CPU-bound job loop with a fixed number of jobs, for instruction counts
// under callgrind (bench/agent-cpu.mjs). No clocks decide anything here: the
// same job count gives the same work, so two runs differ only by what the
// profiler does.
//
// A job parses a ~1 KB JSON message, builds a few small class instances from
// it, reads entries of a retained working set (200,000 small objects, built
// before the first job), serialises a result and keeps it in a bounded ring
// (old-generation churn). Every YIELD_EVERY jobs the loop yields a macrotask,
// so the profiler's timers and I/O run as they would in a real worker.
//
// Two diagnostic variants hold only a way of noticing major GCs, no
// profiler: gc-observer (a perf_hooks 'gc' PerformanceObserver, which makes
// Node build an entry per GC, scavenges included) and gc-sentinel (the
// agent's FinalizationRegistry sentinel, one callback per major GC).
//
// argv[2]: JSON { variant: none|heapwatch|pyroscope|gc-observer|gc-sentinel, jobs, intervalMs,
// sinkUrl, agentDir }. heapwatch is preloaded by the parent (--require
// register.js, configured by environment). The agent's stats() are read only
// at the window's edges: a read every batch (an earlier version did, to note
// when precise mode came on) is the harness's cost, not the agent's, yet it
// was counted in the window as the agent's: 0.5 points of it. Output: one
// `RESULT {...}`.
const cfg = JSON.parse(process.argv[2]);
const { variant, jobs, intervalMs = 2000, sinkUrl, agentDir } = cfg;
const YIELD_EVERY = 50;
const WORKING_SET = 200_000;

let agent;
if (variant === 'heapwatch') agent = require(agentDir);
else if (variant === 'pyroscope') {
  const Pyroscope = require('@pyroscope/nodejs').default;
  Pyroscope.init({ serverAddress: sinkUrl, appName: 'cpu-worker', flushIntervalMs: intervalMs, heap: { samplingIntervalBytes: 524288, stackDepth: 64 } });
  Pyroscope.startHeapProfiling();
} else if (variant === 'sampler') {
  // The V8 sampling heap profiler alone, through the agent's own copy of
  // @datadog/pprof, started as the agent starts it; never read.
  const heap = require(require.resolve('@datadog/pprof/out/src/heap-profiler', { paths: [agentDir] }));
  heap.start(cfg.samplingIntervalBytes ?? 524288, cfg.stackDepth ?? 64);
} else if (variant === 'gc-observer') {
  const { PerformanceObserver, constants } = require('node:perf_hooks');
  let major = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
  }).observe({ entryTypes: ['gc'] });
  agent = { stats: () => ({ majorGcs: major }) };
} else if (variant === 'gc-sentinel') {
  let major = 0;
  const registry = new FinalizationRegistry(() => {
    major++;
    registry.register({}, 0);
  });
  registry.register({}, 0);
  agent = { stats: () => ({ majorGcs: major }) };
}

class Customer {
  constructor(id) {
    this.id = id;
    this.name = `customer-${id}`;
    this.tier = id % 4;
    this.score = (id * 7919) % 1000;
  }
}

class Line {
  constructor(item) {
    this.sku = item.sku;
    this.amount = item.qty * item.price;
    this.label = `${item.color}/${item.size}`;
  }
  discounted(tier) {
    return this.amount * (1 - tier * 0.05);
  }
}

class Order {
  constructor(msg, customer) {
    this.id = msg.id;
    this.customer = customer;
    this.lines = msg.items.map((it) => new Line(it));
  }
  total() {
    let t = 0;
    for (const l of this.lines) t += l.discounted(this.customer.tier);
    return Math.round(t * 100) / 100;
  }
}

const COLORS = ['red', 'green', 'blue', 'black', 'white'];
function message(seq) {
  const items = [];
  for (let i = 0; i < 10; i++) items.push({ sku: `SKU-${(seq * 31 + i) % 5000}`, qty: 1 + ((seq + i) % 5), price: ((seq * 7 + i * 13) % 10000) / 100, color: COLORS[(seq + i) % 5], size: (i % 4) + 1 });
  return JSON.stringify({ id: seq, customer: (seq * 2654435761) % WORKING_SET, items, meta: { source: 'queue', attempt: 1 } });
}
const MESSAGES = [];
for (let i = 0; i < 256; i++) MESSAGES.push(message(i));

const customers = new Array(WORKING_SET);
for (let i = 0; i < WORKING_SET; i++) customers[i] = new Customer(i);
const recent = new Array(4000);

function job(seq) {
  const msg = JSON.parse(MESSAGES[seq & 255]);
  const order = new Order(msg, customers[msg.customer]);
  const out = JSON.stringify({ order: order.id, customer: order.customer.name, total: order.total(), lines: order.lines.map((l) => l.label) });
  recent[seq % recent.length] = out;
  return out.length;
}

let seq = 0;
let checksum = 0;
const cpu0 = process.cpuUsage();

// Window mode (bench/agent-cpu.mjs): warmJobs jobs, then a measured window
// of windowJobs jobs, bracketed by full GCs (gc(), --expose-gc) so that
// every variant starts its window in the same GC state, and ends it with a
// complete major GC, however its own major GCs fell. The window's edges call
// os.getPriority(), which nothing else in the process calls: callgrind runs
// with --dump-before=uv_os_getpriority and writes the window as a part of
// its own. A full GC preGcAt jobs in lets a profiler take the post-GC
// capture it takes after the first major GC before the window. With
// switchInlining, the agent's own inlining switch (agent/dist/inlining.js,
// what precise mode does on the collector's directive) runs at the start of
// the window: 'on' turns inlining off (precise mode on) on warm code; 'off'
// runs the whole warm-up with inlining off and turns it back on.
const { warmJobs = 0, windowJobs = 0, preGcAt = -1, switchInlining } = cfg;
const windowed = windowJobs > 0;
const total = windowed ? warmJobs + windowJobs : jobs;
const setInlining = switchInlining ? require(require('node:path').join(agentDir, 'dist/inlining.js')).setInlining : undefined;
if (switchInlining === 'off') setInlining(false);
const windowMarks = {};
function mark(name) {
  windowMarks[name] = { seq, agent: agent?.stats() };
  require('node:os').getPriority();
}
let switchUs;
function batch() {
  if (windowed && seq === preGcAt) global.gc();
  if (windowed && seq === warmJobs) {
    global.gc();
    mark('start');
    if (switchInlining) {
      const t0 = process.hrtime.bigint();
      setInlining(switchInlining === 'off');
      switchUs = Number(process.hrtime.bigint() - t0) / 1000;
    }
  }
  const end = Math.min(total, seq + YIELD_EVERY);
  for (; seq < end; seq++) checksum += job(seq);
  if (seq < total) setImmediate(batch);
  else {
    if (windowed) {
      global.gc();
      mark('end');
    }
    const cpu = process.cpuUsage(cpu0);
    const result = { variant, jobs: total, checksum, cpuUs: cpu.user + cpu.system, agent: agent?.stats(), window: windowed ? { ...windowMarks, switchUs } : undefined };
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
  }
}
setImmediate(batch);
