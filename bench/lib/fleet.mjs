// A fleet of simulated agents: S services x I instances, each instance with
// its own evolving series of snapshots over its service's stacks, encoded
// ahead of time so the load generator spends its CPU on sending, not on
// building profiles (encoding a 5,000-stack profile takes ~70 ms here).
import { encodeProfile, InstanceSeries, serviceStacks } from './profiles.mjs';
import { instanceOf } from './collector.mjs';

export function buildFleet({ services, instancesPerService, stacks, variants, seed = 1, startMs }) {
  const fleet = [];
  for (let s = 0; s < services; s++) {
    const service = `bench-svc-${s}`;
    // A pool 10% larger than `stacks`, of which ~`stacks` are live at a time.
    const serviceStackList = serviceStacks(seed * 1000 + s, Math.round(stacks * 1.1));
    for (let i = 0; i < instancesPerService; i++) {
      const index = s * instancesPerService + i;
      const series = new InstanceSeries(serviceStackList, seed * 7919 + index);
      const profiles = [];
      let values = 0;
      for (let v = 0; v < variants; v++) {
        const snap = series.next();
        values += snap.length;
        profiles.push(encodeProfile(serviceStackList, snap, startMs));
      }
      fleet.push({ service, instance: instanceOf(index, startMs - 3600_000), profiles, valuesPerProfile: values / variants, next: 0, timeMs: startMs });
    }
  }
  return fleet;
}
