// @leak subscribe
// @bytes-per-job 400
// A worker that holds a connection to a message broker. The connection drops
// often; each reconnect calls subscribe(), which adds a new 'message' listener
// to the long-lived client emitter instead of replacing the old one.
'use strict';
const { EventEmitter } = require('node:events');
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 100; // reconnects per second
const TICK_MS = 20;

const client = new EventEmitter();
client.setMaxListeners(0);
let connId = 0;
let handled = 0;

function subscribe(topic) {
  const ctx = { connId: ++connId, topic, since: Date.now(), filters: [`${topic}.created`, `${topic}.updated`, `${topic}.deleted`], stats: { seen: 0, bytes: 0 } };
  client.on('message', (msg) => {
    if (!ctx.filters.includes(msg.type)) return;
    ctx.stats.seen++;
    ctx.stats.bytes += msg.body.length;
    handled++;
  });
}

function reconnect() {
  subscribe('orders');
}

setInterval(() => {
  client.emit('message', { type: 'orders.created', body: JSON.stringify({ id: handled, at: Date.now() }) });
}, 50);

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) reconnect();
}, TICK_MS);
