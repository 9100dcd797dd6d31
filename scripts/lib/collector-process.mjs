// `heapwatch serve` in a process of its own, the way users run it, on the
// ports it prints (port 0 picks free ones). Shared by the tests, the
// benchmarks, the scenario runner and the demo: chDB binds one data
// directory per process, so a collector always gets a process of its own.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'collector/dist/cli.js');

/**
 * `startTimeoutMs`: how long to wait for the ports to be printed. A
 * collector that has not started by then is killed (SIGKILL) and waited for
 * before the promise rejects, so a retry can bind the same data directory
 * and ports.
 *
 * @param {{ dataDir: string, grpcPort?: number, httpPort?: number, args?: string[], env?: Record<string, string>, nodeArgs?: string[], cli?: string, startTimeoutMs?: number }} opts
 */
export async function startCollectorProcess({ dataDir, grpcPort = 0, httpPort = 0, args = [], env = {}, nodeArgs = [], cli = CLI, startTimeoutMs = 60_000 }) {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run \`npx tsc -b\` first`);
  const child = spawn(
    process.execPath,
    [...nodeArgs, cli, 'serve', '--data', dataDir, '--grpc-port', String(grpcPort), '--http-port', String(httpPort), '--log-level', 'warn', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const ports = await new Promise((resolve, reject) => {
    const onExit = (code) => {
      clearTimeout(timer);
      reject(new Error(`collector exited with ${code}:\n${out}`));
    };
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      const fail = () => reject(new Error(`collector (pid ${child.pid}) did not start in ${Math.round(startTimeoutMs / 1000)} s, killed:\n${out}`));
      if (child.exitCode !== null || child.signalCode !== null) return fail();
      child.once('exit', fail);
      child.kill('SIGKILL');
    }, startTimeoutMs);
    child.stdout.on('data', function check() {
      const g = /grpc \S+:(\d+)/.exec(out);
      const h = /http (https?):\/\/\S+:(\d+)/.exec(out);
      if (!g || !h) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout.off('data', check);
      resolve({ grpc: Number(g[1]), http: Number(h[2]), scheme: h[1] });
    });
    child.once('exit', onExit);
  });
  return {
    pid: child.pid,
    grpcAddress: `127.0.0.1:${ports.grpc}`,
    grpcPort: ports.grpc,
    httpPort: ports.http,
    httpUrl: `${ports.scheme}://127.0.0.1:${ports.http}`,
    dataDir,
    process: child,
    output: () => out,
    /** SIGTERM (the collector flushes), SIGKILL if it has not exited in 30 s. */
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
      }),
  };
}
