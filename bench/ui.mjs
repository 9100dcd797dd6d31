// Part 6: the web UI on the query benchmark's store (bench/lib/fleet-day.mjs:
// 6 instances x 24 h at 60 s, 2,000 stacks a profile).
//
// Times, interleaved, N times each: the data of the service page
// (/api/v1/leaks and /api/v1/leaks/evidence, fetched together as the page
// does) and of a 24 h flame graph (/api/v1/flamegraph); then in headless
// chromium, the flame graph of one profile of 5,000 distinct stacks: drawn
// on the canvas (collector/ui/src/flame.ts) and the frame after it painted,
// a zoom's redraw, and whole page loads (navigation to drawn) of the service
// page and the 24 h flame graph.
//
// Each request's row also gives the collector's CPU time for it (its
// process, embedded engine included, from /proc): a busy machine stretches
// wall time many times over, CPU time far less.
//
//   node bench/ui.mjs [--quick] [--instances 6] [--stacks 2000] [--repeats 5] [--render-stacks 5000] [--store DIR]
//
// --store DIR keeps the fleet-day in DIR and reuses it on the next run with
// the same settings (bench/lib/fleet-day.mjs).
import * as fs from 'node:fs';
import * as os from 'node:os';
import { browserMissing, launchBrowser } from '../scripts/lib/browser.mjs';
import { execFileSync } from 'node:child_process';
import { httpGet, ingestClient, ingestRequest, instanceOf, send, startCollectorProcess } from './lib/collector.mjs';
import { loadFleetDay } from './lib/fleet-day.mjs';
import { encodeProfile, serviceStacks } from './lib/profiles.mjs';
import { fmt, header, median, parseArgs, table, targetsTable, writeResult } from './lib/report.mjs';

const args = parseArgs({ renderOnly: false, store: '', quick: false, instances: 6, stacks: 2000, hours: 24, intervalS: 60, repeats: 5, concurrency: 8, renderStacks: 5000, targetMs: 1000, renderTargetMs: 300 });
if (args.quick) Object.assign(args, { instances: 2, hours: 3, repeats: 2 });
const settings = { ...args };
const service = 'ui-bench';
const renderService = 'ui-render-bench';
// --render-only: the 5,000-stack rendering alone, on an empty store (a minute, not the fleet-day's load).
const { collector, startMs, endMs, total, loadSeconds, reused } = args.renderOnly
  ? { collector: await startCollectorProcess(), startMs: Date.now() - 3600_000, endMs: Date.now() - 60_000, total: 0, loadSeconds: 0, reused: null }
  : await loadFleetDay({ service, ...args, store: args.store || undefined });
const api = `${collector.httpUrl}/api/v1`;
const q = (s) => `service=${encodeURIComponent(s)}`;
const renderRange = `from=${endMs - 60_000}&to=${endMs + 1000}`;

// One profile of `renderStacks` distinct stacks, every one of them live (once: a reused store has it).
if (!reused || (await (await fetch(`${api}/flamegraph?${q(renderService)}&${renderRange}`)).json()).stacks !== args.renderStacks) {
  const renderStacks = serviceStacks(4242, args.renderStacks);
  const client = ingestClient(collector.grpcAddress);
  const snapshot = renderStacks.map((_, i) => [i, 1 + (i % 7), (1 + (i % 7)) * 64]);
  await send(client, ingestRequest({ service: renderService, instance: instanceOf(0, endMs - 3600_000), pprofGzip: encodeProfile(renderStacks, snapshot, endMs), endTimeMs: endMs }));
  client.close();
}

// The stored report the page reads exists after one evaluation (a reused
// store has it, and evaluated now, its instances, silent since the load,
// would age out).
const report = args.renderOnly ? null : await (await fetch(`${api}/leaks?${q(service)}${reused ? '' : '&evaluate=true'}`)).json();

/** CPU time (user + system, all threads) the collector's process has used, in ms; NaN where /proc is missing. */
const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
function collectorCpuMs() {
  try {
    const stat = fs.readFileSync(`/proc/${collector.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond; // utime, stime
  } catch {
    return NaN;
  }
}

const measures = args.renderOnly ? [] : [
  {
    name: 'service page data (/api/v1/leaks + /api/v1/leaks/evidence, together)',
    run: async () => {
      const t0 = performance.now();
      const [a, b] = await Promise.all([httpGet(`${api}/leaks?${q(service)}`), httpGet(`${api}/leaks/evidence?${q(service)}`)]);
      return { ms: performance.now() - t0, status: Math.max(a.status, b.status), bytes: a.bytes + b.bytes };
    },
  },
  { name: `flame graph data, ${args.hours} h (/api/v1/flamegraph)`, run: () => httpGet(`${api}/flamegraph?${q(service)}&from=${startMs}&to=${endMs}`) },
  // The same merge as pprof, for comparison (not a UI target).
  { name: `pprof of the same range (/api/v1/profile), for comparison`, run: () => httpGet(`${api}/profile?${q(service)}&from=${startMs}&to=${endMs}`), reference: true },
];
for (const m of measures) await m.run(); // warm
const times = measures.map(() => []);
const cpu = measures.map(() => []);
for (let r = 0; r < args.repeats; r++) {
  for (const [i, m] of measures.entries()) {
    const c0 = collectorCpuMs();
    const res = await m.run();
    cpu[i].push(collectorCpuMs() - c0);
    m.status = res.status;
    m.bytes = res.bytes;
    times[i].push(res.ms);
  }
}
const renderJson = await (await fetch(`${api}/flamegraph?${q(renderService)}&${renderRange}`)).json();

let browser = { skipped: browserMissing() };
if (!browser.skipped) {
  const b = await launchBrowser({ width: 1280, height: 900 });
  const page = await b.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const ready = (sel) => page.waitForFunction((s) => document.querySelector(s), sel, { timeout: 60_000 });
  const render = [];
  const paint = [];
  const cpu = [];
  const zoom = [];
  let frames = 0;
  let nodes = 0;
  // Main-thread CPU time of the renderer (Chrome's ThreadTime), which a busy
  // machine does not inflate the way it does wall time.
  const cdp = await b.context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const threadMs = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'ThreadTime').value * 1000;
  const flameHash = (r) => `#/flame?${q(renderService)}&${renderRange}&r=${r}`;
  await page.goto(`${collector.httpUrl}/${flameHash(0)}`); // loads and compiles the script
  await ready('#flame[data-paint-ms]');
  for (let r = 1; r <= args.repeats; r++) {
    // Redrawn in the same document: fetch, parse, flatten, draw, paint.
    await page.evaluate(() => document.getElementById('flame')?.removeAttribute('id'));
    const c0 = await threadMs();
    await page.evaluate((h) => (location.hash = h), flameHash(r));
    await ready('#flame[data-paint-ms]');
    cpu.push((await threadMs()) - c0);
    const t = await page.$eval('#flame', (el) => {
      const s = el.flame.state();
      // A zoom's redraw: to the widest frame two levels down, then back to the root.
      const frame = el.flame.frames().filter((f) => f.depth === 2).sort((a, b) => b.width - a.width)[0];
      const z0 = performance.now();
      el.flame.focus(frame.label);
      el.flame.resetZoom();
      const zoomMs = (performance.now() - z0) / 2;
      el.flame.search('');
      return { render: Number(el.dataset.renderMs), paint: Number(el.dataset.paintMs), frames: s.drawn, nodes: s.nodes, zoomMs };
    });
    frames = t.frames;
    nodes = t.nodes;
    render.push(t.render);
    paint.push(t.paint);
    zoom.push(t.zoomMs);
  }
  const pageLoad = async (hash, sel) => {
    const out = [];
    for (let r = 0; r < args.repeats; r++) {
      await page.goto('about:blank');
      const t0 = performance.now();
      await page.goto(`${collector.httpUrl}/${hash}&r=${r}`);
      await ready(sel);
      out.push(performance.now() - t0);
    }
    return out;
  };
  const servicePage = args.renderOnly ? [NaN] : await pageLoad(`#/service?${q(service)}`, '#app:not([data-loading])');
  const flamePage = args.renderOnly ? [NaN] : await pageLoad(`#/flame?${q(service)}&from=${startMs}&to=${endMs}`, '#flame[data-paint-ms]');
  await b.close();
  browser = { render, paint, cpu, zoom, frames, nodes, servicePage, flamePage, errors };
}
await collector.stop();
if (!args.store) fs.rmSync(collector.dataDir, { recursive: true, force: true });

const load = os.loadavg().map((x) => x.toFixed(1)).join(', ');
const rows = measures.map((m, i) => ({ name: m.name, status: m.status, medianMs: median(times[i]), maxMs: Math.max(...times[i]), cpuMs: median(cpu[i]), bytes: m.bytes }));
const targets = [
  ...rows.filter((_, i) => !measures[i].reference).map((r) => ({ name: `${r.name} <= ${args.targetMs} ms`, measured: r.status === 200 ? `${fmt(r.medianMs)} ms median, ${fmt(r.maxMs)} ms max` : `HTTP ${r.status}`, met: r.status === 200 && r.maxMs <= args.targetMs })),
  browser.skipped
    ? { name: `flame graph of ${args.renderStacks} stacks rendered <= ${args.renderTargetMs} ms`, measured: `not run: ${browser.skipped}`, met: false }
    : {
        name: `flame graph of ${renderJson.stacks} distinct stacks rendered in headless chromium <= ${args.renderTargetMs} ms`,
        measured: `${fmt(median(browser.paint))} ms median until drawn and painted, ${fmt(Math.max(...browser.paint))} ms max (drawn on the canvas: ${fmt(median(browser.render))} ms median; main-thread CPU ${fmt(median(browser.cpu))} ms median)`,
        met: Math.max(...browser.paint) <= args.renderTargetMs,
      },
];
const markdown = [
  header('Web UI: page data and flame graph rendering', settings),
  args.renderOnly
    ? `Store: one profile of ${renderJson.stacks} distinct stacks (--render-only: the rendering part alone).`
    : `Store: ${args.instances} instances x ${args.hours} h at ${args.intervalS} s, ${fmt(total)} profiles of ~${args.stacks} stacks (loaded in ${loadSeconds.toFixed(0)} s${reused ? `, at ${reused}; reused with --store` : ''}), plus one profile of ${renderJson.stacks} distinct stacks. The stored report flags ${report.leaks.length} sites and ${report.process.length} process findings (the synthetic fleet has no leak, so the evidence holds each instance's heap series and no site series).`,
  '',
  `Load average at the end (1, 5, 15 min): ${load}, on ${os.cpus().length} cores: wall times on a busy machine are longer than the work they measure.`,
  '',
  rows.length ? table(['request', 'HTTP', `median ms (${args.repeats} runs)`, 'max ms', 'collector CPU ms (median)', 'response bytes'], rows.map((r) => [r.name, r.status, r.medianMs, r.maxMs, r.cpuMs, r.bytes])) : '',
  '',
  browser.skipped
    ? `Browser parts not run: ${browser.skipped}.`
    : table(
        ['in headless chromium', 'median ms', 'max ms'],
        [
          [`flame graph of ${renderJson.stacks} stacks: flattened and drawn on the canvas (${browser.frames} frames drawn of ${fmt(browser.nodes)} nodes; narrower than half a pixel are skipped)`, median(browser.render), Math.max(...browser.render)],
          ['same, until every frame is drawn and painted', median(browser.paint), Math.max(...browser.paint)],
          ['same, main-thread CPU time of fetch + parse + draw (ThreadTime)', median(browser.cpu), Math.max(...browser.cpu)],
          ['a zoom (focus on a frame, or back to the root): one redraw', median(browser.zoom), Math.max(...browser.zoom)],
          ...(args.renderOnly
            ? []
            : [
                ['service page, navigation to drawn (data + charts)', median(browser.servicePage), Math.max(...browser.servicePage)],
                [`flame graph page over ${args.hours} h, navigation to painted`, median(browser.flamePage), Math.max(...browser.flamePage)],
              ]),
        ],
      ),
  browser.errors?.length ? `\nPage errors: ${browser.errors.join('; ')}` : '',
  '',
  targetsTable(targets),
].join('\n');
writeResult(args.renderOnly ? 'ui-render' : 'ui', { settings, targets, data: { total, loadSeconds, reused, rows, times, cpu, browser, renderStacks: renderJson.stacks }, markdown });
process.exit(0);

