#!/usr/bin/env node
// The documentation's screenshots (docs/img/ui-*.png) from a real run: the
// collector on a fresh embedded store, and a worker with a retry buffer that
// is never drained (bench/scenarios/leaks/retry-buffer.js, its jobs counted
// with trackJobs) started with the agent's one-line preload, laid out as an
// installed app at a neutral path
// (default /srv/app: worker.js, and node_modules), so that no path of this
// machine shows in a stack. node_modules there is a link to this checkout's,
// and node runs with --preserve-symlinks so frames keep the app's paths, as
// they would in an app that installed @heapwatch/agent. Then headless
// chromium looks at the pages; each page's text is checked for this
// checkout's path before its screenshot is written.
//
//   node scripts/screenshots.mjs [--app-dir /srv/app] [--out docs/img] [--profiles 60]
//
// Everything it starts, it stops; it removes the app directory and the store.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { launchBrowser } from './lib/browser.mjs';
import { ROOT, startCollectorProcess } from './lib/collector-process.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).flatMap((a, i, all) => (a.startsWith('--') ? [[a.slice(2), all[i + 1]]] : [])),
);
const appDir = path.resolve(args['app-dir'] ?? '/srv/app');
const outDir = path.resolve(args.out ?? path.join(ROOT, 'docs/img'));
const wantProfiles = Number(args.profiles ?? 60);
const service = 'retry-worker';
const INTERVAL_MS = 1000;
const GIVE_UP_MS = 600_000;

if (fs.existsSync(appDir)) throw new Error(`${appDir} exists: give another --app-dir (this script creates and removes it)`);
if (appDir.startsWith(ROOT)) throw new Error(`--app-dir must be outside this checkout (${ROOT})`);
// The scenario as is, its jobs counted with the one line docs/integrations.md gives (trackJobs).
const scenario = fs.readFileSync(path.join(ROOT, 'bench/scenarios/leaks/retry-buffer.js'), 'utf8');
const worker = scenario
  .replace("'use strict';\n", "'use strict';\nconst hw = require('@heapwatch/agent');\n")
  .replace('runJob(nextJob()).catch', 'countedRunJob(nextJob()).catch')
  .concat("const countedRunJob = hw.trackJobs('orders', 'push', runJob);\n");
if (!worker.includes('countedRunJob(nextJob())') || !worker.includes("require('@heapwatch/agent')")) throw new Error('retry-buffer.js changed: update the trackJobs lines here');
fs.mkdirSync(appDir, { recursive: true });
fs.writeFileSync(path.join(appDir, 'worker.js'), worker);
fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(appDir, 'node_modules'));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapwatch-screenshots-'));

let child;
let collector;
let browser;
async function cleanUp() {
  child?.kill('SIGTERM');
  await browser?.close();
  await collector?.stop();
  fs.rmSync(appDir, { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
}
process.on('SIGINT', () => void cleanUp().finally(() => process.exit(130)));

try {
  collector = await startCollectorProcess({ dataDir, args: ['--leak-interval-ms', '2000'] });
  child = spawn(process.execPath, ['--preserve-symlinks', '--preserve-symlinks-main', '--require', '@heapwatch/agent/register', 'worker.js'], {
    cwd: appDir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      HEAPWATCH_COLLECTOR: collector.grpcAddress,
      HEAPWATCH_SERVICE: service,
      HEAPWATCH_INTERVAL_MS: String(INTERVAL_MS),
      HEAPWATCH_SAMPLING_INTERVAL_BYTES: String(32 * 1024),
      // Precise from the start: the pictures are of the UI, not of the switch.
      HEAPWATCH_PRECISE: 'always',
    },
  });
  console.log(`collector ${collector.httpUrl}; worker ${path.join(appDir, 'worker.js')} as ${service}, one profile a second`);

  const started = Date.now();
  for (;;) {
    if (Date.now() - started > GIVE_UP_MS) throw new Error(`no leak flagged with ${wantProfiles} profiles within ${GIVE_UP_MS / 1000} s:\n${collector.output().slice(-2000)}`);
    if (child.exitCode !== null) throw new Error(`the worker exited (${child.exitCode})`);
    await new Promise((r) => setTimeout(r, 3000));
    const services = await (await fetch(`${collector.httpUrl}/api/v1/services`)).json();
    const profiles = services.find((s) => s.service === service)?.profiles ?? 0;
    const report = await (await fetch(`${collector.httpUrl}/api/v1/leaks?service=${service}`)).json();
    console.log(`  ${Math.round((Date.now() - started) / 1000)} s: ${profiles} profiles, ${report.leaks?.length ?? 0} site(s) flagged`);
    const retains = report.jobs?.types?.some((t) => t.verdict === 'retains');
    console.log(`    jobs: ${report.jobs ? `${report.jobs.types.map((t) => `${t.queue}/${t.name} ${t.verdict}`).join(', ')} (${report.jobs.intervals} intervals)` : 'none yet'}`);
    // The leak flagged at its true site, and the memory per job judged (or, past twice the profiles asked for, as it stands).
    if (profiles >= wantProfiles && report.leaks?.some((l) => l.function === 'recordFailure' && l.attribution === 'precise') && (retains || profiles >= 2 * wantProfiles)) break;
  }

  browser = await launchBrowser({ width: 1280, height: 900 });
  const page = await browser.context.newPage();
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  const open = async (hash, ready = '#app:not([data-loading])') => {
    await page.goto(`${collector.httpUrl}/${hash}`);
    await page.waitForSelector(ready, { timeout: 60_000 });
  };
  // No path of this machine on the page, in a frame of the flame graph or in its tooltip.
  const shoot = async (name, options) => {
    const text = await page.evaluate(() => {
      const flame = document.getElementById('flame')?.flame;
      return [document.body.innerText, ...(flame ? flame.frames().map((f) => f.label) : [])].join('\n');
    });
    for (const bad of [ROOT, os.homedir(), dataDir]) if (text.includes(bad)) throw new Error(`${name}: the page shows ${bad}`);
    if (problems.length) throw new Error(`${name}: ${problems.join('; ')}`);
    const file = path.join(outDir, name);
    await page.screenshot({ path: file, ...options });
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  };

  await open(`#/service?service=${service}`);
  await shoot('ui-service.png', { fullPage: true });

  // The flame graph of the whole run, the site searched, the pointer on it (tooltip).
  const services = await (await fetch(`${collector.httpUrl}/api/v1/services`)).json();
  const s = services.find((x) => x.service === service);
  const first = Date.parse(s.firstSeen);
  const last = Date.parse(s.lastSeen);
  await open(`#/flame?service=${service}&from=${first - 1000}&to=${last + 1000}`, '#flame[data-ready=true]');
  await page.fill('#search', 'recordFailure');
  const site = await page.evaluate(() => {
    const frames = document.getElementById('flame').flame.frames();
    return frames.filter((f) => f.highlighted).sort((a, b) => b.width - a.width)[0];
  });
  const box = await page.locator('#flame canvas').boundingBox();
  await page.mouse.move(box.x + site.x + Math.min(site.width / 2, 120), box.y + site.y + site.height / 2);
  await page.waitForSelector('.flame-tooltip:not([hidden])');
  const graph = await page.locator('#flame').boundingBox();
  await shoot('ui-flame.png', { clip: { x: 0, y: 0, width: 1280, height: Math.min(900, graph.y + graph.height + 20) } });

  // The diff of the first 10 s against the last 10 s.
  await open(`#/diff?service=${service}&base_from=${first}&base_to=${first + 10_000}&from=${last - 10_000}&to=${last}`, '#flame[data-ready=true]');
  const growth = await page.locator('#growth').boundingBox();
  await shoot('ui-diff.png', { clip: { x: 0, y: 0, width: 1280, height: growth.y + Math.min(growth.height, 200) } });
} finally {
  await cleanUp();
}
process.exit(0);
