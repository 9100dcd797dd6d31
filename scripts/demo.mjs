#!/usr/bin/env node
// npm run demo: the whole product in about a minute. Starts the collector on
// a fresh embedded store, starts a worker with a leaky retry buffer and the
// agent preloaded, waits for the detector to flag the site, and prints the
// report the way `heapwatch leaks` does. Everything it starts, it stops.
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCollectorProcess } from './lib/collector-process.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'collector/dist/cli.js');
const worker = path.join(root, 'bench/scenarios/leaks/retry-buffer.js');
const service = 'demo-retry-worker';
const INTERVAL_MS = 1000;
const GIVE_UP_MS = 180_000;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapwatch-demo-'));
const children = [];
// The collector flushes into its data directory on SIGTERM: remove the
// directory only once every child has exited.
async function stopAll() {
  await Promise.all(
    children.map((c) =>
      c.exitCode !== null || c.signalCode !== null
        ? undefined
        : new Promise((resolve) => {
            c.once('exit', resolve);
            c.kill('SIGTERM');
          }),
    ),
  );
  fs.rmSync(dataDir, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  stopAll().finally(() => process.exit(130));
});

function start(args, env = {}) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

// 1 s profiles for a demo of a minute or two: the leak's minimum growth time
// (10 minutes by default, docs/detector.md#minimum-growth-time) is shortened to match.
const collector = await startCollectorProcess({ dataDir, args: ['--leak-interval-ms', '2000', '--leak-min-growth-ms', '20000'] });
children.push(collector.process);
const ports = { grpc: collector.grpcAddress, http: collector.httpUrl };
console.log(`collector: gRPC ${ports.grpc}, HTTP ${ports.http}, embedded store in ${dataDir}`);

start(['--require', path.join(root, 'agent/register.js'), worker], {
  HEAPWATCH_COLLECTOR: ports.grpc,
  HEAPWATCH_SERVICE: service,
  HEAPWATCH_INTERVAL_MS: String(INTERVAL_MS),
  HEAPWATCH_SAMPLING_INTERVAL_BYTES: String(64 * 1024),
}).stderr.on('data', (d) => process.stderr.write(d));
console.log(`worker:    ${path.relative(root, worker)} (a retry buffer that is never drained), one profile a second`);
console.log('waiting for the detector to flag a site ...');

const started = Date.now();
let report;
while (Date.now() - started < GIVE_UP_MS) {
  await new Promise((r) => setTimeout(r, 2000));
  const res = await fetch(`${ports.http}/api/v1/leaks?service=${service}`).catch(() => undefined);
  if (!res?.ok) continue;
  report = await res.json();
  const services = await (await fetch(`${ports.http}/api/v1/services`)).json();
  const profiles = services.find((s) => s.service === service)?.profiles ?? 0;
  process.stdout.write(`  ${Math.round((Date.now() - started) / 1000)} s: ${profiles} profiles stored, ${report.leaks.length} site(s) flagged\n`);
  if (report.leaks.length > 0) break;
}

let code = 1;
if (report?.leaks.length > 0) {
  console.log(`\n$ heapwatch leaks --service ${service} --url ${ports.http}`);
  try {
    execFileSync(process.execPath, [cli, 'leaks', '--service', service, '--url', ports.http], { stdio: 'inherit' });
  } catch (err) {
    code = err.status === 3 ? 0 : 1; // 3 = leaks flagged, which is what the demo expects
  }
} else {
  console.error(`nothing was flagged within ${GIVE_UP_MS / 1000} s; the collector said:\n${collector.output().slice(-2000)}`);
}
await stopAll();
process.exit(code);
