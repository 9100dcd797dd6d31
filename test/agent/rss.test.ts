/**
 * Measures (does not assert) the agent's RSS overhead: the same steady worker
 * with and without the agent preloaded, sending every 200 ms for ~10 s. The
 * numbers are printed for the record; budgets and comparisons against other
 * agents belong in bench/. What is asserted is only that the measured run
 * really profiled and sent, so the measurement cannot silently be of nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startCollectorDouble, type CollectorDouble } from './helpers/collector-double';
import { runWithAgent } from './helpers/run-agent';

interface Probe {
  rssEnd: number;
  rssMax: number;
  rssLateMedian: number;
  agent: { profilesSent: number } | null;
}

const RUN_MS = Number(process.env.HEAPWATCH_RSS_RUN_MS ?? 10_000);
const ROUNDS = Number(process.env.HEAPWATCH_RSS_ROUNDS ?? 1);
const MB = 1024 * 1024;

let c: CollectorDouble | undefined;
afterEach(async () => {
  await c?.close();
  c = undefined;
});

async function probe(withAgent: boolean, collector: string): Promise<Probe> {
  const run = runWithAgent(
    'rss-probe.js',
    { HEAPWATCH_COLLECTOR: collector, HEAPWATCH_INTERVAL_MS: '200', FIXTURE_RUN_MS: String(RUN_MS) },
    withAgent ? 'require' : 'none',
  );
  const { code } = await run.exited;
  expect(code, run.stderr()).toBe(0);
  return JSON.parse(run.stdout().trim()) as Probe;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const mb = (n: number): string => `${(n / MB).toFixed(1)} MB`;

describe('agent RSS overhead (measured, reported, not asserted)', () => {
  it(`worker with vs without the agent, 200 ms interval, ${RUN_MS} ms`, async () => {
    c = await startCollectorDouble();
    const base: Probe[] = [];
    const agent: Probe[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Side by side in one run, alternating, so machine load hits both.
      base.push(await probe(false, c.address));
      agent.push(await probe(true, c.address));
    }
    for (const p of agent) expect(p.agent?.profilesSent ?? 0).toBeGreaterThan(RUN_MS / 200 / 4);
    for (const p of base) expect(p.agent).toBeNull();
    const row = (k: keyof Omit<Probe, 'agent'>): string => {
      const b = median(base.map((p) => p[k]));
      const a = median(agent.map((p) => p[k]));
      return `${k.padEnd(14)} no agent ${mb(b).padStart(9)}  agent ${mb(a).padStart(9)}  delta ${mb(a - b).padStart(9)}`;
    };
    console.log(
      [`RSS, median of ${ROUNDS} round(s), ${c.received.length} profiles received:`, row('rssLateMedian'), row('rssMax'), row('rssEnd')].join('\n'),
    );
  }, 60_000 + 2 * RUN_MS * ROUNDS * 1.5);
});
