#!/usr/bin/env node
/**
 * Process findings on one real worker: runs a scenario with the agent
 * preloaded against an in-process collector for N profiles, prints each
 * instance's GC counts and how many profiles the previous gauge rule (heap
 * through a trailing minimum of 6, external raw, every profile) would have
 * flagged, then today's decisions (docs/detector.md#process-findings).
 *
 *   npm run build && node bench/leaks/gauges.mjs bench/scenarios/ok/table-at-start.js [jobs-per-sec] [profiles]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const { startCollector } = require('../../collector/dist/index.js');
const { detect, DEFAULT_DETECT, trailingMin } = require('../../collector/dist/leaks/detect.js');
const { decideSeries } = require('../../collector/dist/leaks/rule.js');

const [file, jobs, count] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/leaks/gauges.mjs <scenario.js> [jobs-per-sec] [profiles]');
  process.exit(2);
}
const profiles = Number(count ?? 60);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapwatch-gauges-'));
const c = await startCollector({ grpcPort: 0, httpPort: 0, dataDir: dir, logLevel: 'error', leakEvaluationMs: 0 });
const env = { ...process.env, HEAPWATCH_COLLECTOR: `127.0.0.1:${c.grpcPort}`, HEAPWATCH_SERVICE: 'gauges', HEAPWATCH_INTERVAL_MS: '500', HEAPWATCH_SAMPLING_INTERVAL_BYTES: '16384', HEAPWATCH_LOG_LEVEL: 'error' };
if (jobs) env.SCENARIO_JOBS_PER_SEC = jobs;
const child = spawn(process.execPath, ['--require', require.resolve('../../agent/register.js'), file], { env, stdio: 'inherit' });
try {
  // The default tenant (no tokens configured) is ''.
  const read = () => c.store.forTenant('').profilePoints('gauges', 200, 7 * 24 * 3600_000);
  while ((await read()).length < profiles) await new Promise((r) => setTimeout(r, 1000));
  const points = await read();
  const byInstance = new Map();
  for (const p of points) byInstance.set(p.instance, [...(byInstance.get(p.instance) ?? []), p]);
  const flaggedProfiles = (ys) => {
    let streak = 0;
    let flagged = 0;
    for (let n = 1; n <= ys.length; n++) {
      streak = decideSeries(ys.slice(0, n), DEFAULT_DETECT.processRule).rising ? streak + 1 : 0;
      if (streak >= 3) flagged++;
    }
    return flagged;
  };
  for (const [instance, list] of byInstance) {
    console.log(`${instance}: ${list.length} profiles, ${list.filter((p) => p.afterMajorGc).length} post-GC, ${list.at(-1).majorGcs} major GCs`);
    console.log(`  previous rule, profiles flagged: heap ${flaggedProfiles(trailingMin(list.map((p) => p.heapUsedBytes), 6))}, external ${flaggedProfiles(list.map((p) => p.externalBytes))}`);
  }
  for (const p of detect(points, []).process) console.log(`  now ${p.key}: ${p.positive ? 'FLAGGED' : p.suspect ? 'suspect' : 'not flagged'}, last steps ${p.steps.slice(-5).map((s) => s.trend).join(',')}`);
} finally {
  child.kill('SIGKILL');
  await c.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
