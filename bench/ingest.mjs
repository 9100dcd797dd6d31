// Part 3: what one collector on the embedded store sustains.
//
// Many simulated agents send realistic heap profiles (consecutive profiles
// of one instance alike) over gRPC to `heapwatch serve` in its own process.
// Interleaved with each collector round, a child process inserts the same
// sample rows straight into chDB with @clickhouse/client: the ceiling.
//
//   node bench/ingest.mjs [--quick] [--stacks 5000] [--rounds 3] ...
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildFleet } from './lib/fleet.mjs';
import { ingestClient, ingestRequest, send, startCollectorProcess } from './lib/collector.mjs';
import { BENCH_DIR, fmt, header, median, mib, parseArgs, quantile, rssOf, sleep, table, targetsTable, writeResult } from './lib/report.mjs';

const args = parseArgs({
  quick: false,
  services: 2,
  instances: 10,
  stacks: 5000,
  variants: 4,
  rounds: 3,
  seconds: 10,
  concurrency: 8,
  halfRate: 50,
  halfSeconds: 15,
  targetProfilesPerSec: 100,
  targetP99Ms: 250,
});
if (args.quick) Object.assign(args, { rounds: 1, seconds: 4, halfSeconds: 4, variants: 2, instances: 4 });

const settings = { ...args };
const startMs = Date.now() - 10 * 86400_000;
console.error(`building ${args.services * args.instances} instances x ${args.variants} profiles of ${args.stacks} stacks ...`);
const fleet = buildFleet({ services: args.services, instancesPerService: args.instances, stacks: args.stacks, variants: args.variants, startMs });
const valuesPerProfile = fleet.reduce((a, f) => a + f.valuesPerProfile, 0) / fleet.length;
const profileBytes = fleet.reduce((a, f) => a + f.profiles.reduce((x, p) => x + p.length, 0) / f.profiles.length, 0) / fleet.length;

const collector = await startCollectorProcess();
const client = ingestClient(collector.grpcAddress);
const ceiling = fork(path.join(BENCH_DIR, 'lib/chdb-ceiling.mjs'), [
  JSON.stringify({ services: args.services, instancesPerService: args.instances, stacks: args.stacks, variants: args.variants, seed: 1, profilesPerInsert: 10 }),
]);
const ask = (msg) => new Promise((resolve) => { ceiling.once('message', resolve); ceiling.send(msg); });
await new Promise((resolve) => ceiling.once('message', resolve));

let rssMax = 0;
const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, rssOf(collector.pid) || 0)), 200);

let cursor = 0;
function nextRequest() {
  const agent = fleet[cursor++ % fleet.length];
  agent.timeMs += 60_000;
  return ingestRequest({ service: agent.service, instance: agent.instance, pprofGzip: agent.profiles[agent.next++ % agent.profiles.length], endTimeMs: agent.timeMs });
}

// Every instance's first profile stores its stacks; the steady state after
// that is what a fleet looks like.
await Promise.all(fleet.map(() => send(client, nextRequest())));

/** CPU seconds a process has used, all threads (the engine runs inside the collector). */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in USER_HZ = 100
}

/**
 * Closed loop: `concurrency` agents, each sends as soon as its last send is
 * acknowledged. Besides profiles/s (which a shared machine drags down), it
 * measures the CPU the collector spent per stored profile, and the CPU the
 * load generator (this process) spent per send: both share the machine's
 * cores, so the collector's capacity on the whole machine is cores x 1000 /
 * (collector ms per profile); what the generator takes is reported beside.
 */
async function saturate(seconds) {
  const cpu0 = cpuSeconds(collector.pid);
  const self0 = process.cpuUsage();
  const load0 = os.loadavg()[0];
  const acks = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: args.concurrency }, async () => {
      while (performance.now() < end) {
        try {
          acks.push(await send(client, nextRequest()));
        } catch {
          errors++;
          await sleep(50);
        }
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const collectorCpuMsPerProfile = ((cpuSeconds(collector.pid) - cpu0) * 1000) / acks.length;
  return {
    profilesPerSec: acks.length / secs,
    valuesPerSec: (acks.length * valuesPerProfile) / secs,
    p50Ms: quantile(acks, 0.5),
    p99Ms: quantile(acks, 0.99),
    errors,
    collectorCpuMsPerProfile,
    generatorCpuMsPerProfile: (self.user + self.system) / 1000 / acks.length,
    capacityProfilesPerSec: (os.cpus().length * 1000) / collectorCpuMsPerProfile,
    loadavg1: [load0, os.loadavg()[0]],
  };
}

/** Open loop at a fixed rate: a send every 1/rate s, whether or not earlier ones were acknowledged. */
async function paced(rate, seconds) {
  const acks = [];
  let errors = 0;
  const pending = [];
  const t0 = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(send(client, nextRequest()).then((ms) => acks.push(ms), () => errors++));
  }
  await Promise.all(pending);
  return { rate, profiles: acks.length, p50Ms: quantile(acks, 0.5), p99Ms: quantile(acks, 0.99), maxMs: Math.max(...acks), errors };
}

const rounds = [];
for (let r = 0; r < args.rounds; r++) {
  console.error(`round ${r + 1}/${args.rounds}: collector ...`);
  const c = await saturate(args.seconds);
  console.error(`round ${r + 1}/${args.rounds}: ceiling ...`);
  const ch = await ask({ cmd: 'run', method: 'client', seconds: args.seconds });
  rounds.push({ collector: c, ceiling: ch });
  console.error(`  collector ${fmt(c.profilesPerSec)} profiles/s, ${fmt(c.valuesPerSec)} values/s; ceiling ${fmt(ch.rowsPerSec)} rows/s`);
}
await sleep(1000);
console.error(`half load: ${args.halfRate} profiles/s for ${args.halfSeconds} s ...`);
const half = await paced(args.halfRate, args.halfSeconds);
clearInterval(rssTimer);
const rssEnd = rssOf(collector.pid);

ceiling.send({ cmd: 'stop' });
client.close();
await collector.stop();
fs.rmSync(collector.dataDir, { recursive: true, force: true });

const med = (f) => median(rounds.map(f));
const profilesPerSec = med((r) => r.collector.profilesPerSec);
const valuesPerSec = med((r) => r.collector.valuesPerSec);
const ceilingRowsPerSec = med((r) => r.ceiling.rowsPerSec);
const cpuMsPerProfile = med((r) => r.collector.collectorCpuMsPerProfile);
const capacity = (os.cpus().length * 1000) / cpuMsPerProfile;
const targets = [
  { name: `>= ${args.targetProfilesPerSec} profiles/s of ${args.stacks} stacks`, measured: `${fmt(profilesPerSec)} profiles/s`, met: profilesPerSec >= args.targetProfilesPerSec && args.stacks >= 5000 },
  { name: `p99 ack < ${args.targetP99Ms} ms at ${args.halfRate} profiles/s`, measured: `${fmt(half.p99Ms)} ms`, met: half.p99Ms < args.targetP99Ms && half.errors === 0 },
];
const markdown = [
  header('Ingest: one collector, embedded chDB', settings),
  `Profiles: ${fmt(valuesPerProfile, 0)} stack values each (of ${args.stacks} stacks per service), ${fmt(profileBytes / 1024)} KiB gzipped; ${fleet.length} simulated agents, ${args.concurrency} sending at once.`,
  '',
  table(
    ['round', 'collector profiles/s', 'collector stack values/s', 'ack p50 ms', 'ack p99 ms', 'errors', 'collector CPU ms/profile (all threads)', 'load generator CPU ms/profile', 'loadavg 1 min', 'ceiling rows/s (chDB via @clickhouse/client)', 'collector / ceiling'],
    rounds.map((r, i) => [i + 1, r.collector.profilesPerSec, r.collector.valuesPerSec, r.collector.p50Ms, r.collector.p99Ms, r.collector.errors, r.collector.collectorCpuMsPerProfile, r.collector.generatorCpuMsPerProfile, r.collector.loadavg1.map((x) => x.toFixed(1)).join(' -> '), r.ceiling.rowsPerSec, (r.collector.valuesPerSec / r.ceiling.rowsPerSec).toFixed(2)]),
  ),
  '',
  table(
    ['figure', 'value'],
    [
      ['sustained profiles/s (median of rounds)', profilesPerSec],
      ['sustained stack values/s', valuesPerSec],
      ['collector CPU per profile, ms (median of rounds; collector process, all threads incl. the engine)', cpuMsPerProfile],
      [`capacity on ${os.cpus().length} cores at that CPU cost, profiles/s (if nothing else ran)`, capacity],
      ['load generator CPU per profile, ms (same cores)', med((r) => r.collector.generatorCpuMsPerProfile)],
      ['ceiling rows/s, same rows straight into chDB', ceilingRowsPerSec],
      ['ratio collector / ceiling', (valuesPerSec / ceilingRowsPerSec).toFixed(2)],
      [`ack p50 / p99 / max ms at ${args.halfRate} profiles/s`, `${fmt(half.p50Ms)} / ${fmt(half.p99Ms)} / ${fmt(half.maxMs)}`],
      ['collector RSS max / end MiB', `${fmt(mib(rssMax))} / ${fmt(mib(rssEnd))}`],
    ],
  ),
  '',
  targetsTable(targets),
].join('\n');
writeResult('ingest', { settings, targets, data: { valuesPerProfile, profileBytes, rounds, half, profilesPerSec, valuesPerSec, ceilingRowsPerSec, cpuMsPerProfile, capacity, rssMaxBytes: rssMax, rssEndBytes: rssEnd }, markdown });
process.exit(0);
