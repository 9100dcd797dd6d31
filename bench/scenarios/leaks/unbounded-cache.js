// @leak quoteFor
// @bytes-per-job 400
// A pricing worker memoizes quotes in a Map keyed by (customer, product,
// quantity, minute): the key space never repeats, so the "cache" only grows.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 200;
const TICK_MS = 20;
const quotes = new Map();
let seq = 0;
let revenue = 0;

function quoteFor(req) {
  const key = `${req.customer}|${req.product}|${req.qty}|${req.at}`;
  let q = quotes.get(key);
  if (!q) {
    const unit = 10 + (req.product % 37) * 0.25;
    q = { key, unit, total: unit * req.qty, text: `Quote for ${req.customer}: ${req.qty} x product ${req.product} at ${unit.toFixed(2)} EUR`, validUntil: req.at + 900 };
    quotes.set(key, q);
  }
  return q;
}

function handle(req) {
  const q = quoteFor(req);
  const line = JSON.stringify({ customer: req.customer, total: q.total });
  revenue += line.length > 0 ? q.total : 0;
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) {
    seq++;
    handle({ customer: `c${seq % 5000}`, product: seq % 211, qty: 1 + (seq % 9), at: seq });
  }
}, TICK_MS);
