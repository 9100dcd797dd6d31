// @leak markSeen
// @bytes-per-job 120
// A queue consumer that deduplicates at-least-once deliveries with a Set of
// job keys. Nothing ever prunes the Set, so it holds every job ever seen.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 500;
const TICK_MS = 20;

const seen = new Set();
let seq = 0;
let processed = 0;

function receive() {
  seq++;
  const redelivery = seq % 10 === 0;
  const id = redelivery ? seq - 5 : seq;
  return { id, queue: 'invoices', body: JSON.stringify({ invoice: id, amount: (id % 1000) / 10, currency: 'EUR' }) };
}

function markSeen(msg) {
  // Message ids are 96-bit: the dedup key is the queue plus the zero-padded hex id.
  const key = `${msg.queue}:${msg.id.toString(16).padStart(24, '0')}`;
  if (seen.has(key)) return false;
  seen.add(key);
  return true;
}

function handle(msg) {
  if (!markSeen(msg)) return;
  const invoice = JSON.parse(msg.body);
  processed += invoice.amount > 50 ? 1 : 0;
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) handle(receive());
}, TICK_MS);
