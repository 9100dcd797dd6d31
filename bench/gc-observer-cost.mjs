#!/usr/bin/env node
/**
 * What a life-long perf_hooks 'gc' observer costs a busy worker: every
 * scavenge also produces an entry (Node creates it on the JS side and
 * delivers it in a setImmediate), so an allocation-heavy job loop pays per
 * minor GC, not per major one. Runs an allocation-heavy job loop in child
 * processes with and without the observer, alternating, and prints jobs/s,
 * GCs/s and the ratio.
 *
 *   node bench/gc-observer-cost.mjs [--runs 6] [--ms 3000]
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const child = `
const { PerformanceObserver, constants } = require('node:perf_hooks');
const mode = process.argv[1], ms = Number(process.argv[2]); // node -e: no script path in argv
let gcs = 0, major = 0;
if (mode === 'observer') {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { gcs++; if (e.detail && e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++; }
  }).observe({ entryTypes: ['gc'] });
}
const keep = [];
let jobs = 0;
const until = Date.now() + ms;
const cpu0 = process.cpuUsage();
(function loop() {
  // A job: a few hundred short-lived objects, 1 in 50 kept a while (promoted, then dropped).
  for (let j = 0; j < 200; j++) {
    const o = { id: jobs, payload: 'x'.repeat(100) + jobs, parts: [jobs, jobs + 1, jobs + 2] };
    if (jobs % 50 === 0) { keep.push(o); if (keep.length > 20000) keep.splice(0, 10000); }
    jobs++;
  }
  if (Date.now() < until) setImmediate(loop);
  else setImmediate(() => { const c = process.cpuUsage(cpu0); process.stdout.write(JSON.stringify({ jobsPerSec: jobs / (ms / 1000), cpuUsPerMJobs: ((c.user + c.system) / jobs) * 1e6, gcs, major })); });
})();
`;

const { values } = parseArgs({ options: { runs: { type: 'string', default: '6' }, ms: { type: 'string', default: '3000' } } });
const res = { none: [], observer: [] };
for (let i = 0; i < Number(values.runs); i++) {
  for (const mode of i % 2 ? ['observer', 'none'] : ['none', 'observer']) {
    const r = spawnSync(process.execPath, ['-e', child, mode, values.ms], { encoding: 'utf8' });
    res[mode].push(JSON.parse(r.stdout));
  }
}
console.error(JSON.stringify(res));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
// CPU time per job, not wall-clock throughput: the machine is shared, and wall time measures the neighbours.
const none = 1e12 / median(res.none.map((r) => r.cpuUsPerMJobs));
const obs = 1e12 / median(res.observer.map((r) => r.cpuUsPerMJobs));
const gcsPerSec = median(res.observer.map((r) => r.gcs)) / (Number(values.ms) / 1000);
console.log(`jobs per CPU-second without observer ${Math.round(none)}, with ${Math.round(obs)}: ratio ${(obs / none).toFixed(3)}; ` +
  `${gcsPerSec.toFixed(0)} GC entries/s (major: ${median(res.observer.map((r) => r.major))} per run); ` +
  `cost per entry ~${(((1 / obs - 1 / none) * obs) / gcsPerSec * 1e6).toFixed(1)} us if the difference is real`);
