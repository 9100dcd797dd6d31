// @ok
// A session worker keeps an LRU of user sessions over an unbounded key space,
// capped at a fixed number of entries: it grows until the cap, then evicts
// one entry per insert and stays flat.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 300;
const CAPACITY = Number(process.env.SCENARIO_KEYS) || 2000;
const TICK_MS = 20;
const lru = new Map();
let seq = 0;

function touchSession(userId) {
  let s = lru.get(userId);
  if (s) {
    lru.delete(userId);
  } else {
    s = { userId, token: `${userId}-${Math.random().toString(36).slice(2)}`, roles: ['reader', 'writer'], prefs: { lang: 'en', tz: 'UTC' } };
    if (lru.size >= CAPACITY) lru.delete(lru.keys().next().value);
  }
  lru.set(userId, s);
  return s;
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) {
    seq++;
    const s = touchSession(`u${seq % 3 === 0 ? seq : seq % 500}`);
    if (!s.token) throw new Error('no token');
  }
}, TICK_MS);
