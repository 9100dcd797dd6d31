// `npm run bench`: every part in turn, each in its own process (chDB binds
// one data directory per process), then bench/results/REPORT.md from the
// parts' Markdown. Flags after the script name go to every part (--quick);
// --report-only rebuilds REPORT.md from the parts' last results without
// running anything.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BENCH_DIR, RESULTS_DIR, header } from './lib/report.mjs';

const PARTS = [
  ['agent-overhead', 'agent-overhead.mjs'],
  ['agent-leak', 'agent-leak.mjs'],
  ['agent-cpu', 'agent-cpu.mjs'],
  ['job-integrations', 'job-integrations.mjs'],
  ['ingest', 'ingest.mjs'],
  ['ingest-load', 'ingest-load.mjs'],
  ['storage', 'storage.mjs'],
  ['query', 'query.mjs'],
  ['ui', 'ui.mjs'],
  ['leaks', 'leaks/scorecard.mjs'],
  // Needs the machine's Redis and RabbitMQ (a scenario without its service is reported as skipped).
  ['leaks-real', 'leaks/real-scorecard.mjs'],
];
const reportOnly = process.argv.includes('--report-only');
const flags = process.argv.slice(2).filter((f) => f !== '--report-only');
const only = process.env.BENCH_PARTS?.split(',');
const sections = [];
const failed = [];
for (const [name, file] of PARTS) {
  if (only && !only.includes(name)) continue;
  const script = path.join(BENCH_DIR, file);
  const md = path.join(RESULTS_DIR, `${name}.md`);
  if (reportOnly) {
    sections.push(fs.existsSync(md) ? fs.readFileSync(md, 'utf8').trim() : `## ${name}\n\nNo results yet.`);
    continue;
  }
  console.error(`\n=== ${name} ===`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [script, ...flags], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    failed.push(name);
    sections.push(`## ${name}\n\nFAILED (exit ${r.status ?? r.signal}).`);
  } else sections.push(fs.readFileSync(md, 'utf8').trim() + `\n\n(${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}
fs.mkdirSync(RESULTS_DIR, { recursive: true });

/** Every row of the parts' `| target | measured | verdict |` tables, in one place. */
function targetSummary(parts) {
  const rows = [];
  for (const md of parts) {
    const title = /^## (.+)$/m.exec(md)?.[1] ?? '';
    let inTable = false;
    for (const line of md.split('\n')) {
      if (/^\| target \| measured \| verdict \|/i.test(line)) inTable = true;
      else if (!line.startsWith('|')) inTable = false;
      else if (inTable && !/^\| -/.test(line)) rows.push(`| ${title} ${line}`);
    }
  }
  if (!rows.length) return '';
  const missed = rows.filter((r) => /MISSED/i.test(r)).length;
  return [
    `## Targets: ${rows.length - missed} met, ${missed} missed`,
    '| part | target | measured | verdict |\n| --- | --- | --- | --- |\n' + rows.join('\n'),
    missed ? 'Why each miss happened, and the plan: docs/performance.md.' : '',
  ].filter(Boolean).join('\n\n');
}

const report = [header('heapwatch benchmark report', { flags: reportOnly ? 'rebuilt with --report-only from each part\'s last run (see each part for its commit and date)' : flags.join(' ') || '(defaults)' }), targetSummary(sections), ...sections].filter(Boolean).join('\n\n') + '\n';
fs.writeFileSync(path.join(RESULTS_DIR, 'REPORT.md'), report);
console.log(`\nwrote ${path.relative(process.cwd(), path.join(RESULTS_DIR, 'REPORT.md'))}`);
process.exit(failed.length ? 1 : 0);
