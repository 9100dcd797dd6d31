// Reads a callgrind output file (one event, Ir): the total, and for the
// functions a caller asks about, how often they were called and the
// instructions spent in those calls (inclusive). Part 7 uses it to count
// major GCs, scavenges and heap samples inside its measured window, so that
// two variants are only compared when their windows ran the same GCs.
import * as fs from 'node:fs';

/**
 * `wanted`: { key: RegExp } matched against function names. Returns
 * { total, byKey: { key: { calls, inclusive } } }. Inclusive cost is summed
 * over call sites (callgrind's "calls=" lines), so a function that calls
 * itself would be counted more than once; the ones asked for here do not.
 */
export function readCallgrind(file, wanted = {}) {
  const text = fs.readFileSync(file, 'utf8');
  const names = new Map(); // compressed id -> name
  const byKey = Object.fromEntries(Object.keys(wanted).map((k) => [k, { calls: 0, inclusive: 0 }]));
  const keysOf = new Map(); // name -> keys it matches (memo)
  const keys = (name) => {
    let k = keysOf.get(name);
    if (!k) keysOf.set(name, (k = Object.entries(wanted).filter(([, re]) => re.test(name)).map(([key]) => key)));
    return k;
  };
  const nameOf = (spec) => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(spec);
    if (!m) return spec;
    if (m[2] !== undefined) names.set(m[1], m[2]);
    return names.get(m[1]) ?? spec;
  };
  let total = NaN;
  let pendingCall; // keys of the callee whose inclusive cost is on the next cost line
  let callee;
  for (const line of text.split('\n')) {
    if (line.startsWith('summary:')) total = Number(line.slice(8));
    else if (line.startsWith('fn=')) nameOf(line.slice(3));
    else if (line.startsWith('cfn=')) callee = nameOf(line.slice(4));
    else if (line.startsWith('calls=')) {
      const k = callee === undefined ? [] : keys(callee);
      const n = Number(line.slice(6).split(' ')[0]);
      for (const key of k) byKey[key].calls += n;
      pendingCall = k;
    } else if (pendingCall && /^[-+*\d]/.test(line)) {
      const cost = Number(line.trim().split(/\s+/).at(-1));
      for (const key of pendingCall) byKey[key].inclusive += cost;
      pendingCall = undefined;
    }
  }
  return { total, byKey };
}
