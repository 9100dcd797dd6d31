// @leak parkForRetry
// @holder parkForRetry
// @offheap
// @bytes-per-job 100000
// @jobs-per-sec 0.2
// An amqplib consumer that uploads documents to a storage API. When an
// upload fails, the message is acked and parked in a retry list with its
// payload Buffer (msg.content, ~100 KB) so it can be replayed later; the
// replay loop only runs while the API reports healthy, which it never does
// during this outage, so the list is never drained. The holder is
// parkForRetry. The ~100 KB per message is off-heap (a Buffer's bytes live
// outside the V8 heap: the sampler sees only the small Buffer object, which
// amqplib allocates while parsing the frame); the parked record itself
// (~300 B on the heap) is built in parkForRetry. At 0.2 messages/s: ~1.2 MB
// a minute, almost all of it external memory.
'use strict';
const crypto = require('node:crypto');
const amqp = require('amqplib');
const { AMQP_URL, RUN_ID, onShutdown, every } = require('./lib/services');

const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 0.2;
const PAYLOAD_BYTES = Number(process.env.SCENARIO_PAYLOAD_BYTES) || 100_000;
const QUEUE = `hwreal-documents-${RUN_ID}`;

const parked = [];
let storageHealthy = false;

async function uploadDocument(doc) {
  // The storage API answers 503 throughout the outage.
  await new Promise((r) => setTimeout(r, 5));
  if (!storageHealthy) throw new Error('503 Service Unavailable');
}

function parkForRetry(msg, err) {
  parked.push({
    id: msg.properties.messageId,
    routingKey: msg.fields.routingKey,
    headers: { ...msg.properties.headers },
    body: msg.content, // BUG: the whole payload stays parked until a replay that never comes
    error: err.message,
    attempts: 1,
    parkedAt: Date.now(),
  });
}

setInterval(() => {
  if (!storageHealthy) return;
  parked.splice(0, 50);
}, 10_000);

async function main() {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  onShutdown(async () => {
    await ch.deleteQueue(QUEUE).catch(() => {});
    await conn.close();
  });
  // Exclusive: RabbitMQ deletes the queue when this connection closes, killed or not.
  await ch.assertQueue(QUEUE, { exclusive: true, durable: false });
  await ch.prefetch(4);
  await ch.consume(QUEUE, async (msg) => {
    if (!msg) return;
    try {
      await uploadDocument({ id: msg.properties.messageId, content: msg.content });
    } catch (err) {
      parkForRetry(msg, err);
    }
    ch.ack(msg);
  });

  // The producer: scanned documents arriving from the intake service.
  let seq = 0;
  every(JOBS_PER_SEC, () => {
    seq++;
    const content = crypto.randomBytes(PAYLOAD_BYTES);
    ch.sendToQueue(QUEUE, content, { messageId: `doc-${seq}`, contentType: 'application/pdf', headers: { tenant: `t${seq % 13}` } });
  });
}

main().catch((e) => {
  process.stderr.write(`amqp-retry-parking: ${e.stack || e}\n`);
  process.exit(1);
});
