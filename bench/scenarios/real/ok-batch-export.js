// @ok
// @jobs-per-sec 0.2
// A BullMQ worker that runs the periodic export: every few seconds (one
// export job every 5 s by default) it reads a batch of 40,000 rows, builds
// the CSV (~6 MB of strings, in buildBatch and toCsv), "uploads" it and
// drops it. Memory rises by the batch and falls back after every export:
// a sawtooth with a flat floor, not a leak.
'use strict';
const { Queue, Worker } = require('bullmq');
const { REDIS, BULLMQ_PREFIX, onShutdown, every } = require('./lib/services');

const EXPORTS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 0.2;
const ROWS = Number(process.env.SCENARIO_ROWS) || 40_000;
const QUEUE = 'exports';

function buildBatch(exportId) {
  const rows = [];
  for (let i = 0; i < ROWS; i++) {
    rows.push({ id: `${exportId}-${i}`, account: `acct-${i % 3000}`, amount: (i % 1000) * 1.25, currency: i % 3 ? 'EUR' : 'USD', memo: `payment ${i} of export ${exportId}` });
  }
  return rows;
}

function toCsv(rows) {
  return rows.map((r) => `${r.id},${r.account},${r.amount.toFixed(2)},${r.currency},"${r.memo}"`).join('\n');
}

async function upload(csv) {
  // The object store: a short round trip; the body is released afterwards.
  await new Promise((r) => setTimeout(r, 200));
  return csv.length;
}

async function runExport(job) {
  const rows = buildBatch(job.data.exportId);
  const csv = toCsv(rows);
  return { bytes: await upload(csv), rows: rows.length };
}

const queue = new Queue(QUEUE, { connection: REDIS, prefix: BULLMQ_PREFIX });
const worker = new Worker(QUEUE, runExport, { connection: REDIS, prefix: BULLMQ_PREFIX, concurrency: 1 });
worker.on('error', () => {});
onShutdown(async () => {
  await worker.close(true);
  await queue.obliterate({ force: true });
  await queue.close();
});

let seq = 0;
every(EXPORTS_PER_SEC, () => {
  seq++;
  queue.add('export', { exportId: `exp-${seq}` }, { removeOnComplete: true, removeOnFail: true }).catch(() => {});
});
