/**
 * `querier.v1.QuerierService`, the query API of Grafana Pyroscope, over
 * heapwatch's store: what Grafana's "Grafana Pyroscope" data source calls.
 *
 * Two profile types, one per sample type heapwatch stores:
 * `memory:inuse_space:bytes:space:bytes` and
 * `memory:inuse_objects:count:space:bytes`. The service is the label
 * `service_name`; the agent's labels are labels. Values have heapwatch's
 * merge semantics, not Pyroscope's sum: heap profiles are gauges, so within
 * a range (the whole range for a flame graph, one step for a time series)
 * each instance is averaged over its profiles and instances are summed
 * (docs/integrations.md).
 */
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { DEFAULT_MAX_NODES, flameGraph, flameGraphDiff, MAX_MAX_NODES, type Measure } from '../query/flamebearer';
import { toPprof } from '../query/pprof';
import { parseSelector, SelectorError, type Selector } from '../query/selector';
import { SERVICE_LABEL, type MergedStack, type ProfileSelection, type TenantStore } from '../store/store';
import { HOUR_MS, SECOND_MS } from '../units';
import { ConnectError, RawAnswer, type ConnectService } from './connect';

const gunzip = promisify(zlib.gunzip);

export const PROFILE_TYPES = [
  { ID: 'memory:inuse_space:bytes:space:bytes', name: 'memory', sampleType: 'inuse_space', sampleUnit: 'bytes', periodType: 'space', periodUnit: 'bytes' },
  { ID: 'memory:inuse_objects:count:space:bytes', name: 'memory', sampleType: 'inuse_objects', sampleUnit: 'count', periodType: 'space', periodUnit: 'bytes' },
] as const;

const MEASURE: Record<string, Measure> = {
  [PROFILE_TYPES[0].ID]: 'bytes',
  [PROFILE_TYPES[1].ID]: 'objects',
};

/** Bounds on one call's work. */
const MAX_LABELS = 1000;
const MAX_MATCHERS = 16;
/** A selector without service_name merges every service, up to this many. */
const MAX_SERVICES_MERGED = 100;
/** Points of one SelectSeries answer (Prometheus' bound on a range query). */
const MAX_POINTS = 11_000;

function measureOf(profileTypeId: unknown): Measure {
  const m = MEASURE[String(profileTypeId)];
  if (!m) {
    throw new ConnectError(
      'invalid_argument',
      `profile type ${JSON.stringify(profileTypeId)} is not served; heapwatch serves ${PROFILE_TYPES.map((t) => t.ID).join(' and ')}`,
    );
  }
  return m;
}

function selector(text: unknown): Selector {
  try {
    return parseSelector(String(text ?? ''));
  } catch (err) {
    if (err instanceof SelectorError) throw new ConnectError('invalid_argument', err.message);
    throw err;
  }
}

/** start/end in Unix ms; absent (0) means the last hour. */
function range(req: Record<string, unknown>): { fromMs: number; toMs: number } {
  const end = Number(req.end ?? 0);
  const start = Number(req.start ?? 0);
  const toMs = end > 0 ? end : Date.now();
  const fromMs = start > 0 ? start : toMs - HOUR_MS;
  if (fromMs > toMs) throw new ConnectError('invalid_argument', `start (${fromMs}) is after end (${toMs})`);
  return { fromMs, toMs };
}

function maxNodes(value: unknown): number {
  if (value === undefined || value === null || Number(value) === 0) return DEFAULT_MAX_NODES;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new ConnectError('invalid_argument', `max_nodes must be a positive integer, got ${String(value)}`);
  return Math.min(n, MAX_MAX_NODES);
}

function selection(sel: Selector, r: { fromMs: number; toMs: number }): ProfileSelection {
  return { ...(sel.service !== undefined ? { service: sel.service } : {}), fromMs: r.fromMs, toMs: r.toMs, labels: sel.labels };
}

/** A selector's `__profile_type__`, if any, must be one heapwatch serves; otherwise nothing matches. */
function typeMatches(sel: Selector): boolean {
  return sel.profileType === undefined || sel.profileType in MEASURE;
}

/** Every method reads through the caller's tenant's store, so a tenant sees only its own profiles. */
export function querierService(): ConnectService {
  /** The merged stacks of a selection: one service, or every service in the range. */
  const merged = async (store: TenantStore, sel: Selector, r: { fromMs: number; toMs: number }): Promise<MergedStack[]> => {
    let services: string[];
    if (sel.service !== undefined) services = [sel.service];
    else {
      services = await store.labelValues(SERVICE_LABEL, selection(sel, r), MAX_SERVICES_MERGED + 1);
      if (services.length > MAX_SERVICES_MERGED) {
        throw new ConnectError('invalid_argument', `the selector matches over ${MAX_SERVICES_MERGED} services; name one with service_name="..."`);
      }
    }
    const stacks: MergedStack[] = [];
    for (const service of services) {
      const m = await store.mergedProfile({ service, fromMs: r.fromMs, toMs: r.toMs, labels: sel.labels });
      stacks.push(...m.stacks);
    }
    return stacks;
  };

  const flameRequest = async (store: TenantStore, req: Record<string, unknown>) => {
    const measure = measureOf(req.profileTypeID);
    const sel = selector(req.labelSelector);
    const r = range(req);
    return { measure, nodes: maxNodes(req.maxNodes), stacks: typeMatches(sel) ? await merged(store, sel, r) : [] };
  };

  /** Label names or values over the union of the matchers (no matcher: everything). */
  const overMatchers = async (
    req: Record<string, unknown>,
    read: (q: ProfileSelection) => Promise<string[]>,
  ): Promise<string[]> => {
    const r = range(req);
    const matchers = (req.matchers as string[] | undefined)?.length ? (req.matchers as string[]) : ['{}'];
    if (matchers.length > MAX_MATCHERS) throw new ConnectError('invalid_argument', `at most ${MAX_MATCHERS} matchers`);
    const out = new Set<string>();
    for (const m of matchers) {
      const sel = selector(m);
      if (!typeMatches(sel)) continue;
      for (const v of await read(selection(sel, r))) out.add(v);
    }
    return [...out].sort().slice(0, MAX_LABELS);
  };

  return {
    name: 'querier.v1.QuerierService',
    methods: {
      GetProfileStats: async (_req, { store }) => {
        const all = await store.services();
        if (all.length === 0) return { dataIngested: false };
        return {
          dataIngested: true,
          oldestProfileTime: Math.min(...all.map((s) => Date.parse(s.firstSeen))),
          newestProfileTime: Math.max(...all.map((s) => Date.parse(s.lastSeen))),
        };
      },
      ProfileTypes: async (req) => {
        range(req);
        return { profileTypes: PROFILE_TYPES.map((t) => ({ ...t })) };
      },
      LabelNames: async (req, { store }) => ({
        names: await overMatchers(req, async (q) => {
          const names = await store.labelNames(q, MAX_LABELS);
          const any = names.length > 0 || (await store.labelValues(SERVICE_LABEL, q, 1)).length > 0;
          return any ? ['__profile_type__', SERVICE_LABEL, ...names] : [];
        }),
      }),
      LabelValues: async (req, { store }) => {
        const name = String(req.name ?? '');
        if (!name) throw new ConnectError('invalid_argument', 'name is required');
        if (name === '__profile_type__') return { names: PROFILE_TYPES.map((t) => t.ID) };
        return { names: await overMatchers(req, (q) => store.labelValues(name, q, MAX_LABELS)) };
      },
      Series: async (req, { store }) => {
        const r = range(req);
        const only = (req.labelNames as string[] | undefined) ?? [];
        const matchers = (req.matchers as string[] | undefined)?.length ? (req.matchers as string[]) : ['{}'];
        if (matchers.length > MAX_MATCHERS) throw new ConnectError('invalid_argument', `at most ${MAX_MATCHERS} matchers`);
        const seen = new Set<string>();
        const labelsSet: { labels: { name: string; value: string }[] }[] = [];
        for (const m of matchers) {
          const sel = selector(m);
          if (!typeMatches(sel)) continue;
          for (const s of await store.labelSets(selection(sel, r), MAX_LABELS)) {
            for (const t of PROFILE_TYPES) {
              const all: Record<string, string> = { __profile_type__: t.ID, [SERVICE_LABEL]: s.service, ...s.labels };
              const pairs = Object.entries(all)
                .filter(([k]) => only.length === 0 || only.includes(k))
                .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
                .map(([name, value]) => ({ name, value }));
              const key = JSON.stringify(pairs);
              if (seen.has(key)) continue;
              seen.add(key);
              labelsSet.push({ labels: pairs });
            }
          }
        }
        return { labelsSet: labelsSet.slice(0, MAX_LABELS) };
      },
      SelectMergeStacktraces: async (req, { store }) => {
        if (req.format === 'PROFILE_FORMAT_TREE') throw new ConnectError('invalid_argument', 'format PROFILE_FORMAT_TREE is not served; ask for the flame graph');
        const { measure, nodes, stacks } = await flameRequest(store, req);
        const g = flameGraph(stacks, measure, nodes);
        return { flamegraph: { names: g.names, levels: g.levels, total: g.total, maxSelf: g.maxSelf } };
      },
      Diff: async (req, { store }) => {
        const left = req.left as Record<string, unknown> | undefined;
        const right = req.right as Record<string, unknown> | undefined;
        if (!left || !right) throw new ConnectError('invalid_argument', 'left and right are required');
        if (left.profileTypeID !== right.profileTypeID) {
          throw new ConnectError('invalid_argument', 'left and right must have the same profile type');
        }
        const l = await flameRequest(store, left);
        const r = await flameRequest(store, right);
        const g = flameGraphDiff(l.stacks, r.stacks, l.measure, l.nodes);
        return { flamegraph: { names: g.names, levels: g.levels, total: g.total, maxSelf: g.maxSelf, leftTicks: g.leftTicks, rightTicks: g.rightTicks } };
      },
      SelectMergeProfile: async (req, { store }) => {
        measureOf(req.profileTypeID);
        const sel = selector(req.labelSelector);
        const r = range(req);
        const stacks = typeMatches(sel) ? await merged(store, sel, r) : [];
        const pprof = await toPprof({
          query: { service: sel.service ?? '*', fromMs: r.fromMs, toMs: r.toMs, labels: sel.labels },
          profiles: 0,
          profilesFromRollup: 0,
          instances: 0,
          stacks,
        });
        return new RawAnswer(await gunzip(pprof));
      },
      SelectSeries: async (req, { store }) => {
        const measure = measureOf(req.profileTypeID);
        const sel = selector(req.labelSelector);
        const r = range(req);
        const step = Number(req.step ?? 0);
        if (!(step > 0)) throw new ConnectError('invalid_argument', 'step (seconds) must be > 0');
        const stepMs = step * SECOND_MS;
        if ((r.toMs - r.fromMs) / stepMs > MAX_POINTS) {
          throw new ConnectError('invalid_argument', `the range holds over ${MAX_POINTS} steps of ${step} s; use a larger step`);
        }
        const groupBy = ((req.groupBy as string[] | undefined) ?? []).slice();
        if (groupBy.length > MAX_MATCHERS) throw new ConnectError('invalid_argument', `group_by takes at most ${MAX_MATCHERS} labels`);
        const limit = Number(req.limit ?? 0);
        if (!typeMatches(sel)) return { series: [] };
        const points = await store.totalSeries({ ...selection(sel, r), stepMs, groupBy, limit: MAX_POINTS * 10 });
        const series = new Map<string, { labels: { name: string; value: string }[]; points: { value: number; timestamp: number }[]; sum: number }>();
        for (const p of points) {
          const key = JSON.stringify(p.group);
          let s = series.get(key);
          if (!s) {
            s = { labels: groupBy.map((name, i) => ({ name, value: p.group[i] ?? '' })), points: [], sum: 0 };
            series.set(key, s);
          }
          const value = measure === 'bytes' ? p.bytes : p.objects;
          s.points.push({ value, timestamp: p.timeMs });
          s.sum += value;
        }
        let out = [...series.values()];
        if (limit > 0) out = out.sort((a, b) => b.sum - a.sum).slice(0, limit);
        return { series: out.map(({ labels, points: ps }) => ({ labels, points: ps })) };
      },
    },
  };
}
