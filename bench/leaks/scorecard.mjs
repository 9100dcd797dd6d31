#!/usr/bin/env node
/**
 * Leak detector scorecard: runs the scenario corpus (bench/scenarios) against
 * a real collector (`heapwatch serve`, embedded ClickHouse) with the agent
 * preloaded in each worker, and prints per scenario whether it was flagged,
 * the reported site against the true one and the profile intervals from
 * leak onset (process start) to the flag; then recall, false flags, top-1
 * attribution and median intervals to detect, for each sampling interval.
 *
 *   node bench/leaks/scorecard.mjs [--interval-ms 500] [--sampling 16384,65536]
 *        [--only retry-buffer,warmup-cache] [--parallel 3] [--gc-assist-budget 0.05] [--json]
 *
 * --gc-assist-budget B is the agent's HEAPWATCH_GC_ASSIST_BUDGET. The
 * detector judges memory after major GCs; the corpus workers allocate
 * little, so V8 runs one only every 15-40 s, and the agent forces one before
 * a profile when V8 ran none (GcAssist, agent/src/gc-assist.ts). The default
 * 0.05 gives 500 ms profiles the proportions of production's 60 s ones (see
 * bench/scenarios/runner.mjs); 0 measures V8's own GCs alone.
 *
 * Leak rates are set relative to the sampling interval S: a "fast" run leaks
 * ~2 S per profile interval (target: flagged within 20 intervals), a "slow"
 * run ~S/4 (target: within 120). The rate comes from each scenario's
 * `@bytes-per-job` estimate; the measured rate (the detector's own growth
 * figure) is printed next to it, with the profiles the detection-time formula
 * predicts at that rate (median-p90, docs/detector.md#detection-time). Non-leak scenarios get their periods in
 * profile intervals (a warm-up of ~3 intervals, a flush every 3, ...), the
 * proportions a 60 s production interval gives these shapes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { pool } from '../lib/pool.mjs';
import { SCENARIO_GC_ASSIST_BUDGET, listScenarios, runScenario, scaledMinGrowthMs, startCollector } from '../scenarios/runner.mjs';

// The detection-time formula (docs/detector.md#detection-time), from the build.
const { profilesToFlag } = createRequire(import.meta.url)('../../collector/dist/leaks/detection-time.js');


const { values: args } = parseArgs({
  options: {
    'interval-ms': { type: 'string', default: '500' },
    sampling: { type: 'string', default: '16384,65536' },
    only: { type: 'string' },
    parallel: { type: 'string', default: '3' },
    'fast-intervals': { type: 'string', default: '40' },
    'slow-intervals': { type: 'string', default: '140' },
    'ok-intervals': { type: 'string', default: '60' },
    'gc-assist-budget': { type: 'string', default: String(SCENARIO_GC_ASSIST_BUDGET) },
    json: { type: 'boolean', default: false },
  },
});
const INTERVAL_MS = Number(args['interval-ms']);
const SAMPLINGS = args.sampling.split(',').map(Number);
const PARALLEL = Number(args.parallel);
const ONLY = args.only ? new Set(args.only.split(',')) : null;
const GC_ASSIST_BUDGET = Number(args['gc-assist-budget']);

function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function summarize(results) {
  const fast = results.filter((r) => r.kind === 'leak' && r.mode === 'fast');
  const slow = results.filter((r) => r.kind === 'leak' && r.mode === 'slow');
  const ok = results.filter((r) => r.kind === 'ok');
  const leaks = [...fast, ...slow];
  return {
    recall: `${leaks.filter((r) => r.flagged).length}/${leaks.length}`,
    falseFlags: `${ok.filter((r) => r.flagged).length}/${ok.length}`,
    top1: `${leaks.filter((r) => r.reported === r.trueSite).length}/${leaks.length}`,
    medianIntervalsFast: median(fast.filter((r) => r.flagged).map((r) => r.intervalsToFlag)),
    fastWithin20: `${fast.filter((r) => r.flagged && r.intervalsToFlag <= 20).length}/${fast.length}`,
    medianIntervalsSlow: median(slow.filter((r) => r.flagged).map((r) => r.intervalsToFlag)),
    slowWithin120: `${slow.filter((r) => r.flagged && r.intervalsToFlag <= 120).length}/${slow.length}`,
    // Runs flagged within the formula's 90th-percentile bound, at the rate the detector measured.
    withinFormula: `${leaks.filter((r) => r.flagged && r.measuredRate && r.intervalsToFlag <= 1.25 * profilesToFlag(r.measuredRate, 'p90')).length}/${leaks.length}`,
  };
}

function printTable(samplingBytes, results, summary) {
  const rows = results.map((r) => [
    r.scenario,
    r.kind === 'leak' ? `leak/${r.mode}` : 'ok',
    r.flagged ? 'FLAGGED' : '-',
    r.kind === 'leak' ? r.trueSite : '-',
    r.reported ?? '-',
    r.kind === 'leak' ? (r.reported === r.trueSite ? 'yes' : 'NO') : r.flagged ? 'FALSE FLAG' : 'ok',
    r.intervalsToFlag === null ? '-' : String(r.intervalsToFlag),
    r.measuredRate === null ? '-' : `${r.measuredRate.toFixed(2)}x`,
    r.measuredRate === null ? '-' : `${profilesToFlag(r.measuredRate)}-${profilesToFlag(r.measuredRate, 'p90')}`,
    r.error ?? (r.reported && r.reported !== r.trueSite ? r.reportedAt : ''),
  ]);
  const head = ['SCENARIO', 'KIND', 'RESULT', 'TRUE SITE', 'REPORTED', 'TOP-1', 'INTERVALS', 'GROWTH/S', 'FORMULA', 'NOTE'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  console.log(`\n== sampling interval ${samplingBytes} B, profile interval ${INTERVAL_MS} ms, ${GC_ASSIST_BUDGET > 0 ? `agent GC assist budget ${GC_ASSIST_BUDGET}` : "V8's own GCs only (GC assist off)"} ==`);
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(
    `recall ${summary.recall}  false flags ${summary.falseFlags}  top-1 ${summary.top1}  ` +
      `median intervals to flag: fast (2x S) ${summary.medianIntervalsFast ?? '-'} (${summary.fastWithin20} within 20), ` +
      `slow (S/4) ${summary.medianIntervalsSlow ?? '-'} (${summary.slowWithin120} within 120), ` +
      `${summary.withinFormula} within the detection-time formula's p90 bound`,
  );
}

async function main() {
  const scenarios = listScenarios().filter((s) => !ONLY || ONLY.has(s.name));
  const all = {};
  for (const samplingBytes of SAMPLINGS) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapwatch-scorecard-'));
    const collector = await startCollector(dataDir, { minGrowthMs: scaledMinGrowthMs(INTERVAL_MS) });
    try {
      const runs = [];
      for (const sc of scenarios) {
        if (sc.kind === 'leak') {
          runs.push({ sc, mode: 'fast', maxIntervals: Number(args['fast-intervals']) });
          if (sc.name === 'slow-leak' || sc.name === 'retry-buffer') runs.push({ sc, mode: 'slow', maxIntervals: Number(args['slow-intervals']) });
        } else {
          runs.push({ sc, mode: 'ok', maxIntervals: Number(args['ok-intervals']) });
        }
      }
      // Long runs first so the pool finishes together.
      runs.sort((a, b) => b.maxIntervals - a.maxIntervals);
      const results = await pool(
        runs.map((r) => () =>
          runScenario(collector, r.sc, { mode: r.mode, samplingBytes, intervalMs: INTERVAL_MS, maxIntervals: r.maxIntervals, service: `${r.sc.name}-${r.mode}-${samplingBytes}`, gcAssistBudget: GC_ASSIST_BUDGET }),
        ),
        PARALLEL,
      );
      results.sort((a, b) => (a.kind === b.kind ? a.scenario.localeCompare(b.scenario) || a.mode.localeCompare(b.mode) : a.kind === 'leak' ? -1 : 1));
      const summary = summarize(results);
      all[samplingBytes] = { results, summary };
      if (!args.json) printTable(samplingBytes, results, summary);
    } finally {
      await collector.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }
  if (args.json) console.log(JSON.stringify(all, null, 2));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
