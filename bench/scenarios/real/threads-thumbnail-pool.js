// @leak renderThumbnail
// @holder makeThumbnail
// @bytes-per-job 4000
// @jobs-per-sec 5
// @threads
// A BullMQ worker whose main thread hands each job to a pool of two
// worker_threads that make image thumbnails (this one file runs as both).
// Each thread memoizes its thumbnails in makeThumbnail keyed by the job's
// image id, which is unique, and never evicts: the threads leak ~4 KB per
// job (the thumbnail rows built in renderThumbnail), ~1.2 MB a minute at
// 5 jobs/s across the pool. The main thread does not leak: it only passes
// messages. The agent runs in every thread (--require applies to
// worker_threads too); each thread is its own instance (thread id).
'use strict';
const { Worker: Thread, isMainThread, parentPort } = require('node:worker_threads');

if (isMainThread) {
  const crypto = require('node:crypto');
  const { Queue, Worker } = require('bullmq');
  const { REDIS, BULLMQ_PREFIX, onShutdown, every } = require('./lib/services');
  const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 5;
  const QUEUE = 'thumbnails';

  const threads = Array.from({ length: 2 }, () => new Thread(__filename));
  const pending = new Map();
  let nextCall = 0;
  for (const t of threads) {
    t.on('message', ({ call, result }) => {
      const done = pending.get(call);
      pending.delete(call);
      if (done) done(result);
    });
  }
  function runOnPool(task) {
    const call = ++nextCall;
    return new Promise((resolve) => {
      pending.set(call, resolve);
      threads[call % threads.length].postMessage({ call, task });
    });
  }

  const queue = new Queue(QUEUE, { connection: REDIS, prefix: BULLMQ_PREFIX });
  const worker = new Worker(QUEUE, (job) => runOnPool(job.data), { connection: REDIS, prefix: BULLMQ_PREFIX, concurrency: 4 });
  worker.on('error', () => {});
  onShutdown(async () => {
    await worker.close(true);
    await queue.obliterate({ force: true });
    await queue.close();
    await Promise.all(threads.map((t) => t.terminate()));
  });

  let seq = 0;
  every(JOBS_PER_SEC, () => {
    seq++;
    queue.add('thumb', { imageId: crypto.randomUUID(), width: 640 + (seq % 5) * 64, height: 480 }, { removeOnComplete: true, removeOnFail: true }).catch(() => {});
  });
} else {
  const thumbnails = new Map();

  function renderThumbnail(task) {
    // 32 rows of 96 "pixels" in a compact text encoding.
    const rows = [];
    for (let y = 0; y < 32; y++) {
      let row = '';
      for (let x = 0; x < 96; x++) row += String.fromCharCode(48 + ((x * task.width + y * task.height) % 64));
      rows.push(row + task.imageId.slice(0, 8));
    }
    return { imageId: task.imageId, width: 96, height: 32, rows };
  }

  function makeThumbnail(task) {
    let t = thumbnails.get(task.imageId);
    if (!t) {
      t = renderThumbnail(task);
      thumbnails.set(task.imageId, t); // BUG: memo keyed by a unique id, never evicted
    }
    return { imageId: t.imageId, bytes: t.rows.length * 104 };
  }

  parentPort.on('message', ({ call, task }) => {
    parentPort.postMessage({ call, result: makeThumbnail(task) });
  });
}
