// Part 5: query latency on a store that holds a fleet's day.
//
// Loads I instances of one service over 24 h at 60 s intervals through the
// real collector, then times the HTTP API, interleaved, N times each:
//   /api/v1/profile over the last 1 h and over 24 h,
//   /api/v1/leaks (the stored report) and /api/v1/leaks?evaluate=true (a fresh evaluation).
//
//   node bench/query.mjs [--quick] [--instances 6] [--stacks 2000] [--repeats 5]
import * as fs from 'node:fs';
import { encodeProfile, InstanceSeries, serviceStacks } from './lib/profiles.mjs';
import { httpGet, ingestClient, ingestRequest, instanceOf, send, startCollectorProcess } from './lib/collector.mjs';
import { du, fmt, header, median, mib, parseArgs, table, targetsTable, writeResult } from './lib/report.mjs';

const args = parseArgs({ quick: false, instances: 6, stacks: 2000, hours: 24, intervalS: 60, repeats: 5, concurrency: 8, targetMs: 1000 });
if (args.quick) Object.assign(args, { instances: 2, hours: 3, repeats: 2 });
const settings = { ...args };
const service = 'query-bench';
const perInstance = Math.round((args.hours * 3600) / args.intervalS);
const endMs = Date.now() - 60_000;
const startMs = endMs - (perInstance - 1) * args.intervalS * 1000;
const stacks = serviceStacks(777, Math.round(args.stacks * 1.1));
const agents = Array.from({ length: args.instances }, (_, i) => ({ series: new InstanceSeries(stacks, 900 + i), instance: instanceOf(i, startMs - 3600_000), next: 0 }));

const collector = await startCollectorProcess();
const client = ingestClient(collector.grpcAddress);
const total = perInstance * args.instances;
let sent = 0;
let values = 0;
const t0 = performance.now();
console.error(`loading ${total} profiles (${args.instances} instances x ${perInstance}) ...`);
await Promise.all(
  Array.from({ length: args.concurrency }, async () => {
    for (;;) {
      const k = sent++;
      if (k >= total) return;
      // Time-major order, as a live fleet sends.
      const agent = agents[k % args.instances];
      const i = agent.next++;
      const snap = agent.series.next();
      values += snap.length;
      const endTimeMs = startMs + i * args.intervalS * 1000;
      await send(client, ingestRequest({ service, instance: agent.instance, pprofGzip: encodeProfile(stacks, snap, endTimeMs), endTimeMs, startTimeMs: endTimeMs - args.intervalS * 1000 }));
      if (k % 1000 === 0) console.error(`  ${k}/${total}`);
    }
  }),
);
const loadSeconds = (performance.now() - t0) / 1000;
client.close();
const storeBytes = du(collector.dataDir);

const base = `${collector.httpUrl}/api/v1`;
const queries = [
  { name: '/api/v1/profile, last 1 h', url: `${base}/profile?service=${service}&from=${endMs - 3600_000}&to=${endMs}` },
  { name: `/api/v1/profile, ${args.hours} h`, url: `${base}/profile?service=${service}&from=${startMs}&to=${endMs}` },
  { name: '/api/v1/leaks (stored report)', url: `${base}/leaks?service=${service}` },
  { name: '/api/v1/leaks?evaluate=true', url: `${base}/leaks?service=${service}&evaluate=true` },
];
// One untimed pass warms caches and makes the stored leak report exist.
for (const q of [...queries].reverse()) q.warm = await httpGet(q.url);
const times = queries.map(() => []);
for (let r = 0; r < args.repeats; r++) {
  for (const [i, q] of queries.entries()) {
    const res = await httpGet(q.url);
    q.status = res.status;
    q.bytes = res.bytes;
    q.profilesHeader = res.headers.get('x-heapwatch-profiles');
    times[i].push(res.ms);
  }
}
await collector.stop();
fs.rmSync(collector.dataDir, { recursive: true, force: true });

const rows = queries.map((q, i) => ({ name: q.name, status: q.status, medianMs: median(times[i]), maxMs: Math.max(...times[i]), bytes: q.bytes, profiles: q.profilesHeader }));
const targets = rows.map((r) => ({ name: `${r.name} <= ${args.targetMs} ms`, measured: r.status === 200 ? `${fmt(r.medianMs)} ms median, ${fmt(r.maxMs)} ms max` : `HTTP ${r.status}`, met: r.status === 200 && r.maxMs <= args.targetMs }));
const markdown = [
  header('Queries: HTTP API over a fleet-day', settings),
  `Store: ${args.instances} instances x ${perInstance} profiles = ${fmt(total)} profiles, ${fmt(values)} stack values (${fmt(values / total, 0)} per profile), ${fmt(mib(storeBytes))} MiB on disk; loaded in ${loadSeconds.toFixed(0)} s (${fmt(total / loadSeconds)} profiles/s).`,
  '',
  table(['query', 'HTTP', `median ms (${args.repeats} runs)`, 'max ms', 'response bytes', 'profiles merged'], rows.map((r) => [r.name, r.status, r.medianMs, r.maxMs, r.bytes, r.profiles ?? ''])),
  '',
  targetsTable(targets),
].join('\n');
writeResult('query', { settings, targets, data: { total, values, storeBytes, loadSeconds, rows, times }, markdown });
process.exit(0);
