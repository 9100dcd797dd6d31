// The query benchmark's store: I instances of one service over H hours at
// S-second intervals, loaded through a real collector (its own process) the
// way a live fleet sends, time-major. Shared by bench/query.mjs (the API's
// latency) and bench/ui.mjs (the web UI's data and rendering). Either way
// the collector is then (re)started on it and its first pass of the hourly
// rollup awaited, so long-range merges read the store as one that has been
// running does.
//
// With `store` (a directory; --store DIR on the command line) the store is
// kept there: a later run with the same settings starts the collector on it
// instead of loading again (loading takes minutes on a quiet machine and
// most of an hour on a busy one), so the measurements can be repeated when
// the machine is quiet. The caller must not delete it. (bench/ui.mjs takes
// it; bench/query.mjs does not: its evaluate=true, run long after the load,
// would age the silent instances out and judge less.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeProfile, InstanceSeries, serviceStacks } from './profiles.mjs';
import { ingestClient, ingestRequest, instanceOf, send, startCollectorProcess } from './collector.mjs';

const MARKER = 'fleet-day.json';

/**
 * @param {{ service: string, instances: number, stacks: number, hours: number, intervalS: number, concurrency: number, store?: string }} o
 * @returns {Promise<{ collector: Awaited<ReturnType<typeof startCollectorProcess>>, startMs: number, endMs: number, perInstance: number, total: number, values: number, loadSeconds: number, reused: string | null }>}
 */
export async function loadFleetDay({ service, instances, stacks: stackCount, hours, intervalS, concurrency, store }) {
  const perInstance = Math.round((hours * 3600) / intervalS);
  const shape = { service, instances, stacks: stackCount, hours, intervalS };
  if (store && fs.existsSync(path.join(store, MARKER))) {
    const saved = JSON.parse(fs.readFileSync(path.join(store, MARKER), 'utf8'));
    const differs = Object.keys(shape).filter((k) => saved.shape[k] !== shape[k]);
    if (differs.length) throw new Error(`${store} holds a fleet-day of other settings (${differs.map((k) => `${k}=${saved.shape[k]}`).join(', ')}): give another --store`);
    const collector = await startCollectorProcess({ dataDir: store });
    console.error(`reusing the fleet-day loaded into ${store} at ${saved.loadedAt} (in ${saved.loadSeconds.toFixed(0)} s)`);
    await rolledUp(collector);
    return { collector, ...saved.result, reused: saved.loadedAt };
  }
  if (store && fs.existsSync(store) && fs.readdirSync(store).length) throw new Error(`${store} is not empty and holds no ${MARKER}`);
  const endMs = Date.now() - 60_000;
  const startMs = endMs - (perInstance - 1) * intervalS * 1000;
  const stacks = serviceStacks(777, Math.round(stackCount * 1.1));
  const agents = Array.from({ length: instances }, (_, i) => ({ series: new InstanceSeries(stacks, 900 + i), instance: instanceOf(i, startMs - 3600_000), next: 0 }));
  if (store) fs.mkdirSync(store, { recursive: true });
  let collector = await startCollectorProcess(store ? { dataDir: store } : {});
  const client = ingestClient(collector.grpcAddress);
  const total = perInstance * instances;
  let sent = 0;
  let values = 0;
  const t0 = performance.now();
  console.error(`loading ${total} profiles (${instances} instances x ${perInstance}) ...`);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const k = sent++;
        if (k >= total) return;
        // Time-major order, as a live fleet sends.
        const agent = agents[k % instances];
        const i = agent.next++;
        const snap = agent.series.next();
        values += snap.length;
        const endTimeMs = startMs + i * intervalS * 1000;
        await send(client, ingestRequest({ service, instance: agent.instance, pprofGzip: encodeProfile(stacks, snap, endTimeMs), endTimeMs, startTimeMs: endTimeMs - intervalS * 1000 }));
        if (k % 1000 === 0) console.error(`  ${k}/${total}`);
      }
    }),
  );
  const loadSeconds = (performance.now() - t0) / 1000;
  client.close();
  // Restarted, so that its start-up pass sums every hour the load left
  // unsummed, as a store that has been running would have them.
  const dataDir = collector.dataDir;
  await collector.stop();
  collector = await startCollectorProcess({ dataDir });
  await rolledUp(collector);
  const result = { startMs, endMs, perInstance, total, values, loadSeconds };
  if (store) fs.writeFileSync(path.join(store, MARKER), JSON.stringify({ shape, loadedAt: new Date().toISOString(), loadSeconds, result }, null, 2));
  return { collector, ...result, reused: null };
}

/** Waits for the collector's first pass of the hourly rollup (collector/src/store/rollup.ts) to end. */
async function rolledUp(collector) {
  const t0 = performance.now();
  for (;;) {
    const metrics = await (await fetch(`${collector.httpUrl}/metrics`)).text();
    const runs = Number(/^heapwatch_rollup_runs_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    if (runs > 0) break;
    if (performance.now() - t0 > 30 * 60_000) throw new Error('the hourly rollup did not run within 30 minutes');
    await new Promise((r) => setTimeout(r, 500));
  }
  const hours = /^heapwatch_rollup_hours_total (\d+)/m.exec(await (await fetch(`${collector.httpUrl}/metrics`)).text())?.[1];
  console.error(`hourly rollup: first pass done in ${((performance.now() - t0) / 1000).toFixed(0)} s, ${hours} hours summed`);
}
