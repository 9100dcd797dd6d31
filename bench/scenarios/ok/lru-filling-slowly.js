// @ok
// A bounded LRU (5,000 entries) over an unbounded key space that takes many
// profile intervals to fill, then stays at its bound. While it fills it is
// indistinguishable from a leak; this scenario measures how long a finding
// lasts after the fill stops (docs/detector.md#known-limits).
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 30;
const CAPACITY = Number(process.env.SCENARIO_KEYS) || 5000;
const TICK_MS = 20;
const lru = new Map();
let seq = 0;

function remember(key) {
  let v = lru.get(key);
  if (v) {
    lru.delete(key);
  } else {
    v = { key, body: `${key}:${'v'.repeat(400)}`, at: Date.now() };
    if (lru.size >= CAPACITY) lru.delete(lru.keys().next().value);
  }
  lru.set(key, v);
  return v;
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) remember(`k${++seq}`);
}, TICK_MS);
