// @ok
// @jobs-per-sec 40
// An amqplib consumer that prices shipments against a large rate table
// loaded once at start (60,000 routes, ~40 MB on the heap, built in
// loadRateTable) and then only read; every job allocates and drops its quote.
// A big allocation that happens once and stays is not a leak: after the
// load, the table's size never changes.
'use strict';
const amqp = require('amqplib');
const { AMQP_URL, RUN_ID, onShutdown, every } = require('./lib/services');

const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 40;
const ROUTES = Number(process.env.SCENARIO_ROUTES) || 60_000;
const QUEUE = `hwreal-shipments-${RUN_ID}`;

function loadRateTable() {
  // As if read from the rates database at start-up.
  const table = new Map();
  for (let i = 0; i < ROUTES; i++) {
    const from = `DC${i % 97}`;
    const to = `ZIP${10000 + (i % 89000)}`;
    table.set(`${from}>${to}>${i}`, {
      from,
      to,
      carrier: ['ups', 'dhl', 'fedex', 'usps'][i % 4],
      bands: [i % 50, (i % 50) + 5, (i % 50) + 12].map((w) => ({ maxKg: w, price: 4.5 + w * 0.35 })),
      note: `route ${i} via hub ${i % 13}`,
    });
  }
  return table;
}

const rates = loadRateTable();

function quote(shipment) {
  const route = rates.get(shipment.route);
  if (!route) return { route: shipment.route, error: 'no route' };
  const band = route.bands.find((b) => shipment.kg <= b.maxKg) ?? route.bands[route.bands.length - 1];
  return { route: shipment.route, carrier: route.carrier, price: band.price, label: `${route.carrier.toUpperCase()}-${shipment.id}-${route.note}` };
}

async function main() {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  onShutdown(async () => {
    await ch.deleteQueue(QUEUE).catch(() => {});
    await conn.close();
  });
  await ch.assertQueue(QUEUE, { exclusive: true, durable: false });
  await ch.prefetch(16);
  await ch.consume(QUEUE, (msg) => {
    if (!msg) return;
    const q = quote(JSON.parse(msg.content.toString()));
    if (!q.route) throw new Error('bad quote');
    ch.ack(msg);
  });

  let seq = 0;
  every(JOBS_PER_SEC, () => {
    seq++;
    const i = (seq * 7919) % ROUTES;
    const shipment = { id: `s${seq}`, route: `DC${i % 97}>ZIP${10000 + (i % 89000)}>${i}`, kg: seq % 60 };
    ch.sendToQueue(QUEUE, Buffer.from(JSON.stringify(shipment)));
  });
}

main().catch((e) => {
  process.stderr.write(`ok-reference-table: ${e.stack || e}\n`);
  process.exit(1);
});
