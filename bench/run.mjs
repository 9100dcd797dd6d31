// `npm run bench`: every part in turn, each in its own process (chDB binds
// one data directory per process), then bench/results/REPORT.md from the
// parts' Markdown. Flags after the script name go to every part (--quick).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BENCH_DIR, RESULTS_DIR, header } from './lib/report.mjs';

const PARTS = [
  ['agent-overhead', 'agent-overhead.mjs'],
  ['agent-leak', 'agent-leak.mjs'],
  ['ingest', 'ingest.mjs'],
  ['storage', 'storage.mjs'],
  ['query', 'query.mjs'],
];
const flags = process.argv.slice(2);
const only = process.env.BENCH_PARTS?.split(',');
const sections = [];
const failed = [];
for (const [name, file] of PARTS) {
  if (only && !only.includes(name)) continue;
  const script = path.join(BENCH_DIR, file);
  if (!fs.existsSync(script)) {
    sections.push(`## ${name}\n\nNot written yet: see bench/README.md, "What remains".`);
    failed.push(name);
    continue;
  }
  console.error(`\n=== ${name} ===`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [script, ...flags], { stdio: ['ignore', 'inherit', 'inherit'] });
  const md = path.join(RESULTS_DIR, `${name}.md`);
  if (r.status !== 0) {
    failed.push(name);
    sections.push(`## ${name}\n\nFAILED (exit ${r.status ?? r.signal}).`);
  } else sections.push(fs.readFileSync(md, 'utf8').trim() + `\n\n(${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}
fs.mkdirSync(RESULTS_DIR, { recursive: true });
const report = [header('heapwatch benchmark report', { flags: flags.join(' ') || '(defaults)' }), ...sections].join('\n\n') + '\n';
fs.writeFileSync(path.join(RESULTS_DIR, 'REPORT.md'), report);
console.log(`\nwrote ${path.relative(process.cwd(), path.join(RESULTS_DIR, 'REPORT.md'))}`);
process.exit(failed.length ? 1 : 0);
