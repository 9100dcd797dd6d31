// @ok
// A log shipper buffers formatted log lines and flushes them on a timer:
// the buffer climbs between flushes and drops to empty at each flush.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 1000;
const FLUSH_MS = Number(process.env.SCENARIO_PERIOD_MS) || 1500;
const TICK_MS = 20;
const buffer = [];
let flushedBytes = 0;
let seq = 0;

function formatLine(evt) {
  return `${new Date(evt.at).toISOString()} level=${evt.level} job=${evt.job} msg="${evt.msg}" duration_ms=${evt.ms}`;
}

function flush() {
  for (const line of buffer.splice(0)) flushedBytes += line.length;
}

setInterval(flush, FLUSH_MS);
let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) {
    seq++;
    buffer.push(formatLine({ at: Date.now(), level: seq % 10 ? 'info' : 'warn', job: seq, msg: 'processed batch', ms: seq % 97 }));
  }
}, TICK_MS);
