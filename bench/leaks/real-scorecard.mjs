#!/usr/bin/env node
/**
 * The real-worker scorecard: runs the real corpus (bench/scenarios/real:
 * BullMQ and amqplib workers on the machine's Redis and RabbitMQ, a
 * TypeScript worker built with tsc, worker_threads, fetch) with the agent at
 * its defaults (512 KiB sampling) but for the profile interval, several
 * scenarios at a time, against one real collector, for tens of minutes.
 * Polls the stored report every interval and records per scenario: flagged
 * or not, time to first flag, the reported site against the true one (top-1
 * function, and file for compiled code), whether the holder is on the
 * stack, flicker (flag/unflag changes after the first flag and resets of
 * the top site's firstFlaggedAt), false findings on non-leaks.
 *
 *   node bench/leaks/real-scorecard.mjs [--interval-ms 5000] [--minutes 20]
 *        [--parallel 4] [--only a,b] [--sampling <bytes>] [--quick] [--json]
 *        [--from-json FILE]
 *
 * --quick: 4 minutes a scenario. Writes bench/results/leaks-real.md (a part
 * of REPORT.md, with its targets) and a summary line per scenario on
 * stdout. --from-json rewrites the Markdown from a --json output without
 * running anything.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { pool } from '../lib/pool.mjs';
import { header, targetsTable } from '../lib/report.mjs';
import { startCollector } from '../scenarios/runner.mjs';
import { buildScenario, listRealScenarios, missingService, readRealScenario, runRealScenario, servicesAnswer } from '../scenarios/real-runner.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    'interval-ms': { type: 'string', default: '5000' },
    minutes: { type: 'string' },
    parallel: { type: 'string', default: '4' },
    only: { type: 'string' },
    sampling: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'from-json': { type: 'string' },
  },
});
// The detection-time formula (docs/detector.md#detection-time), from the build.
const { secondsToFlag } = createRequire(import.meta.url)('../../collector/dist/leaks/detection-time.js');
const DEFAULT_SAMPLING = 512 * 1024;
const INTERVAL_MS = Number(args['interval-ms']);
const MINUTES = Number(args.minutes ?? (args.quick ? 4 : 20));
const PARALLEL = Math.max(1, Number(args.parallel));
const ONLY = args.only ? new Set(args.only.split(',')) : null;
const SAMPLING = args.sampling ? Number(args.sampling) : undefined;
if (!(INTERVAL_MS >= 1000) || !(MINUTES > 0)) throw new Error('--interval-ms must be >= 1000 and --minutes > 0');

function verdict(r) {
  if (r.error) return 'ERROR';
  if (r.kind === 'ok') return r.falseFindings.length ? 'FALSE FINDING' : 'ok';
  if (!r.flagged) return 'MISSED';
  return r.siteMatch ? 'flagged' : 'flagged, wrong site';
}

/** The leak's holder (off-heap: the capture's top off-heap holder; else the finding's heldBy) against @holder (docs/detector.md#holders). */
function holderCell(r) {
  const h = r.reportedHolder;
  if (!h) return 'no capture';
  if (h.skipped) return `skipped: ${h.skipped}`;
  return `${r.holderMatch ? 'yes' : 'NO'}: ${h.path}`;
}

function row(r) {
  const site = r.site ? `${r.site.function || '(anonymous)'} (${path.relative(ROOT, r.site.file) || r.site.file}:${r.site.line})` : '-';
  return [
    r.scenario,
    r.kind === 'leak' ? (r.offHeap ? 'leak/off-heap' : 'leak') : 'ok',
    verdict(r),
    r.secondsToFlag === null ? '-' : `${r.secondsToFlag} s / ${r.profilesToFlag}`,
    formula(r),
    r.kind === 'leak' ? `${r.trueSite}${r.trueFile ? ` (${r.trueFile})` : ''}` : '-',
    site,
    r.kind === 'leak' ? (r.siteMatch ? 'yes' : 'NO') : '-',
    r.kind === 'leak' ? (r.holderOnStack ? 'yes' : 'NO') : '-',
    r.kind === 'leak' ? holderCell(r) : '-',
    String(r.flicker),
    r.process.join(',') || '-',
    r.kind === 'ok' ? r.falseFindings.join('; ') || '-' : r.error ?? '',
  ];
}

/** What the detection-time formula predicts for a leak at its header's rate (median-p90, seconds), or '-'. */
function formula(r) {
  const rate = r.bytesPerJob * r.jobsPerSec;
  if (r.kind !== 'leak' || !(rate > 0)) return '-';
  const at = (q) => Math.round(secondsToFlag(rate, r.samplingBytes ?? DEFAULT_SAMPLING, r.intervalMs ?? INTERVAL_MS, q));
  return `${at('median')}-${at('p90')} s`;
}

const HEAD = ['SCENARIO', 'KIND', 'RESULT', 'FIRST FLAG (time / profiles)', 'FORMULA', 'TRUE SITE', 'REPORTED SITE', 'TOP-1', 'HOLDER ON STACK', 'HOLDER (CAPTURE)', 'FLICKER', 'PROCESS', 'FALSE FINDINGS / NOTE'];

function markdown(results, meta) {
  const esc = (c) => c.replace(/\|/g, '\\|');
  const leaks = results.filter((r) => r.kind === 'leak');
  const oks = results.filter((r) => r.kind === 'ok');
  const withinFormula = leaks.filter((r) => r.flagged && formula(r) !== '-' && r.secondsToFlag <= 1.3 * Number(formula(r).split('-')[1].replace(' s', '')));
  const targets = [
    { name: 'every leak flagged', measured: meta.summary.flagged, met: leaks.every((r) => r.flagged) },
    { name: 'at an actionable site (the true function; off-heap or library site: the holder names @holder)', measured: `${leaks.filter(actionable).length}/${leaks.length}`, met: leaks.every(actionable) },
    { name: 'off-heap leaks: the holder capture names @holder', measured: meta.summary.offHeapHolder, met: leaks.filter((r) => r.offHeap).every((r) => r.holderMatch) },
    { name: 'zero false findings on non-leaks', measured: meta.summary.falseFindings, met: oks.every((r) => r.falseFindings.length === 0) },
    { name: 'zero flicker', measured: String(meta.summary.flicker), met: meta.summary.flicker === 0 },
    { name: "first flag within the formula's p90 (+30 %)", measured: `${withinFormula.length}/${leaks.length}`, met: withinFormula.length === leaks.length },
  ];
  const lines = [
    header('Leak detector on real workers (real-worker scorecard)', {
      minutes: meta.minutes,
      intervalMs: meta.intervalMs,
      sampling: meta.sampling,
      parallel: meta.parallel,
      started: meta.date,
      loadavg: `${meta.loadStart ?? 'n/a'} -> ${meta.loadEnd ?? 'n/a'}`,
    }).trimEnd(),
    '',
    targetsTable(targets),
    '',
    `| ${HEAD.join(' | ')} |`,
    `| ${HEAD.map(() => '---').join(' | ')} |`,
    ...results.map((r) => `| ${row(r).map(esc).join(' | ')} |`),
    '',
    `leaks flagged ${meta.summary.flagged}, at the true site ${meta.summary.top1}, holder on stack ${meta.summary.holder}, off-heap holder captured ${meta.summary.offHeapHolder ?? 'n/a'}; false findings ${meta.summary.falseFindings}; flicker ${meta.summary.flicker}. FORMULA: the detection-time formula at the header's rate (@bytes-per-job x @jobs-per-sec), median-p90.`,
    '',
    '### Stacks of the reported sites',
    '',
  ];
  for (const r of results.filter((x) => x.stack.length)) {
    const notes = [r.site?.siteKind && `siteKind ${r.site.siteKind}`, r.site?.allocatedIn && `allocated in ${r.site.allocatedIn}`].filter(Boolean);
    lines.push(`${r.scenario}${notes.length ? ` (${notes.join(', ')})` : ''}:`, '', '```', ...r.stack.map((f) => f.replace(ROOT + '/', '')), '```', '');
  }
  return lines.join('\n');
}

const loadavg = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');

/** A result with its scenario's header rate and the run's settings, for the formula column. */
function withSettings(r, meta) {
  const sc = readRealScenario(r.scenario);
  return { ...r, bytesPerJob: sc.bytesPerJob, jobsPerSec: sc.jobsPerSec, intervalMs: meta.intervalMs, samplingBytes: meta.samplingBytes };
}

/**
 * A flagged leak at its true site; or one with no application site (off-heap,
 * or library code after an await) whose holder names @holder.
 */
function actionable(r) {
  return r.siteMatch || (r.flagged && r.holderMatch && (r.offHeap || r.site?.siteKind === 'library'));
}

function summarize(results) {
  const leaks = results.filter((r) => r.kind === 'leak');
  const oks = results.filter((r) => r.kind === 'ok');
  return {
    flagged: `${leaks.filter((r) => r.flagged).length}/${leaks.length}`,
    top1: `${leaks.filter((r) => r.siteMatch).length}/${leaks.length}`,
    holder: `${leaks.filter((r) => r.holderOnStack).length}/${leaks.length}`,
    offHeapHolder: `${leaks.filter((r) => r.offHeap && r.holderMatch).length}/${leaks.filter((r) => r.offHeap).length}`,
    falseFindings: `${oks.filter((r) => r.falseFindings.length).length}/${oks.length}`,
    flicker: results.reduce((s, r) => s + r.flicker, 0),
  };
}

function write(meta, results) {
  fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'bench/results/leaks-real.md'), markdown(results, meta));
}

async function main() {
  if (args['from-json']) {
    const saved = JSON.parse(fs.readFileSync(args['from-json'], 'utf8'));
    const meta = { samplingBytes: DEFAULT_SAMPLING, ...saved.meta };
    write(meta, saved.results.map((r) => withSettings(r, meta)));
    return;
  }
  const up = await servicesAnswer();
  const scenarios = listRealScenarios().filter((s) => !ONLY || ONLY.has(s.name));
  // tsc is synchronous: build before any scenario runs, so no poll waits on it.
  for (const sc of scenarios) buildScenario(sc);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapwatch-real-scorecard-'));
  // The collector's defaults: its minimum growth time is real time here.
  const collector = await startCollector(dataDir);
  const started = new Date().toISOString();
  const loadStart = loadavg();
  let results;
  try {
    results = await pool(
      scenarios.map((sc) => async () => {
        const why = missingService(sc, up);
        if (why) return { scenario: sc.name, kind: sc.kind, offHeap: sc.offHeap, trueSite: sc.trueSite, trueFile: sc.trueFile, flagged: false, secondsToFlag: null, site: null, siteMatch: false, holderOnStack: false, stack: [], process: [], flicker: 0, falseFindings: [], error: `skipped: ${why}` };
        process.stderr.write(`[real-scorecard] ${sc.name}: running ${MINUTES} min\n`);
        const r = await runRealScenario(collector, sc, { service: `real-${sc.name}`, intervalMs: INTERVAL_MS, samplingBytes: SAMPLING, durationMs: MINUTES * 60_000 });
        process.stderr.write(`[real-scorecard] ${sc.name}: ${verdict(r)}\n`);
        return r;
      }),
      PARALLEL,
    );
  } finally {
    await collector.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const meta = {
    date: started,
    minutes: MINUTES,
    intervalMs: INTERVAL_MS,
    samplingBytes: SAMPLING ?? DEFAULT_SAMPLING,
    sampling: SAMPLING ? `${SAMPLING} B` : "the agent's default (512 KiB)",
    parallel: PARALLEL,
    loadStart,
    loadEnd: loadavg(),
    summary: summarize(results),
  };
  results = results.map((r) => withSettings(r, meta));
  write(meta, results);
  if (args.json) {
    console.log(JSON.stringify({ meta, results }, null, 2));
    return;
  }
  for (const r of results) {
    const [name, kind, res, first, predicted, truth, site, top1, holder, captured, flicker] = row(r);
    console.log(`${name}: ${kind} ${res}; first flag ${first} (formula ${predicted}); true ${truth}; reported ${site}; top-1 ${top1}; holder on stack ${holder}; holder captured ${captured}; flicker ${flicker}${r.falseFindings?.length ? `; false: ${r.falseFindings.join('; ')}` : ''}${r.error ? `; ${r.error}` : ''}`);
  }
  const summary = meta.summary;
  console.log(`summary: leaks flagged ${summary.flagged}, top-1 ${summary.top1}, holder on stack ${summary.holder}, false findings ${summary.falseFindings}, flicker ${summary.flicker}; bench/results/leaks-real.md`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
