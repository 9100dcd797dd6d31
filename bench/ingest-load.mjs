// Part: a fleet of agents against one collector, beyond its capacity.
//
// N simulated agents each take a heap profile every `interval` seconds and
// send it the way the agent does: one request at a time, a 10 s deadline,
// retry with full-jitter backoff, or after the collector's
// `grpc-retry-pushback-ms` when it sheds load, a bounded queue (oldest
// dropped). The profiles are realistic 5,000-stack heap profiles, encoded
// ahead of time. Run at 500 agents (about the collector's capacity at 5 s)
// and at 2,000 (four times it): a collector that degrades gracefully
// acknowledges at least as much at 2,000 as at 500, each acknowledgement
// within the agent's deadline, and sheds the rest with RESOURCE_EXHAUSTED.
//
//   node bench/ingest-load.mjs [--quick] [--agents 500,2000] [--seconds 60] [--interval 5] [--cli path/to/cli.js] [--label before] [--cpu-prof DIR]
import * as os from 'node:os';
import { createRequire } from 'node:module';
import { buildFleet } from './lib/fleet.mjs';
import { ingestRequest, startCollectorProcess } from './lib/collector.mjs';
import { encodeRequest, profileField, RawIngestClient, status } from './lib/raw-ingest.mjs';
import { fmt, header, mib, parseArgs, quantile, rssOf, sleep, table, targetsTable, threadCpu, writeResult } from './lib/report.mjs';

const require = createRequire(import.meta.url);

const args = parseArgs({
  quick: false,
  agents: '500,2000',
  seconds: 60,
  warmup: 10,
  interval: 5,
  deadlineMs: 10_000,
  queue: 32,
  stacks: 5000,
  channels: 16,
  cli: '',
  label: '',
  collectorArgs: '',
  /** A directory to write the collector's V8 CPU profile to (node --cpu-prof), to find the bottleneck. */
  cpuProf: '',
  /** Extra node flags for the collector, space-separated (e.g. --perf-basic-prof for `perf record`). */
  nodeArgs: '',
  /** Print the collector's admission and store counters every 2 s (stderr), to see how it behaves over time. */
  trace: false,
});
if (args.quick) Object.assign(args, { seconds: 20, warmup: 5 });
const fleetSizes = String(args.agents).split(',').map(Number);

// 40 instances' worth of distinct profiles, reused round-robin by every agent:
// the stacks of the fleet's 4 services are what the collector has to store.
const startMs = Date.now() - 3600_000;
console.error(`building profiles of ${args.stacks} stacks ...`);
const pool = buildFleet({ services: 4, instancesPerService: 10, stacks: args.stacks, variants: 2, startMs });
for (const f of pool) f.fields = f.profiles.map(profileField);
const profileBytes = pool.reduce((a, f) => a + f.profiles[0].length, 0) / pool.length;

/** Backoff as the agent's (agent/src/backoff.ts): full jitter from 500 ms, capped at 2 intervals and 30 s. */
function backoffMs(attempt) {
  const cap = Math.min(30_000, 2 * args.interval * 1000);
  return Math.floor(Math.random() * Math.min(cap, 500 * 2 ** Math.min(attempt, 30)));
}

async function run(agentCount) {
  const collector = await startCollectorProcess({
    ...(args.cli ? { cli: args.cli } : {}),
    args: args.collectorArgs ? args.collectorArgs.split(' ') : [],
    nodeArgs: [...(args.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', args.cpuProf] : []), ...(args.nodeArgs ? args.nodeArgs.split(' ') : [])],
  });
  // Separate connections, as separate agents would have; a lean client
  // (lib/raw-ingest.mjs says why not grpc-js).
  const clients = Array.from({ length: args.channels }, () => new RawIngestClient(collector.grpcAddress));
  const stats = { offered: 0, acked: 0, shed: 0, deadline: 0, unavailable: 0, invalid: 0, other: 0, queueDrops: 0, ackMs: [], pushbackHonoured: 0, errorKinds: new Map() };
  let measuring = false;
  let stopping = false;
  const t0 = performance.now();

  let rssMax = 0;
  let healthMax = 0;
  const health = [];
  let probes = 0;
  const probe = setInterval(async () => {
    rssMax = Math.max(rssMax, rssOf(collector.pid) || 0);
    const h0 = performance.now();
    try {
      await fetch(`${collector.httpUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
    } catch {}
    const ms = performance.now() - h0;
    if (args.trace && ++probes % 4 === 0) {
      const text = await fetch(`${collector.httpUrl}/metrics`).then((r) => r.text(), () => '');
      const m = Object.fromEntries([...text.matchAll(/^heapwatch_(\w+) ([\d.e+]+)$/gm)].map((x) => [x[1], Number(x[2])]));
      console.error(`  t=${((performance.now() - t0) / 1000).toFixed(0)}s in flight ${m.requests_in_flight} (${fmt(mib(m.request_bytes_in_flight ?? 0))} MiB), shed ${m.requests_shed_total}, stored ${m.profiles_stored_total}, expired ${m.requests_expired_total}, pending rows ${m.store_pending_rows}, healthz ${ms.toFixed(0)} ms, acked ${stats.acked}`);
    }
    if (measuring) {
      health.push(ms);
      healthMax = Math.max(healthMax, ms);
    }
  }, 500);

  const agents = Array.from({ length: agentCount }, (_, i) => ({ i, queue: [], attempt: 0, busy: false, source: pool[i % pool.length], n: 0, retryAt: 0 }));

  function send(agent) {
    if (agent.busy || stopping || agent.queue.length === 0 || performance.now() < agent.retryAt) return;
    agent.busy = true;
    const req = agent.queue[0];
    const t = performance.now();
    const counted = measuring;
    clients[agent.i % clients.length].ingest(req, args.deadlineMs, (err) => {
      agent.busy = false;
      const ms = performance.now() - t;
      if (!err) {
        agent.queue.shift();
        agent.attempt = 0;
        if (counted && measuring) {
          stats.acked++;
          stats.ackMs.push(ms);
        }
        return send(agent);
      }
      const c = err.code;
      if (c === status.INVALID_ARGUMENT) {
        stats.invalid++;
        agent.queue.shift();
        return send(agent);
      }
      if (measuring) {
        if (c === status.RESOURCE_EXHAUSTED) stats.shed++;
        else if (c === status.DEADLINE_EXCEEDED) stats.deadline++;
        else if (c === status.UNAVAILABLE) stats.unavailable++;
        else stats.other++;
        if (c !== status.RESOURCE_EXHAUSTED && c !== status.DEADLINE_EXCEEDED) {
          const why = `${c} ${String(err.details).slice(0, 80)}`;
          if (stats.errorKinds.size < 20 || stats.errorKinds.has(why)) stats.errorKinds.set(why, (stats.errorKinds.get(why) ?? 0) + 1);
        }
      }
      const pushback = Number(err.metadata?.get('grpc-retry-pushback-ms')?.[0]);
      let wait = backoffMs(agent.attempt++);
      if (Number.isFinite(pushback) && pushback >= 0) {
        wait = Math.min(pushback, 30_000);
        if (measuring) stats.pushbackHonoured++;
      }
      agent.retryAt = performance.now() + wait;
      setTimeout(() => send(agent), wait);
    });
  }

  function snapshot(agent) {
    if (stopping) return;
    const src = agent.source;
    const k = agent.n++ % src.profiles.length;
    const req = encodeRequest(ingestRequest({ service: src.service, instance: { ...src.instance, pid: 100_000 + agent.i }, pprofGzip: undefined, endTimeMs: Date.now() }), src.fields[k]);
    if (measuring) stats.offered++;
    agent.queue.push(req);
    if (agent.queue.length > args.queue) {
      agent.queue.splice(agent.busy ? 1 : 0, 1);
      if (measuring) stats.queueDrops++;
    }
    send(agent);
  }

  // Each agent starts at a random phase of its interval, as a fleet would.
  const timers = agents.map((a) => {
    const first = setTimeout(() => {
      snapshot(a);
      a.timer = setInterval(() => snapshot(a), args.interval * 1000);
    }, Math.random() * args.interval * 1000);
    return () => {
      clearTimeout(first);
      clearInterval(a.timer);
    };
  });

  const cpu = (pid) => {
    const f = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
    const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(x[11]) + Number(x[12])) / 100;
  };
  await sleep(args.warmup * 1000);
  measuring = true;
  const m0 = performance.now();
  const cpu0 = cpu(collector.pid);
  const threads0 = threadCpu(collector.pid);
  const self0 = process.cpuUsage();
  const load0 = os.loadavg()[0];
  console.error(`  ${agentCount} agents: measuring ${args.seconds} s (collector pid ${collector.pid}) ...`);
  await sleep(args.seconds * 1000);
  measuring = false;
  const secs = (performance.now() - m0) / 1000;
  const collectorCpu = (cpu(collector.pid) - cpu0) / secs;
  const threads1 = threadCpu(collector.pid);
  const threadCores = Object.fromEntries(
    Object.entries(threads1)
      .map(([name, s]) => [name, (s - (threads0[name] ?? 0)) / secs])
      .filter(([, c]) => c >= 0.005)
      .sort((a, b) => b[1] - a[1]),
  );
  if (stats.errorKinds.size) console.error(`  other errors: ${[...stats.errorKinds].map(([k, n]) => `${n} x ${k}`).join('; ')}`);
  console.error(`  collector CPU by thread (cores): ${Object.entries(threadCores).map(([n, c]) => `${n} ${c.toFixed(2)}`).join(', ')}`);
  const selfCpu = process.cpuUsage(self0);
  const metricsText = await fetch(`${collector.httpUrl}/metrics`).then((r) => r.text(), () => '');
  const metrics = Object.fromEntries([...metricsText.matchAll(/^heapwatch_(\w+) ([\d.e+]+)$/gm)].map((m) => [m[1], Number(m[2])]));
  stopping = true;
  for (const stop of timers) stop();
  clearInterval(probe);
  const rssEnd = rssOf(collector.pid);
  for (const c of clients) c.close();
  await collector.stop();
  require('node:fs').rmSync(collector.dataDir, { recursive: true, force: true });
  const result = {
    agents: agentCount,
    offeredPerSec: stats.offered / secs,
    ackedPerSec: stats.acked / secs,
    p50Ms: quantile(stats.ackMs, 0.5),
    p99Ms: quantile(stats.ackMs, 0.99),
    shedPerSec: stats.shed / secs,
    deadlinePerSec: stats.deadline / secs,
    unavailable: stats.unavailable,
    invalid: stats.invalid,
    other: stats.other,
    queueDrops: stats.queueDrops,
    pushbackHonoured: stats.pushbackHonoured,
    expiredDropped: metrics.requests_expired_total ?? null,
    shedByCollector: metrics.requests_shed_total ?? null,
    loopDelayP99Ms: metrics.event_loop_delay_p99_ms ?? null,
    loopDelayMaxMs: metrics.event_loop_delay_max_ms ?? null,
    metrics,
    collectorCpuCores: collectorCpu,
    collectorThreadCores: threadCores,
    collectorCpuMsPerAck: stats.acked > 0 ? (collectorCpu * secs * 1000) / stats.acked : null,
    generatorCpuCores: (selfCpu.user + selfCpu.system) / 1e6 / secs,
    healthzMaxMs: healthMax,
    healthzP99Ms: quantile(health, 0.99),
    rssMaxBytes: rssMax,
    rssEndBytes: rssEnd,
    loadavg1: [load0, os.loadavg()[0]],
    elapsedS: (performance.now() - t0) / 1000,
  };
  console.error(`  ${agentCount} agents: ${fmt(result.ackedPerSec)} acked/s of ${fmt(result.offeredPerSec)} offered, p99 ${fmt(result.p99Ms)} ms, shed ${fmt(result.shedPerSec)}/s, deadline ${fmt(result.deadlinePerSec)}/s, RSS max ${fmt(mib(rssMax))} MiB, collector CPU ${result.collectorCpuCores.toFixed(2)} cores`);
  return result;
}

const results = [];
for (const n of fleetSizes) results.push(await run(n));

const at = (n) => results.find((r) => r.agents === n);
const small = at(fleetSizes[0]);
const large = at(fleetSizes[fleetSizes.length - 1]);
const targets =
  fleetSizes.length > 1
    ? [
        { name: `acked/s at ${large.agents} agents >= at ${small.agents}`, measured: `${fmt(large.ackedPerSec)} vs ${fmt(small.ackedPerSec)}`, met: large.ackedPerSec >= small.ackedPerSec * 0.95 },
        { name: `p99 ack < the agent's ${args.deadlineMs} ms deadline at ${large.agents} agents`, measured: `${fmt(large.p99Ms)} ms`, met: large.p99Ms < args.deadlineMs },
      ]
    : [];
const name = args.label ? `ingest-load-${args.label}` : 'ingest-load';
const markdown = [
  header(`Ingest under load: ${fleetSizes.join(' and ')} agents${args.label ? ` (${args.label})` : ''}`, args),
  `Each agent sends a ${fmt(profileBytes / 1024)} KiB gzipped ${args.stacks}-stack profile every ${args.interval} s with a ${args.deadlineMs} ms deadline, one request at a time, retrying with backoff or after \`grpc-retry-pushback-ms\`; the collector runs in its own process on the same ${os.cpus().length} cores as this load generator, on a machine shared with other work (loadavg is shown): treat the figures as comparative, not absolute.`,
  '',
  table(
    ['agents', 'offered/s', 'acked/s', 'ack p50 ms', 'ack p99 ms', 'shed (RESOURCE_EXHAUSTED)/s', 'DEADLINE_EXCEEDED/s', 'UNAVAILABLE', 'expired, dropped by collector', 'agent queue drops', '/healthz max ms', 'collector event-loop delay p99 / max ms', 'collector CPU cores', 'generator CPU cores', 'collector RSS max / end MiB', 'loadavg 1 min'],
    results.map((r) => [r.agents, r.offeredPerSec, r.ackedPerSec, r.p50Ms, r.p99Ms, r.shedPerSec, r.deadlinePerSec, r.unavailable, r.expiredDropped ?? 'n/a', r.queueDrops, r.healthzMaxMs, r.loopDelayMaxMs === null ? 'n/a' : `${r.loopDelayP99Ms} / ${r.loopDelayMaxMs}`, r.collectorCpuCores.toFixed(2), r.generatorCpuCores.toFixed(2), `${fmt(mib(r.rssMaxBytes))} / ${fmt(mib(r.rssEndBytes))}`, r.loadavg1.map((x) => x.toFixed(1)).join(' -> ')]),
  ),
  '',
  targetsTable(targets),
].join('\n');
writeResult(name, { settings: args, targets, data: { profileBytes, results }, markdown });
process.exit(0);
