// @leak recordFailure
// @bytes-per-job 700
// A job worker that pushes results to a downstream API. While the downstream
// is failing, every failed job is parked in a retry buffer; the drain loop
// only runs when a health check passes, which never happens during the
// outage, so the buffer grows without bound.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 200;
const TICK_MS = 20;

const retryBuffer = [];
let downstreamHealthy = false;
let seq = 0;

function nextJob() {
  seq++;
  return { id: `job-${seq}`, tenant: `t${seq % 17}`, lines: Array.from({ length: 8 }, (_, i) => ({ sku: `sku-${(seq * 7 + i) % 991}`, qty: (i % 3) + 1 })) };
}

function buildPayload(job) {
  return JSON.stringify({ order: job.id, tenant: job.tenant, lines: job.lines, total: job.lines.reduce((s, l) => s + l.qty * 3.5, 0) });
}

function postDownstream(payload) {
  return new Promise((resolve, reject) => {
    setImmediate(() => (downstreamHealthy ? resolve(payload.length) : reject(new Error('503 Service Unavailable'))));
  });
}

function recordFailure(job, payload, err) {
  // Keeps a self-contained copy for replay: the payload re-serialized with retry metadata.
  retryBuffer.push({ key: `${job.tenant}/${job.id}`, body: JSON.stringify({ payload, error: String(err.message), attempt: 1, at: new Date().toISOString() }) });
}

async function runJob(job) {
  const payload = buildPayload(job);
  try {
    await postDownstream(payload);
  } catch (err) {
    recordFailure(job, payload, err);
  }
}

setInterval(() => {
  if (!downstreamHealthy) return;
  retryBuffer.splice(0, 100);
}, 1000);

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) runJob(nextJob()).catch(() => {});
}, TICK_MS);
