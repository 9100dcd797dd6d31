'use strict';
// A queue worker's job loop with a fixed number of trivial jobs, for the
// cost of the agent's queue integrations (bench/job-integrations.mjs): the
// same jobs run with and without an integration, so the difference is what
// the integration adds per job. No clock decides anything: the same job
// count gives the same work (instruction counts under callgrind).
//
// A job parses a small JSON payload and returns a number: about as cheap
// as a job can be, so the integration's share is the largest it can be.
// The libraries' own work per job is stood in for by what the integration
// hooks: a BullMQ Worker emits 'completed' with the job (an EventEmitter),
// an amqplib channel calls the consumer with a message that it then acks
// (an object with consume() and ack()). Every YIELD_EVERY jobs the loop
// yields a macrotask, as a worker waiting on its broker does.
//
// argv[2]: JSON { variant, jobs, agentDir, repeat }. variants:
//   plain, tracked (trackJobs, a fixed name), tracked-named (a name per job),
//   bullmq-none, bullmq, amqp-none, amqp; and bullmq-real: a real BullMQ
//   Worker (with bullmq()) on the machine's Redis, processing `jobs` jobs
//   the parent added to queue `queue` under key prefix `prefix` (what a
//   real job costs the worker, for scale). Output: `RESULT {...}`.
const { EventEmitter } = require('node:events');
const cfg = JSON.parse(process.argv[2]);
const { variant, jobs, agentDir } = cfg;
const hw = require(agentDir);
const YIELD_EVERY = 50;
const NAMES = ['send-email', 'resize-image'];
const PAYLOADS = Array.from({ length: 64 }, (_, i) => JSON.stringify({ n: i, to: `user${i}@example.com` }));

async function handler(job) {
  return JSON.parse(job.data).n * 2;
}

function job(i) {
  return { name: NAMES[i & 1], queueName: 'media', data: PAYLOADS[i & 63], timestamp: i, processedOn: i + 3, finishedOn: i + 5, delay: 0 };
}

function message(i) {
  return { content: PAYLOADS[i & 63], fields: { deliveryTag: i + 1 }, properties: { type: NAMES[i & 1] } };
}

const yieldNow = () => new Promise((r) => setImmediate(r));

async function loop(run) {
  let sum = 0;
  for (let i = 0; i < jobs; i++) {
    sum += await run(i);
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldNow();
  }
  return sum;
}

async function realBullmq() {
  const { Worker } = require('bullmq');
  const connection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };
  let done = 0;
  let finished;
  const all = new Promise((r) => (finished = r));
  const t0 = process.hrtime.bigint();
  const worker = hw.bullmq(new Worker(cfg.queue, (j) => handler(j), { connection, prefix: cfg.prefix, concurrency: 1 }));
  worker.on('completed', () => {
    if (++done === jobs) finished();
  });
  await all;
  const ns = Number(process.hrtime.bigint() - t0);
  await worker.close();
  const stats = hw.jobStats();
  process.stdout.write(`RESULT ${JSON.stringify({ variant, jobs, ns, counted: (stats?.types ?? []).reduce((a, t) => a + t.completed, 0) })}\n`);
}

async function main() {
  if (variant === 'bullmq-real') return realBullmq();
  let run;
  if (variant === 'plain') run = (i) => handler(job(i));
  else if (variant === 'tracked') {
    const h = hw.trackJobs('media', 'send-email', handler);
    run = (i) => h(job(i));
  } else if (variant === 'tracked-named') {
    const h = hw.trackJobs('media', (j) => j.name, handler);
    run = (i) => h(job(i));
  } else if (variant === 'bullmq-none' || variant === 'bullmq') {
    const worker = new EventEmitter();
    worker.name = 'media';
    if (variant === 'bullmq') hw.bullmq(worker);
    run = async (i) => {
      const j = job(i);
      const r = await handler(j);
      worker.emit('completed', j, r, 'active');
      return r;
    };
  } else if (variant === 'amqp-none' || variant === 'amqp') {
    const ch = {
      consume(queue, cb) {
        this.deliver = cb;
        return { consumerTag: 'c' };
      },
      ack() {},
    };
    if (variant === 'amqp') hw.amqplib(ch);
    ch.consume('media', async (msg) => {
      const r = await handler({ data: msg.content });
      ch.ack(msg);
      return r;
    });
    run = (i) => ch.deliver(message(i));
  } else throw new Error(`unknown variant ${variant}`);
  const t0 = process.hrtime.bigint();
  const sum = await loop(run);
  const ns = Number(process.hrtime.bigint() - t0);
  const stats = hw.jobStats();
  const counted = (stats?.types ?? []).reduce((a, t) => a + t.completed + t.failed, 0);
  process.stdout.write(`RESULT ${JSON.stringify({ variant, jobs, sum, ns, counted })}\n`);
}

main();
