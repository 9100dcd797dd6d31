// @leak rememberError
// @bytes-per-job 620
// A worker keeps "recent errors" for its status endpoint on a long-lived
// stats object, but appends without a cap. Each entry is a wrapped Error whose
// stack was formatted for the log line, so every failure retains a few KB.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 100;
const TICK_MS = 20;
const stats = { started: Date.now(), ok: 0, failed: 0, recentErrors: [] };
let seq = 0;

function validate(job) {
  if (job.amount < 0 || job.id % 2 === 0) throw new RangeError(`amount out of range for ${job.id}`);
  return job.amount;
}

function rememberError(job, cause) {
  const err = new Error(`job ${job.id} (${job.type}) failed: ${cause.message}`, { cause });
  const firstFrame = err.stack.split('\n')[1];
  stats.recentErrors.push({ err, firstFrame, jobId: job.id, at: Date.now() });
}

function handle(job) {
  try {
    validate(job);
    stats.ok++;
  } catch (cause) {
    stats.failed++;
    rememberError(job, cause);
  }
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) {
    seq++;
    handle({ id: seq, type: 'payout', amount: (seq % 100) - 1 });
  }
}, TICK_MS);
