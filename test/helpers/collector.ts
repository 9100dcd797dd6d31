/**
 * Starts the real collector (`heapwatch serve`) as a child process on free
 * ports with a fresh embedded store, the way a user runs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

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

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `heapwatch-${prefix}-`));
}

export async function startCollectorProcess(opts: { dataDir?: string; grpcPort?: number; httpPort?: number; args?: string[] } = {}): Promise<RunningCollector> {
  const dataDir = opts.dataDir ?? tempDir('data');
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--data', dataDir, '--grpc-port', String(opts.grpcPort ?? 0), '--http-port', String(opts.httpPort ?? 0), '--log-level', 'warn', ...(opts.args ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const ports = await new Promise<{ grpc: number; http: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector did not start in 60 s:\n${out}`)), 60_000);
    const check = () => {
      const g = /grpc [^\s]+:(\d+)/.exec(out);
      const h = /http http:\/\/[^\s]+:(\d+)/.exec(out);
      if (g && h) {
        clearTimeout(timer);
        resolve({ grpc: Number(g[1]), http: Number(h[1]) });
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`collector exited with ${code}:\n${out}`));
    });
  });
  return {
    grpcAddress: `127.0.0.1:${ports.grpc}`,
    grpcPort: ports.grpc,
    httpUrl: `http://127.0.0.1:${ports.http}`,
    dataDir,
    process: child,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
      }),
  };
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
