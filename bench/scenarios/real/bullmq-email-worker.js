// @leak renderTemplate
// @holder getRenderedMessage
// @bytes-per-job 3500
// @jobs-per-sec 6
// A BullMQ worker that sends transactional e-mail. getRenderedMessage keeps
// a cache of rendered messages so a retried job is not rendered twice; the
// cache is keyed by the job's messageId, which is unique per message, and
// never pruned: every job adds ~3.5 KB of rendered HTML and text (built in
// renderTemplate, called by renderMessage, called by getRenderedMessage: the
// owner of the cache is the third frame; 3,528 bytes a message measured as
// heap used after a GC over 20,000 messages). At 6 jobs/s: ~1.3 MB a minute.
'use strict';
const crypto = require('node:crypto');
const { Queue, Worker } = require('bullmq');
const { REDIS, BULLMQ_PREFIX, onShutdown, every } = require('./lib/services');

const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 6;
const QUEUE = 'email';

const TEMPLATES = {
  welcome: { subject: 'Welcome, {{name}}', body: '<p>Hello {{name}},</p><p>Your account {{account}} is ready. {{lorem}}</p>' },
  receipt: { subject: 'Your receipt {{order}}', body: '<p>Dear {{name}},</p><p>Order {{order}} for {{amount}} was paid. {{lorem}}</p>' },
};
const LOREM = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ';

function renderTemplate(text, vars) {
  let out = text;
  for (const [k, v] of Object.entries(vars)) out = out.split(`{{${k}}}`).join(String(v));
  return out;
}

function renderMessage(data) {
  const t = TEMPLATES[data.template];
  const vars = { ...data.vars, lorem: LOREM.repeat(12) + data.messageId };
  const html = renderTemplate(`<html><body>${t.body}<footer>{{account}}</footer></body></html>`, vars);
  return { to: data.to, subject: renderTemplate(t.subject, vars), html, text: renderTemplate(html.replace(/<[^>]+>/g, ' '), vars) };
}

const rendered = new Map();

/** Rendered once per message, so a retried job is not rendered again. */
function getRenderedMessage(data) {
  let msg = rendered.get(data.messageId);
  if (!msg) {
    msg = renderMessage(data);
    rendered.set(data.messageId, msg); // BUG: never evicted, and messageId is unique
  }
  return msg;
}

async function deliver(msg) {
  // The SMTP relay: a short wait, as a network round trip.
  await new Promise((r) => setTimeout(r, 2));
  return msg.html.length + msg.text.length;
}

async function sendEmail(job) {
  const msg = getRenderedMessage(job.data);
  return { bytes: await deliver(msg) };
}

const queue = new Queue(QUEUE, { connection: REDIS, prefix: BULLMQ_PREFIX });
const worker = new Worker(QUEUE, sendEmail, { connection: REDIS, prefix: BULLMQ_PREFIX, concurrency: 4 });
worker.on('error', () => {});
onShutdown(async () => {
  await worker.close(true);
  await queue.obliterate({ force: true });
  await queue.close();
});

let seq = 0;
every(JOBS_PER_SEC, () => {
  seq++;
  const template = seq % 3 ? 'receipt' : 'welcome';
  queue
    .add(template, {
      messageId: crypto.randomUUID(),
      to: `user${seq % 5000}@example.com`,
      template,
      vars: { name: `User ${seq % 5000}`, account: `acct-${seq % 977}`, order: `ord-${seq}`, amount: `${(seq % 300) + 0.99} EUR` },
    }, { removeOnComplete: true, removeOnFail: true })
    .catch(() => {});
});
