// @ok
// A large steady heap (an in-memory index loaded at start) with heavy churn
// on top: each job builds and drops tens of KB of temporary objects.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 400;
const INDEX_ENTRIES = Number(process.env.SCENARIO_KEYS) || 300_000;
const TICK_MS = 20;

function loadIndex() {
  const index = new Map();
  for (let i = 0; i < INDEX_ENTRIES; i++) index.set(`doc-${i}`, { id: i, terms: [`t${i % 1000}`, `t${i % 333}`], score: (i % 100) / 100 });
  return index;
}
const index = loadIndex();
let hits = 0;
let seq = 0;

function search(q) {
  const results = [];
  for (let i = 0; i < 200; i++) {
    const doc = index.get(`doc-${(q * 7919 + i * 104729) % INDEX_ENTRIES}`);
    if (doc) results.push({ id: doc.id, score: doc.score * (1 + (i % 3)), snippet: `...${doc.terms.join(' ')}...` });
  }
  results.sort((a, b) => b.score - a.score);
  return results.slice(0, 10);
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) hits += search(++seq).length;
}, TICK_MS);
