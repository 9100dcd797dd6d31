/**
 * Starts the real collector (`heapwatch serve`) as a child process on free
 * ports with a fresh embedded store, the way a user runs it.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startCollectorProcess as startShared } from '../../scripts/lib/collector-process.mjs';

export const ROOT = path.resolve(__dirname, '../..');
export const CLI = path.join(ROOT, 'collector/dist/cli.js');
export const AGENT_REGISTER = path.join(ROOT, 'agent/register.js');

export interface RunningCollector {
  grpcAddress: string;
  grpcPort: number;
  httpUrl: string;
  dataDir: string;
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** A fresh directory under this test run's (global-setup.ts), removed when the run ends. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(process.env.HEAPWATCH_TEST_TMP ?? os.tmpdir(), `heapwatch-${prefix}-`));
}

export async function startCollectorProcess(opts: { dataDir?: string; grpcPort?: number; httpPort?: number; args?: string[]; env?: Record<string, string> } = {}): Promise<RunningCollector> {
  return startShared({ ...opts, dataDir: opts.dataDir ?? tempDir('data') });
}

export async function getJson<T = unknown>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

/** Polls `fn` until it returns a value, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
