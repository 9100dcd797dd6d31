// @leak observeJob
// @bytes-per-job 600
// A worker records job durations in an in-process metrics registry, labelled
// by job id by mistake (high cardinality): every job creates a new histogram
// series that the registry keeps until the process exits.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 150;
const TICK_MS = 20;
const BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];
const registry = new Map();
let seq = 0;

function observeJob(name, labels, value) {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
  let series = registry.get(key);
  if (!series) {
    series = { key, labels: { ...labels }, counts: new Array(BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
    registry.set(key, series);
  }
  let i = 0;
  while (i < BUCKETS.length && value > BUCKETS[i]) i++;
  series.counts[i]++;
  series.sum += value;
  series.count++;
}

function runJob(job) {
  const t0 = process.hrtime.bigint();
  const doc = JSON.parse(JSON.stringify({ id: job.id, items: [1, 2, 3, 4] }));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 + doc.items.length;
  observeJob('job_duration_ms', { queue: job.queue, job_id: String(job.id) }, ms);
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) runJob({ id: ++seq, queue: 'reports' });
}, TICK_MS);
