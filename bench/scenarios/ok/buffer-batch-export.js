// @ok
// An export worker renders rows into Buffers (off-heap backing stores) for a
// large batch and releases the batch when it uploads it every few seconds:
// external memory saws up and falls back to the same floor.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 1000;
const SHIP_EVERY_MS = Number(process.env.SCENARIO_PERIOD_MS) || 2000;
const TICK_MS = 20;
let batch = [];
let uploaded = 0;
let seq = 0;

function renderRow(id) {
  const b = Buffer.alloc(16 * 1024, id % 251);
  b.write(`row ${id} account acct-${id % 977}`);
  batch.push(b);
}

function upload() {
  uploaded += batch.reduce((n, b) => n + b.length, 0);
  batch = [];
}

setInterval(upload, SHIP_EVERY_MS);
let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) renderRow(++seq);
}, TICK_MS);
