/**
 * `heapwatch_leak_flagged{service,function,file}`: one gauge per flagged
 * site, valued at its growth in bytes per hour, from the newest stored
 * report of each active service, so Prometheus and Alertmanager rules can
 * alert without a webhook. `heapwatch_process_leak_flagged{service,kind,instance}`
 * does the same for process findings. A scrape sees its token's tenant
 * only: the active services are read across tenants, as the leak monitor
 * does, and those of other tenants are left out. The number of series is
 * bounded.
 */
import { latestLeakReport } from '../leaks';
import type { ProfileStore } from '../store/store';
import { HOUR_MS } from '../units';

/** Services read per scrape, and series written, at most. */
const MAX_SERVICES = 500;
const MAX_SERIES = 1000;

/** A label value in Prometheus' text format: backslash, double quote and newline escaped. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export async function flaggedMetrics(store: ProfileStore, tenant: string, nowMs = Date.now()): Promise<string[]> {
  const active = await store.activeServices(nowMs - HOUR_MS, MAX_SERVICES);
  const tenantStore = store.forTenant(tenant);
  const sites: string[] = [];
  const processes: string[] = [];
  for (const { service } of active.filter((a) => a.tenant === tenant)) {
    const report = await latestLeakReport(tenantStore, service);
    if (!report) continue;
    const s = escapeLabel(service);
    for (const l of report.leaks) {
      if (sites.length >= MAX_SERIES) break;
      sites.push(`heapwatch_leak_flagged{service="${s}",function="${escapeLabel(l.function)}",file="${escapeLabel(l.file)}"} ${l.growthBytesPerHour}`);
    }
    for (const p of report.process) {
      if (processes.length >= MAX_SERIES) break;
      processes.push(`heapwatch_process_leak_flagged{service="${s}",kind="${p.kind}",instance="${escapeLabel(p.instance)}"} ${p.growthBytesPerHour}`);
    }
  }
  return [
    '# HELP heapwatch_leak_flagged A flagged leak site, valued at its growth in bytes per hour.',
    '# TYPE heapwatch_leak_flagged gauge',
    ...sites,
    '# HELP heapwatch_process_leak_flagged A flagged process finding, valued at its growth in bytes per hour.',
    '# TYPE heapwatch_process_leak_flagged gauge',
    ...processes,
  ];
}
