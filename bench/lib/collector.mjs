// The collector as users run it: `heapwatch serve` in a process of its own
// (chDB binds one data directory per process, and a benchmark client in the
// same process would steal its event loop), plus a gRPC client to feed it.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { ROOT } from './report.mjs';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const { ingestProto } = require('@heapwatch/proto');

export const CLI = path.join(ROOT, 'collector/dist/cli.js');

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `heapwatch-bench-${prefix}-`));
}

export async function startCollectorProcess({ dataDir = tempDir('data'), args = [], env = {}, grpcPort = 0, httpPort = 0, nodeArgs = [] } = {}) {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -b\` first`);
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--data', dataDir, '--grpc-port', String(grpcPort), '--http-port', String(httpPort), '--log-level', 'warn', '--retention-days', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const ports = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector did not start in 60 s:\n${out}`)), 60_000);
    const check = () => {
      const g = /grpc [^\s]+:(\d+)/.exec(out);
      const h = /http http:\/\/[^\s]+:(\d+)/.exec(out);
      if (g && h) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve({ grpc: Number(g[1]), http: Number(h[1]) });
      }
    };
    const onExit = (code) => {
      clearTimeout(timer);
      reject(new Error(`collector exited with ${code}:\n${out}`));
    };
    child.stdout.on('data', check);
    child.once('exit', onExit);
  });
  return {
    pid: child.pid,
    grpcAddress: `127.0.0.1:${ports.grpc}`,
    grpcPort: ports.grpc,
    httpPort: ports.http,
    httpUrl: `http://127.0.0.1:${ports.http}`,
    dataDir,
    process: child,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
      }),
  };
}

export function ingestClient(address) {
  const Client = ingestProto().heapwatch.v1.IngestService;
  return new Client(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 << 20,
  });
}

/** One simulated agent's identity. */
export function instanceOf(i, startMs) {
  return { hostname: `bench-host-${Math.floor(i / 4)}`, pid: 1000 + i, processStartTimeMs: startMs, threadId: 0, runtimeVersion: process.version, agentVersion: 'bench' };
}

export function ingestRequest({ service, instance, pprofGzip, endTimeMs, startTimeMs }) {
  return {
    profileId: randomUUID(),
    service,
    labels: { env: 'bench' },
    instance,
    startTimeMs: startTimeMs ?? endTimeMs - 60_000,
    endTimeMs,
    pprofGzip,
    memory: { rssBytes: 200 << 20, heapUsedBytes: 120 << 20, heapTotalBytes: 150 << 20, externalBytes: 1 << 20, arrayBuffersBytes: 1 << 19, heapSizeLimitBytes: 4096 << 20 },
    agent: { profilesSent: 1, profilesDropped: 0, samplingTimeUs: 1000, queueLength: 0, queueBytes: 0, sendFailures: 0 },
  };
}

/** Resolves with the acknowledgement time in ms; rejects with the gRPC error. */
export function send(client, request, deadlineMs = 60_000) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    client.Ingest(request, { deadline: Date.now() + deadlineMs }, (err) => (err ? reject(err) : resolve(performance.now() - t0)));
  });
}

export async function httpGet(url) {
  const t0 = performance.now();
  const res = await fetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, ms: performance.now() - t0, bytes: body.length, body, headers: res.headers };
}
