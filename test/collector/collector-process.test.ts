/**
 * The shared launcher of `heapwatch serve` (scripts/lib/collector-process.mjs),
 * used by the tests, the benchmarks and the demo: a collector that does not
 * start in time is killed before the launcher gives up, so a retry on the
 * same data directory and ports is not refused by the one left behind
 * (bench/agent-leak.mjs retries its restart).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/collector';
import { startCollectorProcess } from '../../scripts/lib/collector-process.mjs';

describe('startCollectorProcess', () => {
  it('kills a collector that has not printed its ports by the deadline, then rejects', async () => {
    const dir = tempDir('launcher');
    // Stands in for a collector stuck opening its store: runs, prints nothing.
    const cli = path.join(dir, 'stuck.js');
    fs.writeFileSync(cli, "process.stdout.write('opening\\n'); setInterval(() => {}, 1000);\n");
    try {
      const err = await startCollectorProcess({ dataDir: path.join(dir, 'data'), cli, startTimeoutMs: 1500 }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(/did not start in 2 s, killed/);
      const pid = Number(/pid (\d+)/.exec(err!.message)![1]);
      // Gone by the time the promise rejected: signal 0 finds no such process.
      expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
