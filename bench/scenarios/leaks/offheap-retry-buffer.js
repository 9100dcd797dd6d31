// @leak (external)
// @bytes-per-job 8192
// A webhook worker keeps the raw body (a Buffer) of every failed delivery in
// a retry list that is never drained: the JS side holds only small Buffer
// wrappers, the bytes are off-heap, so no heap site can show the leak and
// the process's external memory is the finding.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 50;
const TICK_MS = 20;
const retries = [];
let seq = 0;

function deliver(id) {
  const body = Buffer.from(JSON.stringify({ id, event: 'invoice.paid', pad: 'x'.repeat(8000) }));
  const transient = Buffer.alloc(4096, 1); // headers, signature: garbage
  if (transient[0] !== 1) throw new Error('bad');
  if (id % 1 === 0) retries.push(body); // the downstream is down: every delivery fails
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) deliver(++seq);
}, TICK_MS);
