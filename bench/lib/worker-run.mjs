// Runs bench/workers/job-worker.js as a child process for parts 1 and 2:
// the command line of each variant, a tiny HTTP sink standing in for a
// Pyroscope server, and a parser for the worker's stdout lines.
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { BENCH_DIR, ROOT } from './report.mjs';

export const WORKER = path.join(BENCH_DIR, 'workers/job-worker.js');
export const DEFAULT_AGENT_DIR = path.join(ROOT, 'agent');

/**
 * Starts one worker. `variant` is none | heapwatch | pyroscope | inspector.
 * `onLine(kind, obj)` sees every SAMPLE/MEASURING line as it arrives.
 * Resolves with the RESULT object; rejects if the worker fails.
 */
export function runWorker({ variant, agentDir = DEFAULT_AGENT_DIR, collector, service, env = {}, maxOldSpaceMb = 4096, onLine, onStart, ...config }) {
  const nodeArgs = [`--max-old-space-size=${maxOldSpaceMb}`, '--expose-gc'];
  const childEnv = { ...process.env, HEAPWATCH_ENABLED: 'false', ...env };
  // 'heapwatch-precise': the agent in precise mode for the whole run
  // (HEAPWATCH_PRECISE=always: inlining off, GC assist), what a worker pays
  // while its collector suspects a leak.
  const precise = variant === 'heapwatch-precise';
  if (precise) variant = 'heapwatch';
  if (variant === 'heapwatch') {
    nodeArgs.push('--require', path.join(agentDir, 'register.js'));
    Object.assign(childEnv, {
      HEAPWATCH_ENABLED: 'true',
      HEAPWATCH_COLLECTOR: collector,
      HEAPWATCH_SERVICE: service,
      HEAPWATCH_INTERVAL_MS: String(config.intervalMs),
      HEAPWATCH_LOG_LEVEL: process.env.HEAPWATCH_LOG_LEVEL ?? 'error',
      ...(precise ? { HEAPWATCH_PRECISE: 'always' } : {}),
      ...env,
    });
  }
  const child = spawn(process.execPath, [...nodeArgs, WORKER, JSON.stringify({ variant, agentDir, ...config })], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv,
    cwd: ROOT,
  });
  onStart?.(child);
  let buf = '';
  let err = '';
  let result;
  child.stderr.on('data', (d) => (err += d));
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const sp = line.indexOf(' ');
      const kind = line.slice(0, sp);
      let obj;
      try {
        obj = JSON.parse(line.slice(sp + 1));
      } catch {
        continue;
      }
      if (kind === 'RESULT') result = obj;
      else onLine?.(kind, obj);
    }
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => {
      if (result && code === 0) resolve({ ...result, variant: precise ? 'heapwatch-precise' : result.variant, pid: child.pid, stderr: err.slice(-2000) });
      else reject(new Error(`job-worker ${variant} exited ${code ?? signal}:\n${err.slice(-4000)}`));
    });
  });
}

/** A stand-in for a Pyroscope server: accepts POST /ingest, counts. */
export async function startPyroscopeSink() {
  const stats = { requests: 0, bytes: 0 };
  const server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (d) => (n += d.length));
    req.on('end', () => {
      stats.requests++;
      stats.bytes += n;
      res.writeHead(200).end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, stats, close: () => new Promise((r) => server.close(r)) };
}

export const loadavg = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

/**
 * Theil-Sen slope of y over x (median of pairwise slopes), with the 95 %
 * interval of Sen (1968) from the normal approximation of Kendall's S.
 */
export function theilSen(xs, ys) {
  const slopes = [];
  const n = xs.length;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (xs[j] !== xs[i]) slopes.push((ys[j] - ys[i]) / (xs[j] - xs[i]));
  slopes.sort((a, b) => a - b);
  const N = slopes.length;
  const at = (k) => slopes[Math.min(N - 1, Math.max(0, Math.round(k)))];
  const slope = N % 2 ? slopes[(N - 1) / 2] : (slopes[N / 2 - 1] + slopes[N / 2]) / 2;
  const c = 1.96 * Math.sqrt((n * (n - 1) * (2 * n + 5)) / 18);
  return { slope, lo: at((N - c) / 2 - 1), hi: at((N + c) / 2), n };
}
