// @ok
// A worker that loads its handlers lazily: the first job of each kind
// requires a module and compiles a specialised formatter (new Function), so
// code and module caches grow for a while after start, then stop.
'use strict';
const JOBS_PER_SEC = Number(process.env.SCENARIO_JOBS_PER_SEC) || 200;
const KINDS = ['zlib', 'crypto', 'url', 'querystring', 'util', 'path', 'os', 'stream', 'string_decoder', 'dns', 'http', 'https', 'net', 'readline', 'assert', 'punycode', 'tls', 'dgram'];
const TICK_MS = 20;
const started = Date.now();
const formatters = new Map();
let out = 0;
let seq = 0;

function formatterFor(kind, shape) {
  const key = `${kind}:${shape}`;
  let f = formatters.get(key);
  if (!f) {
    require(`node:${kind}`);
    const fields = Array.from({ length: 6 + shape }, (_, i) => `f${i}`);
    f = new Function('o', `return ${fields.map((k) => `String(o.${k} ?? '')`).join(" + '|' + ")};`);
    formatters.set(key, f);
  }
  return f;
}

let credit = 0;
setInterval(() => {
  // A new kind becomes reachable every 300 ms until all are loaded.
  const reachable = Math.min(KINDS.length, 1 + Math.floor((Date.now() - started) / 300));
  credit += (JOBS_PER_SEC * TICK_MS) / 1000;
  for (; credit >= 1; credit--) {
    seq++;
    const f = formatterFor(KINDS[seq % reachable], seq % 5);
    out += f({ f0: seq, f1: 'x', f2: seq % 7 }).length;
  }
}, TICK_MS);
