// @leak parkFailure
// @bytes-per-job 350
// A main thread that hands jobs to two worker threads; each worker parks
// every failed job in a retry buffer that is never drained. The leak is in
// the workers' isolates: the quiet main thread (its own heap, its own
// agent instance) must get no finding of its own.
'use strict';
const { Worker, isMainThread, parentPort } = require('node:worker_threads');
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 200;
const TICK_MS = 20;

if (isMainThread) {
  const workers = [new Worker(__filename), new Worker(__filename)];
  let seq = 0;
  let credit = 0;
  setInterval(() => {
    credit += (JOBS_PER_SEC * TICK_MS) / 1000;
    for (; credit >= 1; credit--) {
      seq++;
      workers[seq % 2].postMessage({ id: seq, tenant: `t${seq % 17}` });
    }
  }, TICK_MS);
} else {
  const retries = [];
  function parkFailure(job) {
    retries.push({ job, error: `downstream 503 for ${job.id}`, at: Date.now(), attempts: [1, 2, 3] });
  }
  parentPort.on('message', (job) => {
    const payload = JSON.stringify({ ...job, lines: Array.from({ length: 8 }, (_, i) => ({ sku: `sku-${(job.id * 7 + i) % 991}` })) });
    if (payload.length > 0) parkFailure(job); // the downstream is down
  });
}
