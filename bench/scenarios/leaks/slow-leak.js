// @leak auditTrail
// @bytes-per-job 250
// A slow leak: each job appends a small audit record (a few hundred bytes)
// to an in-memory trail that was meant to be shipped and truncated by a
// batch job that was never wired up. Most of the heap is healthy churn.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 50;
const TICK_MS = 20;
const trail = [];
let seq = 0;
let bytesOut = 0;

function auditTrail(job, outcome) {
  trail.push({ job: job.id, user: job.user, outcome, at: Date.now(), note: `${job.user} ran ${job.action}` });
}

function runJob(job) {
  // Healthy churn: a few KB of garbage per job.
  const doc = { id: job.id, rows: Array.from({ length: 20 }, (_, i) => ({ i, v: `${job.action}-${i}` })) };
  bytesOut += JSON.stringify(doc).length;
  auditTrail(job, bytesOut % 7 === 0 ? 'retry' : 'ok');
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) {
    seq++;
    runJob({ id: seq, user: `user-${seq % 300}`, action: seq % 3 ? 'export' : 'import' });
  }
}, TICK_MS);
