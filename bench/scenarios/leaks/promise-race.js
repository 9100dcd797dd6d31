// @leak runUntilShutdown
// @bytes-per-job 300
// Every job races its work against a process-wide shutdown promise that only
// settles on SIGTERM. Each Promise.race adds a reaction to the never-settling
// shutdown promise, and those reactions (with the race's promise and
// capability) are never released.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 300;
const TICK_MS = 20;
let signalShutdown;
const shutdown = new Promise((resolve) => (signalShutdown = resolve));
process.once('SIGTERM', () => {
  signalShutdown('shutdown');
  setImmediate(() => process.exit(0));
});
let seq = 0;
let done = 0;

async function work(job) {
  const rows = JSON.parse(JSON.stringify(Array.from({ length: 5 }, (_, i) => ({ id: job.id * 10 + i }))));
  await null;
  return rows.length;
}

function runUntilShutdown(job) {
  return Promise.race([work(job), shutdown]);
}

async function runJob(job) {
  const r = await runUntilShutdown(job);
  if (r !== 'shutdown') done++;
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) runJob({ id: ++seq }).catch(() => {});
}, TICK_MS);
