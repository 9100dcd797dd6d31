/**
 * The web UI in a real browser (Debian's chromium, headless, driven by
 * playwright-core) against the real collector (`heapwatch serve`, embedded
 * ClickHouse, leaks evaluated on each request) fed by real workers from the
 * scenario corpus with the agent preloaded: a leak (retry-buffer) and a
 * non-leak (warmup-cache: a small heap; steady-churn's 300,000-entry index
 * makes every forced GC slow on a loaded machine). Screenshots go to
 * test-results/ui/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { browserMissing, launchBrowser } from '../../scripts/lib/browser.mjs';
import { ROOT, getJson, tempDir, waitFor } from '../helpers/collector';
import type * as Runner from '../../bench/scenarios/runner.mjs';
import type { DrawnFrame, FlameState } from '../../collector/ui/src/flame';

interface ServiceRow {
  service: string;
  profiles: number;
  firstSeen: string;
  lastSeen: string;
  flaggedLeaks: number | null;
}

const SCENARIOS = path.join(ROOT, 'bench/scenarios');
const ARTIFACTS = path.join(ROOT, 'test-results/ui');
const INTERVAL_MS = 500;
const LEAK = 'ui-leak';
const OK = 'ui-ok';
const LEAK_SITE = 'recordFailure';
const missing = browserMissing();
/** The search highlight (HIGHLIGHT in collector/ui/src/flame.ts, #E600E6). */
const HIGHLIGHT_RGB = [0xe6, 0x00, 0xe6];

let collector: Runner.ScenarioCollector | undefined;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
let page: Page;
let leakWorker: ChildProcess | undefined;
const problems: string[] = [];

beforeAll(async () => {
  if (missing) return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const runner = (await import(path.join(SCENARIOS, 'runner.mjs'))) as typeof Runner;
  collector = await runner.startCollector(tempDir('ui-browser'), { minGrowthMs: runner.scaledMinGrowthMs(INTERVAL_MS) });
  // The agents run in precise mode from the start, with GC assist at its
  // largest budget (20 % of wall time) and a pause cap of 2 s: on a loaded
  // machine a forced GC of these small heaps can take 100 ms or more, over
  // the 50 ms default cap. This test is about the UI, not detection time or
  // the switch to precise mode (test/e2e/precise-directive.test.ts). (The
  // runner passes this process's environment on to the workers; each test
  // file has a process of its own.)
  process.env.HEAPWATCH_GC_ASSIST_MAX_PAUSE_MS = '2000';
  const options = { samplingBytes: 32 * 1024, intervalMs: INTERVAL_MS, gcAssistBudget: 0.2, precise: 'always' as const };
  // The leak's worker keeps running while the pages are looked at: an
  // instance that stopped sending ages out of the current report
  // (docs/detector.md). The non-leak runs 15 s.
  leakWorker = runner.spawnScenario(collector, runner.readScenario(path.join(SCENARIOS, 'leaks/retry-buffer.js')), { ...options, mode: 'fast', service: LEAK });
  const ok = await runner.runScenario(collector, runner.readScenario(path.join(SCENARIOS, 'ok/warmup-cache.js')), { ...options, mode: 'ok', maxIntervals: 30, service: OK });
  if (ok.error) throw new Error(`scenario failed: ${ok.error}\n${collector.output()}`);
  // With no periodic evaluation (the runner's collector), GET /api/v1/leaks evaluates now.
  await waitFor(
    `${LEAK_SITE} flagged`,
    async () => ((await getJson<{ leaks: { function: string }[] }>(`${collector!.http}/api/v1/leaks?service=${LEAK}`)).body.leaks?.some((l) => l.function === LEAK_SITE) ? true : undefined),
    150 * INTERVAL_MS * 10,
    INTERVAL_MS,
  );
  // Both services stored and evaluated (the collector buffers writes, and
  // evaluates on each request) before any page is looked at.
  await waitFor(
    'both services stored and evaluated',
    async () => {
      const rows = await services();
      return [LEAK, OK].every((name) => rows.some((r) => r.service === name && r.profiles >= 3 && r.flaggedLeaks !== null)) || undefined;
    },
    60_000,
  );
  browser = await launchBrowser({ width: 1280, height: 900 });
  page = await browser.context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
}, 240_000);

afterEach(() => {
  // No console errors, page errors or failed requests on any page.
  expect(problems).toEqual([]);
});

afterAll(async () => {
  leakWorker?.kill('SIGKILL');
  await browser?.close();
  await collector?.stop();
});

async function open(hash: string): Promise<void> {
  await page.goto(`${collector!.http}/${hash}`);
  await page.waitForFunction(() => document.getElementById('app') && !document.getElementById('app')!.dataset.loading, null, { timeout: 30_000 });
}

/** The canvas flame graph's own account of its last drawing (collector/ui/src/flame.ts). */
function flameState(): Promise<FlameState> {
  return page.$eval('#flame', (el) => (el as HTMLElement & { flame: { state(): FlameState } }).flame.state());
}

function drawnFrames(): Promise<DrawnFrame[]> {
  return page.$eval('#flame', (el) => (el as HTMLElement & { flame: { frames(): DrawnFrame[] } }).flame.frames());
}

/** The canvas pixel in the middle of a frame's box, as [r, g, b]. */
function pixelAt(f: DrawnFrame): Promise<number[]> {
  return page.$eval(
    '#flame canvas',
    (c, p) => {
      const canvas = c as HTMLCanvasElement;
      const scale = canvas.width / canvas.getBoundingClientRect().width;
      return [...canvas.getContext('2d')!.getImageData(Math.floor(p.x * scale), Math.floor(p.y * scale), 1, 1).data.slice(0, 3)];
    },
    { x: f.x + Math.min(f.width / 2, 20), y: f.y + 2 }, // above the label, below a hover outline
  );
}

async function services(): Promise<ServiceRow[]> {
  return (await getJson<ServiceRow[]>(`${collector!.http}/api/v1/services`)).body;
}

describe.skipIf(missing)(`web UI in chromium${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it('lists both services, the leaking one first with its leak counted', async () => {
    await open('');
    const rows = await page.$$eval('#services tbody tr', (trs) =>
      trs.map((tr) => ({ service: (tr as HTMLElement).dataset.service, leaks: tr.querySelector('[data-count=leaks]')?.textContent })),
    );
    const leak = rows.findIndex((r) => r.service === LEAK);
    const ok = rows.findIndex((r) => r.service === OK);
    expect(leak).toBeGreaterThanOrEqual(0);
    expect(ok).toBeGreaterThan(leak);
    expect(Number(rows[leak]!.leaks)).toBeGreaterThanOrEqual(1);
    expect(rows[ok]!.leaks).toBe('0');
    await page.screenshot({ path: path.join(ARTIFACTS, 'services.png') });
  });

  it("shows the flagged site with a chart of one point per profile of the detector's window", async () => {
    const profilesBefore = (await services()).find((s) => s.service === LEAK)!.profiles;
    await open(`#/service?service=${LEAK}`);
    const section = page.locator(`section.leak[data-function="${LEAK_SITE}"]`);
    await expect(section.count()).resolves.toBe(1);
    await expect(section.locator('.chart canvas').count()).resolves.toBeGreaterThan(0);
    const profilesAfter = (await services()).find((s) => s.service === LEAK)!.profiles;
    const series = await section.locator('ul.series li').evaluateAll((lis) => lis.map((li) => ({ ...(li as HTMLElement).dataset })));
    expect(series).toHaveLength(1); // one instance
    // One point per profile of the detector's window (the rule's last 120):
    // the worker still runs, so as many as were stored when the page was
    // drawn, between the counts read before and after it.
    expect(Number(series[0]!.points)).toBeGreaterThanOrEqual(Math.min(profilesBefore, 120));
    expect(Number(series[0]!.points)).toBeLessThanOrEqual(Math.min(profilesAfter, 120));
    expect(Number(series[0]!.judged)).toBeGreaterThan(0);
    expect(Number(series[0]!.judged)).toBeLessThanOrEqual(Number(series[0]!.points));
    await expect(section.locator('ol.stack li').first().textContent()).resolves.toMatch(new RegExp(`^${LEAK_SITE} \\(.*retry-buffer\\.js:\\d+\\)$`));
    await page.screenshot({ path: path.join(ARTIFACTS, 'service.png'), fullPage: true });
  });

  it("opens the flame graph focused on the site from the leak's link; hovers, zooms on click and searches", async () => {
    await page.locator(`section.leak[data-function="${LEAK_SITE}"] a.site`).click();
    await page.waitForSelector('#flame[data-ready=true]', { timeout: 30_000 });
    expect(await page.getAttribute('#flame', 'data-focused')).toBe('true');
    const width = await page.$eval('#flame canvas', (c) => c.getBoundingClientRect().width);
    // Zoomed: the site's frame is the view's root, spans the whole width and
    // is highlighted (the search box holds the focused label).
    let s = await flameState();
    expect(s.root).toMatch(new RegExp(`^${LEAK_SITE} \\(.*retry-buffer\\.js:\\d+\\)$`));
    let frames = await drawnFrames();
    const site = frames.find((f) => f.label === s.root && f.depth === Math.max(...frames.filter((g) => g.label === s.root).map((g) => g.depth)))!;
    expect(site.width).toBeGreaterThanOrEqual(0.99 * width);
    expect(site.highlighted).toBe(true);
    // What is drawn under the site is in its range; above it, only its ancestors (one a row).
    expect(frames.filter((f) => f.depth < site.depth).every((f) => f.width >= 0.99 * width)).toBe(true);
    expect(await pixelAt(site)).toEqual(HIGHLIGHT_RGB);
    await page.screenshot({ path: path.join(ARTIFACTS, 'flame-focused.png') });

    await page.click('#reset-zoom');
    s = await flameState();
    expect(s.root).toBe('all');
    expect(s.drawn).toBeGreaterThan(0);

    // Hover a caller of the site (drawn, not highlighted): the tooltip and the details line name it.
    await page.fill('#search', '');
    frames = await drawnFrames();
    const caller = frames.filter((f) => f.label.startsWith('runJob (')).sort((a, b) => b.width - a.width)[0]!;
    expect(caller).toBeDefined();
    const box = (await page.locator('#flame canvas').boundingBox())!;
    const at = { x: box.x + caller.x + Math.min(caller.width / 2, 20), y: box.y + caller.y + caller.height / 2 };
    await page.mouse.move(at.x, at.y);
    await page.waitForFunction((label) => document.getElementById('flame')!.dataset.hovered === label, caller.label, { timeout: 10_000 });
    await expect(page.locator('.flame-tooltip').isVisible()).resolves.toBe(true);
    await expect(page.locator('.flame-tooltip').textContent()).resolves.toContain(caller.label);
    await expect(page.locator('.details').textContent()).resolves.toMatch(/% of all\)$/);
    // A click zooms to it: it spans the width, and the root is the caller.
    await page.mouse.click(at.x, at.y);
    s = await flameState();
    expect(s.root).toBe(caller.label);
    frames = await drawnFrames();
    expect(frames.find((f) => f.label === caller.label && f.depth === caller.depth)!.width).toBeGreaterThanOrEqual(0.99 * width);
    // Clicking the root (above, an ancestor) zooms out again.
    await page.mouse.click(box.x + 5, box.y + 5);
    await expect(flameState()).resolves.toMatchObject({ root: 'all' });

    // Search: every frame whose label contains the term is highlighted, and only those.
    await page.fill('#search', 'runjob');
    s = await flameState();
    expect(s.matches).toBeGreaterThan(0);
    expect(s.highlighted).toBeGreaterThan(0);
    frames = await drawnFrames();
    expect(frames.filter((f) => f.highlighted).every((f) => /runjob/i.test(f.label))).toBe(true);
    expect(frames.filter((f) => /runjob/i.test(f.label)).every((f) => f.highlighted)).toBe(true);
    expect(await pixelAt(frames.find((f) => f.highlighted)!)).toEqual(HIGHLIGHT_RGB);
    await expect(page.locator('.toolbar .muted').textContent()).resolves.toBe(`${s.matches} frames match`);
    await page.fill('#search', '');
    await expect(flameState()).resolves.toMatchObject({ matches: 0, highlighted: 0 });
  });

  it('puts the leaking function on top of growth in the diff of before the leak against after', async () => {
    const s = (await services()).find((x) => x.service === LEAK)!;
    const first = Date.parse(s.firstSeen);
    const last = Date.parse(s.lastSeen);
    await open(`#/diff?service=${LEAK}&base_from=${first}&base_to=${first + 3000}&from=${last - 3000}&to=${last}`);
    await page.waitForSelector('#flame[data-ready=true]', { timeout: 30_000 });
    const top = await page.$eval('#growth tbody tr', (tr) => (tr as HTMLElement).dataset.function);
    expect(top).toBe(LEAK_SITE);
    // The flame graph colours the site as grown, red on the canvas.
    const drawing = await flameState();
    expect(drawing.drawn).toBeGreaterThan(10);
    expect(drawing.grew).toBeGreaterThan(0);
    const widest = async (): Promise<DrawnFrame | undefined> =>
      (await drawnFrames()).filter((f) => f.label.startsWith(`${LEAK_SITE} (`)).sort((x, y) => y.width - x.width)[0];
    const site = await widest();
    expect(site?.change).toBe('grew');
    const [r, g, b] = await pixelAt(site!);
    expect(r).toBeGreaterThan(g + 40);
    expect(r).toBeGreaterThan(b + 40);
    await page.screenshot({ path: path.join(ARTIFACTS, 'diff.png'), fullPage: true });
    // Normalised (the base scaled to the new total), the site still grew.
    await open(`#/diff?service=${LEAK}&base_from=${first}&base_to=${first + 3000}&from=${last - 3000}&to=${last}&normalize=true`);
    await page.waitForSelector('#flame[data-ready=true]', { timeout: 30_000 });
    await expect(page.locator('#diff-summary').textContent()).resolves.toContain('base scaled by');
    await expect(widest()).resolves.toMatchObject({ change: 'grew' });
  });
});
