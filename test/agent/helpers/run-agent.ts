import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '../../..');
export const REGISTER_CJS = path.join(REPO, 'agent/register.js');
export const REGISTER_ESM = path.join(REPO, 'agent/register.mjs');
export const FIXTURES = path.join(__dirname, '../fixtures');

export interface Run {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; atMs: number }>;
}

/**
 * Runs a fixture in a real Node child with the agent preloaded ('none': without
 * the agent, as a baseline); HEAPWATCH_* from the parent are not inherited.
 */
export function runWithAgent(fixture: string, env: Record<string, string>, preload: 'require' | 'import' | 'none' = 'require'): Run {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HEAPWATCH_') && k !== 'OTEL_SERVICE_NAME' && k !== 'NODE_OPTIONS'));
  const flag = preload === 'none' ? [] : preload === 'require' ? ['--require', REGISTER_CJS] : ['--import', REGISTER_ESM];
  const child = spawn(process.execPath, [...flag, path.join(FIXTURES, fixture)], {
    env: { ...clean, ...env },
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; atMs: number }>((resolve) =>
    child.on('exit', (code) => resolve({ code, atMs: Date.now() })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** The longest a fixture that stops on SIGUSR2 runs, and a test waits for what it checks. */
export const RUN_CAP_MS = 60_000;

/**
 * Waits (at most RUN_CAP_MS) until what the collector double received has
 * shown what the test checks, then stops the fixture with SIGUSR2; its exit.
 * Counts, not wall time: a loaded machine gets fewer profiles out of a child
 * in a given time.
 */
export async function stopWhen<R>(
  run: Run,
  c: { received: R[]; waitFor(pred: (all: R[]) => boolean, timeoutMs: number, what: string): Promise<void> },
  enough: (all: R[]) => boolean,
  what: string,
): Promise<{ code: number | null; atMs: number }> {
  await c.waitFor(enough, RUN_CAP_MS, what);
  run.child.kill('SIGUSR2');
  return run.exited;
}
