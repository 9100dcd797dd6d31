// Synthetic but realistic Node heap profiles, shaped like what
// @datadog/pprof's heap.profile() serialises: one location per
// (function, line), stacks 8-40 frames deep that share their roots, sample
// types objects/count + space/bytes, one or two samples per stack (one per
// allocation size), and values that are multiples of a sampling estimate.
//
// Consecutive profiles of one instance are alike, as in life: most stacks
// keep their value, some drift a little, a few appear or vanish.
import * as zlib from 'node:zlib';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';

import { rng } from '../../scripts/lib/rng.mjs';

export { rng };

const VERBS = ['parse', 'build', 'handle', 'process', 'load', 'encode', 'decode', 'read', 'write', 'merge', 'resolve', 'validate', 'map', 'emit', 'retry', 'flush', 'fetch', 'apply'];
const NOUNS = ['Job', 'Message', 'Batch', 'Record', 'Row', 'Payload', 'Header', 'Buffer', 'Cache', 'Entry', 'Request', 'Response', 'Event', 'Chunk', 'Token', 'Schema', 'Query', 'Frame'];
const MODULES = ['worker', 'queue', 'jobs/invoice', 'jobs/email', 'jobs/report', 'db/pool', 'db/query', 'cache/lru', 'http/client', 'codec/json', 'codec/avro', 'retry', 'metrics', 'config'];
const PACKAGES = ['pg', 'ioredis', 'bullmq', 'undici', 'protobufjs', 'lodash', 'ajv', 'pino', 'zod', 'luxon'];
const ROOTS = [
  ['processTicksAndRejections', 'node:internal/process/task_queues', 95],
  ['listOnTimeout', 'node:internal/timers', 569],
  ['emit', 'node:events', 517],
  ['runMicrotasks', '', 0],
  ['(anonymous)', 'node:internal/main/run_main_module', 28],
];
const BUILTINS = [['push', '', 0], ['slice', '', 0], ['parse', '', 0], ['stringify', '', 0], ['concat', '', 0], ['(V8 API)', '', 0], ['map', '', 0]];

/** A code base: a pool of functions, with files and start lines. */
function codebase(rand, functionCount) {
  const fns = [];
  for (let i = 0; i < functionCount; i++) {
    const verb = VERBS[Math.floor(rand() * VERBS.length)];
    const noun = NOUNS[Math.floor(rand() * NOUNS.length)];
    const vendored = rand() < 0.4;
    const file = vendored
      ? `/srv/app/node_modules/${PACKAGES[Math.floor(rand() * PACKAGES.length)]}/lib/${noun.toLowerCase()}.js`
      : `/srv/app/dist/${MODULES[Math.floor(rand() * MODULES.length)]}.js`;
    fns.push([`${verb}${noun}${i % 7 === 0 ? '' : i}`, file, 1 + Math.floor(rand() * 900)]);
  }
  return fns;
}

/**
 * The distinct stacks of one service: a random trie over the code base, so
 * that stacks share prefixes (roots) the way call trees do. Leaf first.
 */
export function serviceStacks(seed, stackCount) {
  const rand = rng(seed);
  const fns = codebase(rand, Math.max(200, Math.round(stackCount / 3)));
  const seen = new Set();
  const stacks = [];
  // Inner paths are reused by many stacks: pick from a pool of prefixes.
  const prefixes = [];
  for (let i = 0; i < Math.max(20, stackCount / 25); i++) {
    const root = ROOTS[Math.floor(rand() * ROOTS.length)];
    const depth = 4 + Math.floor(rand() * 16);
    const path = [root];
    for (let d = 0; d < depth; d++) path.push(fns[Math.floor(rand() * fns.length)]);
    prefixes.push(path);
  }
  while (stacks.length < stackCount) {
    const prefix = prefixes[Math.floor(rand() * prefixes.length)];
    const tail = [];
    const extra = 2 + Math.floor(rand() * 14);
    for (let d = 0; d < extra; d++) tail.push(fns[Math.floor(rand() * fns.length)]);
    if (rand() < 0.5) tail.push(BUILTINS[Math.floor(rand() * BUILTINS.length)]);
    const rootFirst = [...prefix, ...tail];
    const key = rootFirst.map((f) => f[0] + f[1]).join('|');
    if (seen.has(key)) continue;
    seen.add(key);
    stacks.push(rootFirst.reverse());
  }
  return stacks;
}

const SAMPLING_INTERVAL_BYTES = 512 * 1024;

/**
 * One instance of a service: its live values evolve from profile to profile.
 * `next()` returns the next snapshot as [stackIndex, objects, bytes] entries.
 */
export class InstanceSeries {
  constructor(stacks, seed, { presentFraction = 1 / 1.1, driftFraction = 0.1, churnFraction = 0.02 } = {}) {
    this.stacks = stacks;
    this.rand = rng(seed);
    this.driftFraction = driftFraction;
    this.churnFraction = churnFraction;
    this.objects = new Float64Array(stacks.length);
    this.sizes = new Float64Array(stacks.length);
    for (let i = 0; i < stacks.length; i++) {
      // Object sizes of a sampling profiler: sizes are real object sizes;
      // counts are unbiased estimates (count * 1/(1-exp(-size/interval))).
      this.sizes[i] = 16 * (1 + Math.floor(this.rand() ** 3 * 4096));
      this.objects[i] = this.rand() < presentFraction ? this.sampleCount() : 0;
    }
  }

  sampleCount() {
    return 1 + Math.floor(-Math.log(1 - this.rand()) * 6);
  }

  next() {
    const n = this.stacks.length;
    const drift = Math.round(n * this.driftFraction);
    for (let k = 0; k < drift; k++) {
      const i = Math.floor(this.rand() * n);
      if (this.objects[i] > 0) this.objects[i] = Math.max(1, this.objects[i] + (this.rand() < 0.5 ? -1 : 1));
    }
    // As many stacks appear as vanish, so the live count stays put.
    let vanish = Math.round((n * this.churnFraction) / 2);
    let appear = vanish;
    for (let tries = 0; (vanish > 0 || appear > 0) && tries < 100 * n; tries++) {
      const i = Math.floor(this.rand() * n);
      if (this.objects[i] > 0 && vanish > 0) {
        this.objects[i] = 0;
        vanish--;
      } else if (this.objects[i] === 0 && appear > 0) {
        this.objects[i] = this.sampleCount();
        appear--;
      }
    }
    const out = [];
    for (let i = 0; i < n; i++) {
      const count = this.objects[i];
      if (count === 0) continue;
      const size = this.sizes[i];
      const scale = 1 / (1 - Math.exp(-size / SAMPLING_INTERVAL_BYTES));
      const objects = Math.round(count * scale);
      out.push([i, objects, Math.round(objects * size)]);
    }
    return out;
  }
}

/**
 * Encodes a snapshot of `stacks` as a gzipped pprof heap profile.
 *
 * The part that is the same in every profile of a service (string table,
 * functions, locations, sample types) is encoded once with pprof-format and
 * kept; only the samples are written per snapshot, by hand, because building
 * pprof-format objects for 5,000 samples takes ~70 ms and the load generator
 * needs thousands of profiles.
 */
export function encodeProfile(stacks, snapshot, timeMs) {
  const base = baseOf(stacks);
  const parts = [base.bytes];
  const w = new Writer();
  for (const [i, objects, bytes] of snapshot) {
    const locs = base.stackLocations[i];
    // Two allocation sizes on some stacks, as the sampler reports them.
    if (objects > 3 && i % 3 === 0) {
      const a = Math.floor(objects / 2);
      const ab = Math.round((bytes * a) / objects);
      w.sample(locs, a, ab);
      w.sample(locs, objects - a, bytes - ab);
    } else {
      w.sample(locs, objects, bytes);
    }
  }
  parts.push(w.finish());
  // time_nanos (field 9)
  const t = new Writer();
  t.varint(9 << 3);
  t.varint(timeMs * 1e6);
  parts.push(t.finish());
  return zlib.gzipSync(Buffer.concat(parts));
}

const bases = new WeakMap();
function baseOf(stacks) {
  let base = bases.get(stacks);
  if (base) return base;
  const strings = new StringTable();
  const functions = new Map();
  const locations = new Map();
  const loc = (frame) => {
    const key = `${frame[0]}\0${frame[1]}\0${frame[2]}`;
    let l = locations.get(key);
    if (!l) {
      const fn = new PFunction({ id: functions.size + 1, name: strings.dedup(frame[0]), systemName: strings.dedup(frame[0]), filename: strings.dedup(frame[1]), startLine: frame[2] });
      functions.set(key, fn);
      l = new Location({ id: locations.size + 1, line: [new Line({ functionId: fn.id, line: frame[2] })] });
      locations.set(key, l);
    }
    return l.id;
  };
  const stackLocations = stacks.map((frames) => frames.map(loc));
  const profile = new Profile({
    sampleType: [new ValueType({ type: strings.dedup('objects'), unit: strings.dedup('count') }), new ValueType({ type: strings.dedup('space'), unit: strings.dedup('bytes') })],
    periodType: new ValueType({ type: strings.dedup('space'), unit: strings.dedup('bytes') }),
    period: SAMPLING_INTERVAL_BYTES,
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: strings,
  });
  base = { bytes: Buffer.from(profile.encode()), stackLocations };
  bases.set(stacks, base);
  return base;
}

/** Just enough of a protobuf writer for Sample messages. */
class Writer {
  constructor() {
    this.buf = Buffer.alloc(1 << 16);
    this.pos = 0;
  }
  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  varint(v) {
    this.ensure(10);
    while (v >= 128) {
      this.buf[this.pos++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }
  static size(v) {
    let n = 1;
    while (v >= 128) {
      v = Math.floor(v / 128);
      n++;
    }
    return n;
  }
  sample(locationIds, objects, bytes) {
    let locLen = 0;
    for (const id of locationIds) locLen += Writer.size(id);
    const valLen = Writer.size(objects) + Writer.size(bytes);
    const inner = 1 + Writer.size(locLen) + locLen + 1 + Writer.size(valLen) + valLen;
    this.varint((2 << 3) | 2);
    this.varint(inner);
    this.varint((1 << 3) | 2);
    this.varint(locLen);
    for (const id of locationIds) this.varint(id);
    this.varint((2 << 3) | 2);
    this.varint(valLen);
    this.varint(objects);
    this.varint(bytes);
  }
  finish() {
    return this.buf.subarray(0, this.pos);
  }
}
