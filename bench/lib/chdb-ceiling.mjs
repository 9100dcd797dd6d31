// The ceiling for part 3: the same sample rows the collector stores, inserted
// straight into an embedded chDB with the collector's own schema, with no
// gRPC, no gunzip, no pprof decoding and no validation in the way.
//
// Runs as a child process (chDB binds one data directory per process) and
// takes orders over IPC, so that the parent can interleave it with the
// collector: { cmd: 'run', method, seconds } -> { rowsPerSec, ... }.
//
// method 'client': @clickhouse/client insert, JSONCompactEachRow arrays
//                  (what the collector did before this benchmark).
// method 'raw':    chdb's raw passthrough insert of a TabSeparated body.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { InstanceSeries, serviceStacks } from './profiles.mjs';
import { tempDir } from './collector.mjs';
import { ROOT } from './report.mjs';

const require = createRequire(import.meta.url);
const { createClient } = require('@clickhouse/client');
const { createChdbConnection } = require('chdb/connection');
const { schemaStatements } = require(`${ROOT}/collector/dist/store/schema.js`);
const { hashString, combine, toDecimal } = require(`${ROOT}/collector/dist/hash.js`);

const config = JSON.parse(process.argv[2]);
const dataDir = tempDir('ceiling');
const connection = createChdbConnection({ path: dataDir });
const client = createClient({ connection, clickhouse_settings: { date_time_input_format: 'best_effort' } });
for (const s of schemaStatements({ retentionDays: 0 })) await client.command({ query: s });
// The collector's schema 2 keeps stack values as arrays in `profiles` and
// `samples` is a view; the ceiling is what the plain client sustains for
// the same values as rows, so it writes schema 1's row table.
await client.command({
  query: `CREATE TABLE samples_rows (service LowCardinality(String), instance LowCardinality(String), stack_id UInt64,
            time DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)), objects Int64 CODEC(Delta, ZSTD(1)), bytes Int64 CODEC(Delta, ZSTD(1)))
          ENGINE = ReplacingMergeTree PARTITION BY toYYYYMMDD(time) ORDER BY (service, instance, stack_id, time)`,
});

// The same services, instances and snapshots as the load generator builds.
const batches = [];
let time = Date.now() - 20 * 86400_000;
for (let s = 0; s < config.services; s++) {
  const service = `bench-svc-${s}`;
  const stacks = serviceStacks(config.seed * 1000 + s, Math.round(config.stacks * 1.1));
  const ids = stacks.map((frames) => toDecimal(combine(frames.map((f) => hashString(`${f[0]}\0${f[1]}\0${f[2]}`)))));
  for (let i = 0; i < config.instancesPerService; i++) {
    const index = s * config.instancesPerService + i;
    const series = new InstanceSeries(stacks, config.seed * 7919 + index);
    const instance = `bench-host-${Math.floor(index / 4)}:${1000 + index}:0:${time}`;
    for (let v = 0; v < config.variants; v++) {
      const rows = series.next().map(([k, objects, bytes]) => [service, instance, ids[k], 0, objects, bytes]);
      batches.push(rows);
    }
  }
}

const batchProfiles = config.profilesPerInsert;
async function insert(method, rows) {
  if (method === 'client') {
    await client.insert({ table: 'samples_rows', values: rows, format: 'JSONCompactEachRow' });
  } else {
    let body = '';
    for (const r of rows) body += `${r[0]}\t${r[1]}\t${r[2]}\t${r[3] / 1000}\t${r[4]}\t${r[5]}\n`;
    await connection.chdb.rawInsert({ table: 'samples_rows', values: body, format: 'TabSeparated' });
  }
}

async function run(method, seconds) {
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let rows = 0;
  let inserts = 0;
  let next = 0;
  // Two inserts in flight, as the collector's batcher allows.
  await Promise.all(
    [0, 1].map(async () => {
      while (performance.now() < end) {
        const chunk = [];
        for (let k = 0; k < batchProfiles; k++) {
          time += 60_000;
          for (const r of batches[next++ % batches.length]) chunk.push([r[0], r[1], r[2], time, r[4], r[5]]);
        }
        await insert(method, chunk);
        rows += chunk.length;
        inserts++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { method, rows, inserts, seconds: secs, rowsPerSec: rows / secs };
}

process.on('message', async (msg) => {
  if (msg.cmd === 'run') process.send(await run(msg.method, msg.seconds));
  if (msg.cmd === 'stop') {
    await client.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  }
});
process.send({ ready: true });
