// @ok
// A pricing worker loads a large reference table at start (product rows on
// the heap, a packed index in a Buffer), then prices jobs against it: every
// job is transient garbage around a big, fixed live set.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 2000;
const ROWS = Number(process.env.SCENARIO_KEYS) || 200_000;
const TICK_MS = 20;

function loadTable() {
  const rows = new Map();
  const index = Buffer.alloc(ROWS * 64);
  for (let i = 0; i < ROWS; i++) {
    rows.set(`sku-${i}`, { sku: `sku-${i}`, price: (i % 997) / 10, tags: [`c${i % 31}`, `b${i % 7}`] });
    index.writeUInt32LE(i, i * 64);
  }
  return { rows, index };
}

const table = loadTable();
let seq = 0;
let total = 0;

function priceJob(id) {
  const lines = Array.from({ length: 10 }, (_, i) => table.rows.get(`sku-${(id * 13 + i) % ROWS}`));
  const quote = { id, lines: lines.map((r) => ({ sku: r.sku, price: r.price, note: `quote ${id} ${r.sku}` })) };
  total += quote.lines.reduce((n, l) => n + l.price, 0) + table.index.readUInt32LE((id % ROWS) * 64);
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) priceJob(++seq);
}, TICK_MS);
