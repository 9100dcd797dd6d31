// The collector as users run it: `heapwatch serve` in a process of its own
// (chDB binds one data directory per process, and a benchmark client in the
// same process would steal its event loop), plus a gRPC client to feed it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { startCollectorProcess as startShared } from '../../scripts/lib/collector-process.mjs';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const { ingestProto } = require('@heapwatch/proto');

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `heapwatch-bench-${prefix}-`));
}

/** The shared launcher, with benchmark defaults: a fresh store, and no TTL (a day of old test data must not expire mid-run). */
export function startCollectorProcess({ dataDir = tempDir('data'), args = [], ...rest } = {}) {
  return startShared({ dataDir, args: ['--retention-days', '0', ...args], ...rest });
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
