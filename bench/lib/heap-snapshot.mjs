// Reads a V8 .heapsnapshot (v8.writeHeapSnapshot) into totals per
// constructor, and diffs two of them: what part 2 compares before and after
// a long run, to name whatever grew rather than only see that heapUsed did.
import * as fs from 'node:fs';

/** Objects, closures and native objects by constructor name; everything else by node type ("(string)", "(code)", ...). */
const NAMED_TYPES = new Set(['object', 'closure', 'native', 'regexp']);

/** Map of group name -> { count, bytes } (self sizes), plus the totals. */
export function summarizeSnapshot(file) {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const { nodes, strings } = snap;
  const groups = new Map();
  let count = 0;
  let bytes = 0;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + typeAt]];
    const key = NAMED_TYPES.has(type) ? strings[nodes[i + nameAt]] || `(anonymous ${type})` : `(${type})`;
    const size = nodes[i + sizeAt];
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(key, g);
    count++;
    bytes += size;
  }
  return { groups, count, bytes };
}

/** Groups whose self size changed the most between two summaries, largest growth first. */
export function diffSnapshots(before, after, top = 10) {
  const keys = new Set([...before.groups.keys(), ...after.groups.keys()]);
  const rows = [];
  for (const k of keys) {
    const a = before.groups.get(k) ?? { count: 0, bytes: 0 };
    const b = after.groups.get(k) ?? { count: 0, bytes: 0 };
    if (a.bytes !== b.bytes || a.count !== b.count) rows.push({ name: k, countBefore: a.count, countAfter: b.count, bytesBefore: a.bytes, bytesAfter: b.bytes, delta: b.bytes - a.bytes });
  }
  rows.sort((x, y) => y.delta - x.delta);
  const byName = new Map(rows.map((r) => [r.name, r.delta]));
  return {
    /** Bytes grown by one group (0 if unchanged); a function, so not in the JSON results. */
    deltaOf: (name) => byName.get(name) ?? 0, totalBefore: before.bytes, totalAfter: after.bytes, countBefore: before.count, countAfter: after.count, grew: rows.slice(0, top), shrank: rows.slice(-3).reverse().filter((r) => r.delta < 0) };
}
