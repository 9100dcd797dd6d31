// @ok
// A worker that scales up: throughput ramps from 10 % to full over the first
// seconds (as a queue backlog drains in), then holds. Live memory is
// proportional to in-flight jobs, so it rises with the ramp and then holds.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 400;
const RAMP_MS = Number(process.env.SCENARIO_PERIOD_MS) || 4000;
const JOB_MS = 1500;
const TICK_MS = 20;
const started = Date.now();
let inFlight = 0;
let seq = 0;

function runJob(id) {
  const ctx = { id, rows: Array.from({ length: 10 }, (_, i) => ({ i, key: `row-${id}-${i}` })) };
  inFlight++;
  setTimeout(() => {
    inFlight--;
    ctx.rows.length = 0;
  }, JOB_MS);
}

let credit = 0;
setInterval(() => {
  const share = Math.min(1, 0.1 + (0.9 * (Date.now() - started)) / RAMP_MS);
  credit += (share * JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) runJob(++seq);
}, TICK_MS);
