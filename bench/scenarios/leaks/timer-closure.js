// @leak watchJob
// @bytes-per-job 500
// A worker that starts a progress watchdog for every job. The watchdog
// interval is meant to be cleared when the job finishes, but the clear is
// missing on the success path, so each job's timer and the closure over its
// state live forever.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 100;
const TICK_MS = 20;
let seq = 0;
let stalled = 0;

function watchJob(job) {
  const state = { id: job.id, startedAt: Date.now(), checkpoints: [], note: `watchdog for ${job.kind} job ${job.id}` };
  const timer = setInterval(() => {
    if (Date.now() - state.startedAt > 3_600_000) stalled++;
  }, 3_600_000);
  return { state, timer };
}

async function runJob(job) {
  const watch = watchJob(job);
  const parsed = JSON.parse(JSON.stringify({ ...job, steps: [1, 2, 3] }));
  await new Promise((r) => setImmediate(r));
  watch.state.checkpoints.push(parsed.steps.length);
  if (parsed.kind === 'never') clearInterval(watch.timer); // the only clear: never taken
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) runJob({ id: ++seq, kind: seq % 2 ? 'resize' : 'thumbnail' }).catch(() => {});
}, TICK_MS);
