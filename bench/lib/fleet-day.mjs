// The query benchmark's store: I instances of one service over H hours at
// S-second intervals, loaded through a real collector (its own process) the
// way a live fleet sends, time-major. Shared by bench/query.mjs (the API's
// latency) and bench/ui.mjs (the web UI's data and rendering).
import { encodeProfile, InstanceSeries, serviceStacks } from './profiles.mjs';
import { ingestClient, ingestRequest, instanceOf, send, startCollectorProcess } from './collector.mjs';

/**
 * @param {{ service: string, instances: number, stacks: number, hours: number, intervalS: number, concurrency: number }} o
 * @returns {Promise<{ collector: Awaited<ReturnType<typeof startCollectorProcess>>, startMs: number, endMs: number, perInstance: number, total: number, values: number, loadSeconds: number }>}
 */
export async function loadFleetDay({ service, instances, stacks: stackCount, hours, intervalS, concurrency }) {
  const perInstance = Math.round((hours * 3600) / intervalS);
  const endMs = Date.now() - 60_000;
  const startMs = endMs - (perInstance - 1) * intervalS * 1000;
  const stacks = serviceStacks(777, Math.round(stackCount * 1.1));
  const agents = Array.from({ length: instances }, (_, i) => ({ series: new InstanceSeries(stacks, 900 + i), instance: instanceOf(i, startMs - 3600_000), next: 0 }));
  const collector = await startCollectorProcess();
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
  return { collector, startMs, endMs, perInstance, total, values, loadSeconds };
}
