// @leak fetchCustomer
// @holder enrichOrder
// @bytes-per-job 5000
// @jobs-per-sec 4
// An amqplib consumer that enriches orders with the customer's profile from
// an internal HTTP API (`await fetch()`; the scenario starts that API itself
// as a sibling process on 127.0.0.1, port 0, without the agent). enrichOrder
// keeps every enriched order in a map keyed by order id "for the status
// page", never pruned: each job retains the customer profile parsed from
// the response (~5 KB of objects and strings). Those bytes are allocated by
// the response body parser (undici, inside Node) in a continuation after
// the await: no application frame is on the allocating stack. The code a
// developer can act on is fetchCustomer (which awaits the data) and its
// caller enrichOrder (which keeps it). ~1.2 MB a minute at 4 jobs/s.
'use strict';
const http = require('node:http');
const { fork } = require('node:child_process');

if (process.env.SCENARIO_ROLE === 'customer-api') {
  // The customer API: a profile of ~3 KB of JSON per customer.
  const server = http.createServer((req, res) => {
    const id = decodeURIComponent(req.url.split('/').pop());
    const body = JSON.stringify({
      id,
      name: `Customer ${id}`,
      segment: ['retail', 'smb', 'enterprise'][id.length % 3],
      addresses: Array.from({ length: 3 }, (_, i) => ({ street: `${i + 1} Main Street`, city: 'Springfield', zip: `${10000 + i}`, country: 'US' })),
      preferences: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`pref${i}`, `value-${i}-${id}`])),
      history: Array.from({ length: 20 }, (_, i) => ({ order: `o-${i}-${id}`, total: i * 3.25, at: new Date(Date.UTC(2026, 0, 1 + i)).toISOString() })),
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
} else {
  const amqp = require('amqplib');
  const { AMQP_URL, RUN_ID, onShutdown, every } = require('./lib/services');
  const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 4;
  const QUEUE = `hwreal-orders-${RUN_ID}`;

  const enriched = new Map();

  async function fetchCustomer(base, customerId) {
    const res = await fetch(`${base}/customers/${encodeURIComponent(customerId)}`);
    if (!res.ok) throw new Error(`customer API: ${res.status}`);
    return res.json();
  }

  async function enrichOrder(base, order) {
    const customer = await fetchCustomer(base, order.customerId);
    enriched.set(order.id, { order, customer, enrichedAt: Date.now() }); // BUG: never pruned
    return customer.segment;
  }

  async function main() {
    // The API runs without the agent (and without --require).
    const api = fork(__filename, [], { env: { ...process.env, SCENARIO_ROLE: 'customer-api' }, execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const port = await new Promise((resolve, reject) => {
      api.once('message', (m) => resolve(m.port));
      api.once('exit', (code) => reject(new Error(`customer API exited with ${code}`)));
    });
    onShutdown(() => api.kill());
    process.on('exit', () => api.kill());
    const base = `http://127.0.0.1:${port}`;

    const conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createChannel();
    onShutdown(async () => {
      await ch.deleteQueue(QUEUE).catch(() => {});
      await conn.close();
    });
    await ch.assertQueue(QUEUE, { exclusive: true, durable: false });
    await ch.prefetch(8);
    await ch.consume(QUEUE, async (msg) => {
      if (!msg) return;
      try {
        await enrichOrder(base, JSON.parse(msg.content.toString()));
        ch.ack(msg);
      } catch {
        ch.nack(msg, false, false);
      }
    });

    let seq = 0;
    every(JOBS_PER_SEC, () => {
      seq++;
      const order = { id: `order-${RUN_ID}-${seq}`, customerId: `c${seq}`, total: (seq % 90) + 0.5 };
      ch.sendToQueue(QUEUE, Buffer.from(JSON.stringify(order)), { contentType: 'application/json' });
    });
  }

  main().catch((e) => {
    process.stderr.write(`fetch-enricher: ${e.stack || e}\n`);
    process.exit(1);
  });
}
