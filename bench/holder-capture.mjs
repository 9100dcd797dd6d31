#!/usr/bin/env node
// What a holder capture costs the host (agent/src/holder-capture.ts): the
// main-thread pause while V8 writes the heap snapshot, the worker thread's
// time reading it, and the process's peak RSS above its level before, at
// several heap sizes. Each size runs in a fresh child process whose heap is
// filled with small objects and strings (a worker's caches and records) plus
// 100 parked 100 KB Buffers, so the holder it must find is known.
//
//   node bench/holder-capture.mjs [--sizes-mb 50,100,200] [--json]
//
// Prints a Markdown table and the pause per 100 MB of heap used (the figure
// docs/detector.md#holders quotes).
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { 'sizes-mb': { type: 'string', default: '50,100,200' }, json: { type: 'boolean', default: false } } });
const SIZES = args['sizes-mb'].split(',').map(Number);

const CHILD = `
const { HolderCapture } = require(${JSON.stringify(path.join(ROOT, 'agent/dist/holder-capture.js'))});
const targetBytes = Number(process.argv[1]) * 1024 * 1024;
const records = [];
while (process.memoryUsage().heapUsed < targetBytes) {
  for (let i = 0; i < 10000; i++) records.push({ id: records.length, name: 'customer-' + records.length, tags: ['a', 'b'], at: Date.now() });
}
const parked = [];
for (let i = 0; i < 100; i++) parked.push({ id: i, body: Buffer.alloc(100000, i) });
global.gc?.();
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const c = new HolderCapture({ maxHeapBytes: 64 * 1024 ** 3, cooldownMs: 0, maxHolders: 5, timeoutMs: 600000, log: quiet });
const rssBefore = process.memoryUsage().rss;
let peak = rssBefore;
const poll = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
const t0 = Date.now();
c.request('bench');
const wait = setInterval(() => {
  const a = c.take();
  if (!a) return;
  clearInterval(wait); clearInterval(poll);
  const top = (a.holders || [])[0] || {};
  // The same write again, timed in CPU: on a shared machine the wall-clock
  // pause stretches with the load; its CPU time is what an idle core pays.
  const file = require('node:path').join(require('node:os').tmpdir(), 'heapwatch-bench-' + process.pid + '.heapsnapshot');
  const cpu0 = process.cpuUsage();
  require('node:v8').writeHeapSnapshot(file);
  const cpu = process.cpuUsage(cpu0);
  const fileMb = require('node:fs').statSync(file).size / 1048576;
  require('node:fs').rmSync(file, { force: true });
  process.stdout.write(JSON.stringify({ heapUsedMb: a.heapUsedBytes / 1048576, pauseMs: a.pauseMs, cpuMs: (cpu.user + cpu.system) / 1000, fileMb, parseMs: a.parseMs, totalMs: Date.now() - t0, rssPeakMb: (peak - rssBefore) / 1048576, top: top.path, skipped: a.skipped || null, n: records.length + parked.length }));
}, 20);
`;

const rows = [];
for (const mb of SIZES) {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=4096', '-e', CHILD, String(mb)], { encoding: 'utf8', timeout: 20 * 60_000 });
  if (r.status !== 0) throw new Error(`size ${mb} MB: ${r.stderr}`);
  rows.push({ targetMb: mb, ...JSON.parse(r.stdout) });
}
const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
if (args.json) {
  console.log(JSON.stringify({ load, rows }, null, 2));
} else {
  console.log(`holder capture cost (node ${process.version}, ${os.cpus().length} cores, load ${load})\n`);
  console.log('| heap used | snapshot file | pause (wall) | pause per 100 MB (wall) | write CPU | write CPU per 100 MB | read in worker (wall) | RSS peak above before | top holder |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const x of rows) {
    const per = (v) => ((v / x.heapUsedMb) * 100).toFixed(0);
    console.log(`| ${x.heapUsedMb.toFixed(0)} MB | ${x.fileMb.toFixed(0)} MB | ${x.pauseMs} ms | ${per(x.pauseMs)} ms | ${x.cpuMs.toFixed(0)} ms | ${per(x.cpuMs)} ms | ${x.parseMs} ms | ${x.rssPeakMb.toFixed(0)} MB | ${x.top ?? x.skipped} |`);
  }
}
