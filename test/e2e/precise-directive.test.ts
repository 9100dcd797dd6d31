/**
 * The collector turns precise mode on by itself: a leaking worker runs the
 * agent in its default mode (inlining kept, no forced GC) against a real
 * collector (its own process, embedded ClickHouse, evaluating every second);
 * once the detector has a positive verdict on a site, the ingest responses
 * carry the directive and the agent switches to precise mode.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_REGISTER, ROOT, startCollectorProcess, waitFor, type RunningCollector } from '../helpers/collector';

const WORKER = path.join(ROOT, 'test/fixtures/retaining-worker.js');

describe('the collector asks a suspect service for precise mode', () => {
  let collector: RunningCollector;
  let worker: ChildProcess;
  let stderr = '';

  beforeAll(async () => {
    collector = await startCollectorProcess({ args: ['--leak-interval-ms', '1000'] });
    worker = spawn(process.execPath, ['--require', AGENT_REGISTER, WORKER], {
      env: {
        ...process.env,
        HEAPWATCH_COLLECTOR: collector.grpcAddress,
        HEAPWATCH_SERVICE: 'e2e-precise-worker',
        HEAPWATCH_INTERVAL_MS: '300',
        HEAPWATCH_SAMPLING_INTERVAL_BYTES: String(32 * 1024),
        HEAPWATCH_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  });

  afterAll(async () => {
    worker?.kill('SIGKILL');
    await collector?.stop();
  });

  it('starts in the default mode, and switches to precise mode on the directive', async () => {
    expect(stderr).not.toMatch(/precise mode on/);
    const line = await waitFor('precise mode on', async () => /precise mode on \((.*)\)/.exec(stderr)?.[1], 90_000, 250);
    expect(line).toMatch(/site\(s\) rising|leak flagged|heap not returning/);
  }, 120_000);
});
