#!/usr/bin/env node
/**
 * Leak detector scorecard: runs the scenario corpus (bench/scenarios) against
 * a real collector (`heapwatch serve`, embedded ClickHouse) with the agent
 * preloaded in each worker, and prints per scenario whether it was flagged,
 * the reported site against the true one and the profile intervals from
 * leak onset (process start) to the first finding and to the first site
 * flagged from precise-mode profiles (the agents start in the default mode
 * and the collector's directive turns precise mode on); then recall, false
 * flags (sites and process findings apart), top-1 attribution and median
 * intervals to both, for each sampling interval.
 *
 *   node bench/leaks/scorecard.mjs [--interval-ms 500] [--sampling 16384,65536]
 *        [--only retry-buffer,warmup-cache] [--parallel 3] [--gc-assist-budget 0.05] [--json]
 *        [--agent heapwatch|pyroscope]
 *
 * --agent pyroscope runs each worker under the real @pyroscope/nodejs SDK
 * (heap profiling, uploading every --interval-ms) instead of heapwatch's
 * agent: profiles without GC information, which the detector judges on a
 * 240-profile window (docs/detector.md#profiles-without-gc-information), so
 * give such runs --ok-intervals and --fast-intervals past 240.
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
import { header, table, targetsTable, writeResult } from '../lib/report.mjs';
import { SCENARIO_GC_ASSIST_BUDGET, listScenarios, runScenario, scaledMinGrowthMs, startCollector } from '../scenarios/runner.mjs';

// The detection-time formula (docs/detector.md#detection-time), from the build.
const { profilesToFlag } = createRequire(import.meta.url)('../../collector/dist/leaks/detection-time.js');


const { values: args } = parseArgs({
  options: {
    'interval-ms': { type: 'string', default: '500' },
    sampling: { type: 'string', default: '16384,65536' },
    only: { type: 'string' },
    parallel: { type: 'string', default: '3' },
    'fast-intervals': { type: 'string', default: '60' },
    'slow-intervals': { type: 'string', default: '140' },
    'ok-intervals': { type: 'string', default: '60' },
    'gc-assist-budget': { type: 'string', default: String(SCENARIO_GC_ASSIST_BUDGET) },
    json: { type: 'boolean', default: false },
    agent: { type: 'string', default: 'heapwatch' },
    // npm run bench -- --quick: one sampling interval, two leaks and two non-leaks.
    quick: { type: 'boolean', default: false },
  },
});
const INTERVAL_MS = Number(args['interval-ms']);
const SAMPLINGS = (args.quick ? '65536' : args.sampling).split(',').map(Number);
const PARALLEL = Number(args.parallel);
const ONLY = args.only ? new Set(args.only.split(',')) : args.quick ? new Set(['retry-buffer', 'dedup-set', 'warmup-cache', 'steady-churn']) : null;
const GC_ASSIST_BUDGET = Number(args['gc-assist-budget']);
const AGENT = args.agent;
if (AGENT !== 'heapwatch' && AGENT !== 'pyroscope') throw new Error('--agent is heapwatch or pyroscope');

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
    // The site named from precise-mode profiles (attribution 'precise'):
    // in the default mode the first finding may name an inlining caller.
    medianIntervalsPreciseFast: median(fast.filter((r) => r.intervalsToPrecise !== null).map((r) => r.intervalsToPrecise)),
    fastPreciseWithin40: `${fast.filter((r) => r.intervalsToPrecise !== null && r.intervalsToPrecise <= 40).length}/${fast.length}`,
    processFalse: `${ok.filter((r) => r.flagged && r.reported?.startsWith('(')).length}/${ok.length}`,
    siteFalse: `${ok.filter((r) => r.flagged && !r.reported?.startsWith('(')).length}/${ok.length}`,
    medianIntervalsSlow: median(slow.filter((r) => r.flagged).map((r) => r.intervalsToFlag)),
    slowWithin120: `${slow.filter((r) => r.flagged && r.intervalsToFlag <= 120).length}/${slow.length}`,
    // Runs flagged within the formula's 90th-percentile bound, at the rate the detector measured.
    withinFormula: `${leaks.filter((r) => r.flagged && r.measuredRate && r.intervalsToFlag <= 1.25 * profilesToFlag(r.measuredRate, 'p90')).length}/${leaks.length}`,
  };
}

const HEAD = ['SCENARIO', 'KIND', 'RESULT', 'TRUE SITE', 'REPORTED', 'TOP-1', 'FIRST FINDING', 'PRECISE SITE', 'FIRST NAMED', 'GROWTH/S', 'FORMULA', 'NOTE'];

function rowsOf(results) {
  return results.map((r) => [
    r.scenario,
    r.kind === 'leak' ? `leak/${r.mode}` : 'ok',
    r.flagged ? 'FLAGGED' : '-',
    r.kind === 'leak' ? r.trueSite : '-',
    r.reported ?? '-',
    r.kind === 'leak' ? (r.reported === r.trueSite ? 'yes' : 'NO') : r.flagged ? 'FALSE FLAG' : 'ok',
    r.intervalsToFlag === null ? '-' : String(r.intervalsToFlag),
    r.kind !== 'leak' ? '-' : r.intervalsToPrecise === null ? 'never' : String(r.intervalsToPrecise),
    r.kind === 'leak' && r.firstReported && r.firstReported !== r.reported ? r.firstReported : '',
    r.measuredRate === null ? '-' : `${r.measuredRate.toFixed(2)}x`,
    r.measuredRate === null ? '-' : `${profilesToFlag(r.measuredRate)}-${profilesToFlag(r.measuredRate, 'p90')}`,
    r.error ?? (r.reported && r.reported !== r.trueSite ? r.reportedAt ?? '' : ''),
  ]);
}

const profilerOf = () =>
  AGENT === 'pyroscope' ? '@pyroscope/nodejs (no GC information)' : GC_ASSIST_BUDGET > 0 ? `agent GC assist budget ${GC_ASSIST_BUDGET}` : "V8's own GCs only (GC assist off)";
const titleOf = (samplingBytes) => `sampling interval ${samplingBytes} B, profile interval ${INTERVAL_MS} ms, ${profilerOf()}`;

const summaryLine = (summary) =>
  `recall ${summary.recall}  false flags ${summary.falseFlags} (sites ${summary.siteFalse}, process ${summary.processFalse})  top-1 ${summary.top1}  ` +
  `median intervals to the first finding: fast (2x S) ${summary.medianIntervalsFast ?? '-'} (${summary.fastWithin20} within 20), ` +
  `to the precise site: fast ${summary.medianIntervalsPreciseFast ?? '-'} (${summary.fastPreciseWithin40} within 40), ` +
  `slow (S/4) ${summary.medianIntervalsSlow ?? '-'} (${summary.slowWithin120} within 120), ` +
  `${summary.withinFormula} within the detection-time formula's p90 bound`;

function printTable(samplingBytes, results, summary) {
  const rows = rowsOf(results);
  const w = HEAD.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  console.log(`\n== ${titleOf(samplingBytes)} ==`);
  console.log(line(HEAD));
  for (const r of rows) console.log(line(r));
  console.log(summaryLine(summary));
}

/** n/m as a met target when n === m (or, for false flags, when n === 0). */
const frac = (x) => x.split('/').map(Number);
function targetsOf(all) {
  const targets = [];
  for (const [S, { summary }] of Object.entries(all)) {
    const [flagged, leaks] = frac(summary.recall);
    const [top1] = frac(summary.top1);
    const [siteFalse, oks] = frac(summary.siteFalse);
    const [processFalse] = frac(summary.processFalse);
    const [fast20, fast] = frac(summary.fastWithin20);
    const [fast40] = frac(summary.fastPreciseWithin40);
    const [slow120, slow] = frac(summary.slowWithin120);
    targets.push(
      { name: `${S} B: every leak flagged`, measured: summary.recall, met: flagged === leaks },
      { name: `${S} B: top-1 site right on every leak (the precise site)`, measured: summary.top1, met: top1 === leaks },
      { name: `${S} B: no non-leak flagged (sites; process findings)`, measured: `${summary.siteFalse}; ${summary.processFalse}`, met: siteFalse === 0 && processFalse === 0 && oks > 0 },
      { name: `${S} B: a fast leak's first finding within 20 intervals`, measured: `${summary.fastWithin20} (median ${summary.medianIntervalsFast ?? '-'})`, met: fast20 === fast },
      { name: `${S} B: a fast leak's precise site within 40 intervals`, measured: `${summary.fastPreciseWithin40} (median ${summary.medianIntervalsPreciseFast ?? '-'})`, met: fast40 === fast },
      { name: `${S} B: a slow leak within 120 intervals`, measured: `${summary.slowWithin120} (median ${summary.medianIntervalsSlow ?? '-'})`, met: slow120 === slow },
    );
  }
  return targets;
}

async function main() {
  const scenarios = listScenarios().filter((s) => !ONLY || ONLY.has(s.name));
  const all = {};
  for (const samplingBytes of SAMPLINGS) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapwatch-scorecard-'));
    // The collector's suspicion (the precise-mode directive) in the proportion of production's 60 s interval to its 30 s cache.
    const collector = await startCollector(dataDir, { suspectTtlMs: Math.round(INTERVAL_MS / 2), minGrowthMs: scaledMinGrowthMs(INTERVAL_MS) });
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
          runScenario(collector, r.sc, { mode: r.mode, samplingBytes, intervalMs: INTERVAL_MS, maxIntervals: r.maxIntervals, service: `${r.sc.name}-${r.mode}-${samplingBytes}`, gcAssistBudget: GC_ASSIST_BUDGET, agent: AGENT }),
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
  if (args.json) {
    console.log(JSON.stringify(all, null, 2));
    return;
  }
  // bench/results/leaks.{md,json}: the scorecard as a part of REPORT.md (npm run bench).
  const targets = targetsOf(all);
  const markdown = [
    header('Leak detector scorecard', { intervalMs: INTERVAL_MS, samplings: SAMPLINGS.join(','), parallel: PARALLEL, gcAssistBudget: GC_ASSIST_BUDGET, suspectTtlMs: Math.round(INTERVAL_MS / 2), only: ONLY ? [...ONLY].join(',') : 'all', loadavg: os.loadavg().map((x) => x.toFixed(1)).join(' ') }),
    'Every scenario of bench/scenarios with the agent at its defaults (the default mode until the collector asks for precise mode) against a real collector; columns as in bench/leaks/README.md. FIRST FINDING: profiles stored when the leak (or, on a non-leak, anything) was first flagged; PRECISE SITE: when a site was first flagged from precise-mode profiles.',
    ...Object.entries(all).flatMap(([S, { results, summary }]) => ['', `### ${titleOf(S)}`, '', table(HEAD, rowsOf(results)), '', summaryLine(summary)]),
    '',
    targetsTable(targets),
  ].join('\n');
  writeResult('leaks', { settings: { ...args, samplings: SAMPLINGS }, data: all, markdown, targets });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
