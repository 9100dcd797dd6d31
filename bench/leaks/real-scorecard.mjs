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
 *
 * --quick: 4 minutes a scenario. Writes bench/results/leaks-real.md and a
 * summary line per scenario on stdout.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pool } from '../lib/pool.mjs';
import { startCollector } from '../scenarios/runner.mjs';
import { buildScenario, listRealScenarios, missingService, runRealScenario, servicesAnswer } from '../scenarios/real-runner.mjs';

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
  },
});
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

function row(r) {
  const site = r.site ? `${r.site.function || '(anonymous)'} (${path.relative(ROOT, r.site.file) || r.site.file}:${r.site.line})` : '-';
  return [
    r.scenario,
    r.kind === 'leak' ? (r.offHeap ? 'leak/off-heap' : 'leak') : 'ok',
    verdict(r),
    r.secondsToFlag === null ? '-' : `${r.secondsToFlag} s / ${r.profilesToFlag}`,
    r.kind === 'leak' ? `${r.trueSite}${r.trueFile ? ` (${r.trueFile})` : ''}` : '-',
    site,
    r.kind === 'leak' ? (r.siteMatch ? 'yes' : 'NO') : '-',
    r.kind === 'leak' ? (r.holderOnStack ? 'yes' : 'NO') : '-',
    String(r.flicker),
    r.process.join(',') || '-',
    r.kind === 'ok' ? r.falseFindings.join('; ') || '-' : r.error ?? '',
  ];
}

const HEAD = ['SCENARIO', 'KIND', 'RESULT', 'FIRST FLAG (time / profiles)', 'TRUE SITE', 'REPORTED SITE', 'TOP-1', 'HOLDER ON STACK', 'FLICKER', 'PROCESS', 'FALSE FINDINGS / NOTE'];

function markdown(results, meta) {
  const esc = (c) => c.replace(/\|/g, '\\|');
  const lines = [
    '# Real-worker leak scorecard',
    '',
    `${meta.date}; ${meta.minutes} min a scenario, profile interval ${meta.intervalMs} ms, sampling ${meta.sampling}, ${meta.parallel} at a time; node ${process.version}; ${os.cpus().length} cores.`,
    '',
    `| ${HEAD.join(' | ')} |`,
    `| ${HEAD.map(() => '---').join(' | ')} |`,
    ...results.map((r) => `| ${row(r).map(esc).join(' | ')} |`),
    '',
    `leaks flagged ${meta.summary.flagged}, at the true site ${meta.summary.top1}, holder on stack ${meta.summary.holder}; false findings ${meta.summary.falseFindings}; flicker ${meta.summary.flicker}.`,
    '',
    '## Stacks of the reported sites',
    '',
  ];
  for (const r of results.filter((x) => x.stack.length)) {
    const notes = [r.site?.siteKind && `siteKind ${r.site.siteKind}`, r.site?.allocatedIn && `allocated in ${r.site.allocatedIn}`].filter(Boolean);
    lines.push(`${r.scenario}${notes.length ? ` (${notes.join(', ')})` : ''}:`, '', '```', ...r.stack.map((f) => f.replace(ROOT + '/', '')), '```', '');
  }
  return lines.join('\n');
}

async function main() {
  const up = await servicesAnswer();
  const scenarios = listRealScenarios().filter((s) => !ONLY || ONLY.has(s.name));
  // tsc is synchronous: build before any scenario runs, so no poll waits on it.
  for (const sc of scenarios) buildScenario(sc);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapwatch-real-scorecard-'));
  // The collector's defaults: its minimum growth time is real time here.
  const collector = await startCollector(dataDir);
  const started = new Date().toISOString();
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
  const leaks = results.filter((r) => r.kind === 'leak');
  const oks = results.filter((r) => r.kind === 'ok');
  const summary = {
    flagged: `${leaks.filter((r) => r.flagged).length}/${leaks.length}`,
    top1: `${leaks.filter((r) => r.siteMatch).length}/${leaks.length}`,
    holder: `${leaks.filter((r) => r.holderOnStack).length}/${leaks.length}`,
    falseFindings: `${oks.filter((r) => r.falseFindings.length).length}/${oks.length}`,
    flicker: results.reduce((s, r) => s + r.flicker, 0),
  };
  const meta = { date: started, minutes: MINUTES, intervalMs: INTERVAL_MS, sampling: SAMPLING ? `${SAMPLING} B` : "the agent's default (512 KiB)", parallel: PARALLEL, summary };
  fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'bench/results/leaks-real.md'), markdown(results, meta));
  if (args.json) {
    console.log(JSON.stringify({ meta, results }, null, 2));
    return;
  }
  for (const r of results) {
    const [name, kind, res, first, truth, site, top1, holder, flicker] = row(r);
    console.log(`${name}: ${kind} ${res}; first flag ${first}; true ${truth}; reported ${site}; top-1 ${top1}; holder on stack ${holder}; flicker ${flicker}${r.falseFindings?.length ? `; false: ${r.falseFindings.join('; ')}` : ''}${r.error ? `; ${r.error}` : ''}`);
  }
  console.log(`summary: leaks flagged ${summary.flagged}, top-1 ${summary.top1}, holder on stack ${summary.holder}, false findings ${summary.falseFindings}, flicker ${summary.flicker}; bench/results/leaks-real.md`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
