// @ok
// A rate-limit worker caches per-client token buckets with a TTL; a sweep
// timer evicts expired entries. The live set is rate x TTL: flat once the
// first TTL has passed, with churn underneath.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 500;
const TTL_MS = Number(process.env.SCENARIO_PERIOD_MS) || 3000;
const TICK_MS = 20;
const buckets = new Map();
let seq = 0;
let limited = 0;

function bucketFor(clientId, now) {
  let b = buckets.get(clientId);
  if (!b) {
    b = { clientId, tokens: 10, refilledAt: now, expiresAt: now + TTL_MS, history: [now] };
    buckets.set(clientId, b);
  }
  return b;
}

function sweep() {
  const now = Date.now();
  for (const [k, b] of buckets) if (b.expiresAt <= now) buckets.delete(k);
}

setInterval(sweep, 500);
let credit = 0;
setInterval(() => {
  const now = Date.now();
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) {
    seq++;
    const b = bucketFor(`client-${seq}`, now);
    if (--b.tokens < 0) limited++;
  }
}, TICK_MS);
