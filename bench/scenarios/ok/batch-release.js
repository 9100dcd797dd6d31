// @ok
// A reporting worker accumulates rows for a large export and releases the
// whole batch when it ships it every few seconds: big peaks, same floor.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 2000;
const SHIP_EVERY_MS = Number(process.env.SCENARIO_PERIOD_MS) || 2000;
const TICK_MS = 20;
let batch = [];
let shipped = 0;
let seq = 0;

function addRow(event) {
  batch.push({ id: event.id, account: `acct-${event.id % 977}`, amount: event.id % 1000, memo: `payment ${event.id} for invoice ${event.id * 3}` });
}

function ship() {
  const bytes = batch.reduce((n, r) => n + r.memo.length, 0);
  shipped += bytes;
  batch = [];
}

setInterval(ship, SHIP_EVERY_MS);
let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) addRow({ id: ++seq });
}, TICK_MS);
