// Part 4: bytes on disk per stored stack value and per profile, after merges.
//
// One instance, one day at 60 s intervals (1,440 profiles), sent through the
// real collector over gRPC; then the store is merged (OPTIMIZE ... FINAL)
// and measured from system.parts.
//
//   node bench/storage.mjs [--quick] [--stacks 5000] [--hours 24]
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { encodeProfile, InstanceSeries, serviceStacks } from './lib/profiles.mjs';
import { ingestClient, ingestRequest, instanceOf, send, startCollectorProcess } from './lib/collector.mjs';
import { fmt, header, mib, parseArgs, ROOT, table, targetsTable, writeResult } from './lib/report.mjs';

const require = createRequire(import.meta.url);
const { ClickHouseStore } = require(`${ROOT}/collector/dist/index.js`);

const args = parseArgs({ quick: false, stacks: 5000, hours: 24, intervalS: 60, concurrency: 4, targetBytesPerValue: 2 });
if (args.quick) Object.assign(args, { hours: 2 });
const settings = { ...args };

const profiles = Math.round((args.hours * 3600) / args.intervalS);
const startMs = Date.now() - 3 * 86400_000;
const stacks = serviceStacks(4242, Math.round(args.stacks * 1.1));
const series = new InstanceSeries(stacks, 4243);
const instance = instanceOf(0, startMs - 3600_000);

const collector = await startCollectorProcess();
const client = ingestClient(collector.grpcAddress);
let sent = 0;
let values = 0;
let gzBytes = 0;
const t0 = performance.now();
console.error(`sending ${profiles} profiles of one instance ...`);
await Promise.all(
  Array.from({ length: args.concurrency }, async () => {
    while (sent < profiles) {
      const i = sent++;
      const snap = series.next();
      values += snap.length;
      const endTimeMs = startMs + i * args.intervalS * 1000;
      const pprofGzip = encodeProfile(stacks, snap, endTimeMs);
      gzBytes += pprofGzip.length;
      await send(client, ingestRequest({ service: 'storage-bench', instance, pprofGzip, endTimeMs, startTimeMs: endTimeMs - args.intervalS * 1000 }));
    }
  }),
);
const loadSeconds = (performance.now() - t0) / 1000;
client.close();
await collector.stop();

// The collector is down; its data directory is ours to open and merge.
const store = await ClickHouseStore.open({ target: { kind: 'embedded', dataDir: collector.dataDir }, retentionDays: 0 });
// A profile's stack values are arrays in its `profiles` row.
for (const t of ['profiles', 'stacks']) await store.inspect(`OPTIMIZE TABLE ${t} FINAL`);
const [stored] = await store.inspect(`SELECT sum(length(stack_ids)) AS n FROM profiles`);
const storedValues = Number(stored?.n ?? 0);
const parts = await store.inspect(
  `SELECT table, count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS disk, sum(data_compressed_bytes) AS compressed,
          sum(data_uncompressed_bytes) AS uncompressed
   FROM system.parts WHERE active AND database = currentDatabase() AND table IN ('profiles', 'stacks')
   GROUP BY table ORDER BY table`,
);
const columns = await store.inspect(
  `SELECT column AS name, sum(column_data_compressed_bytes) AS compressed, sum(column_data_uncompressed_bytes) AS uncompressed
   FROM system.parts_columns WHERE active AND database = currentDatabase() AND table = 'profiles' GROUP BY column ORDER BY compressed DESC`,
);
await store.close();
fs.rmSync(collector.dataDir, { recursive: true, force: true });

const by = Object.fromEntries(parts.map((p) => [p.table, { parts: Number(p.parts), rows: Number(p.rows), disk: Number(p.disk), compressed: Number(p.compressed), uncompressed: Number(p.uncompressed) }]));
const total = Object.values(by).reduce((a, t) => a + t.disk, 0);
const arrayBytes = columns.filter((c) => /^stack_(ids|objects|bytes)$/.test(c.name)).reduce((a, c) => a + Number(c.compressed), 0);
// The strict figure: everything on disk of `profiles` (the arrays and every
// per-profile column, marks and index) over the stack values it holds.
const bytesPerValue = (by.profiles?.disk ?? 0) / storedValues;
const targets = [{ name: `<= ${args.targetBytesPerValue} bytes on disk per stack value`, measured: `${bytesPerValue.toFixed(2)} bytes`, met: bytesPerValue <= args.targetBytesPerValue }];
const markdown = [
  header('Storage: one instance, one day at 60 s', settings),
  `Loaded ${profiles} profiles (${fmt(values / profiles, 0)} stack values each, ${fmt(values)} in all) in ${loadSeconds.toFixed(1)} s; merged with OPTIMIZE FINAL.`,
  '',
  table(
    ['table', 'parts', 'rows', 'bytes on disk', 'uncompressed', 'bytes/row'],
    Object.entries(by).map(([name, t]) => [name, t.parts, t.rows, t.disk, t.uncompressed, (t.disk / t.rows).toFixed(2)]),
  ),
  '',
  table(['profiles column', 'compressed bytes', 'bytes per stack value'], columns.slice(0, 8).map((c) => [c.name, Number(c.compressed), (Number(c.compressed) / storedValues).toFixed(3)])),
  '',
  table(
    ['figure', 'value'],
    [
      [`stack values stored`, fmt(storedValues)],
      ['bytes on disk per stack value (all of profiles, which holds the values as arrays)', bytesPerValue.toFixed(2)],
      ['compressed bytes per stack value, the three array columns alone', (arrayBytes / storedValues).toFixed(2)],
      ['bytes on disk per profile (profiles + stacks)', fmt(total / profiles, 0)],
      ['gzipped pprof the agent sent, per profile', fmt(gzBytes / profiles, 0)],
      ['store size for the day, MiB', fmt(mib(total))],
    ],
  ),
  '',
  targetsTable(targets),
].join('\n');
writeResult('storage', { settings, targets, data: { profiles, values, loadSeconds, tables: by, columns, storedValues, arrayBytes, bytesPerValue, bytesPerProfile: total / profiles, gzBytesPerProfile: gzBytes / profiles }, markdown });
process.exit(0);
