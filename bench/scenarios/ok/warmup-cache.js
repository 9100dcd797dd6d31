// @ok
// A catalog worker caches product records by SKU. The key space is bounded
// (a few thousand SKUs), so the cache fills during warm-up and levels off.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 300;
const SKUS = Number(process.env.SCENARIO_KEYS) || 600;
const TICK_MS = 20;
const catalog = new Map();
let seq = 0;
let total = 0;

function loadProduct(sku) {
  let p = catalog.get(sku);
  if (!p) {
    p = { sku, name: `Product ${sku}`, description: `Long description of product ${sku}, with care instructions and specifications. `.repeat(24), price: (sku % 500) + 0.99, tags: [`cat-${sku % 20}`, `brand-${sku % 50}`] };
    catalog.set(sku, p);
  }
  return p;
}

function handle(order) {
  const p = loadProduct(order.sku);
  total += JSON.stringify({ sku: p.sku, qty: order.qty, price: p.price }).length;
}

let credit = 0;
setInterval(() => {
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) {
    seq++;
    handle({ sku: Math.floor(Math.random() * SKUS), qty: 1 + (seq % 4) });
  }
}, TICK_MS);
