// Debian's chromium, headless, driven by playwright-core: for the web UI's
// browser tests and its benchmark. Background networking, component updates
// and sync are off (without those flags Chromium keeps calling Google's
// servers), and every launch gets a fresh profile directory.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const CHROMIUM = process.env.HEAPWATCH_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why the browser cannot run here, or null when it can. */
export function browserMissing() {
  return fs.existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run installs it)`;
}

/**
 * @param {{ width?: number, height?: number }} [viewport]
 * @returns {Promise<{ context: import('playwright-core').BrowserContext, close(): Promise<void> }>}
 */
export async function launchBrowser({ width = 1280, height = 900 } = {}) {
  const { chromium } = await import('playwright-core');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapwatch-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width, height },
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
