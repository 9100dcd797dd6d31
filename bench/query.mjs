// Part 5: query latency on a store that holds a fleet's day.
//
// Loads I instances of one service over 24 h at 60 s intervals through the
// real collector, then times the HTTP API, interleaved, N times each:
//   /api/v1/profile over the last 1 h and over 24 h,
//   /api/v1/leaks (the stored report) and /api/v1/leaks?evaluate=true (a fresh evaluation).
//
//   node bench/query.mjs [--quick] [--instances 6] [--stacks 2000] [--repeats 5]
import * as fs from 'node:fs';
import { httpGet } from './lib/collector.mjs';
import { loadFleetDay } from './lib/fleet-day.mjs';
import { du, fmt, header, median, mib, parseArgs, table, targetsTable, writeResult } from './lib/report.mjs';

const args = parseArgs({ quick: false, instances: 6, stacks: 2000, hours: 24, intervalS: 60, repeats: 5, concurrency: 8, targetMs: 1000 });
if (args.quick) Object.assign(args, { instances: 2, hours: 3, repeats: 2 });
const settings = { ...args };
const service = 'query-bench';
const { collector, startMs, endMs, perInstance, total, values, loadSeconds } = await loadFleetDay({ service, ...args });
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
