// @leak startJobContext
// @bytes-per-job 800
// A worker gives each job its own AsyncLocalStorage for request-scoped
// logging context and never calls disable(): Node keeps every enabled
// instance (and the store it entered) in its global storage list.
'use strict';
const { AsyncLocalStorage } = require('node:async_hooks');
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 50;
const TICK_MS = 20;
let seq = 0;
let logged = 0;

function startJobContext(job) {
  const storage = new AsyncLocalStorage();
  const context = { jobId: job.id, traceId: `${job.id.toString(16).padStart(16, '0')}${Date.now().toString(16)}`, tags: [`queue:${job.queue}`, `attempt:1`, `region:eu-west-1`], fields: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`f${i}`, `${job.queue}-${i}-${job.id}`])) };
  storage.enterWith(context);
  return storage;
}

function log(storage, msg) {
  const ctx = storage.getStore();
  if (ctx) logged += `${ctx.traceId} ${msg}`.length > 0 ? 1 : 0;
}

function runJob(job) {
  const storage = startJobContext(job);
  log(storage, `started ${job.queue}`);
  const out = JSON.stringify({ id: job.id, result: job.id * 2 });
  log(storage, `finished ${out.length}`);
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) runJob({ id: ++seq, queue: seq % 2 ? 'emails' : 'sms' });
}, TICK_MS);
