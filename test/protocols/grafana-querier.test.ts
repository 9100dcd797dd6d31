/**
 * Grafana's "Grafana Pyroscope" data source reading heapwatch: a Connect
 * client built from Pyroscope's protos (test/helpers/pyroscope-client.ts)
 * calls every QuerierService method heapwatch serves, in binary protobuf
 * and in JSON, against a real collector holding real profiles from a worker
 * with the agent, and checks the answers against GET /api/v1/profile for
 * the same range: same totals, same top function.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { Profile } from 'pprof-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_REGISTER, ROOT, getJson, startCollectorProcess, waitFor, type RunningCollector } from '../helpers/collector';
import { pyroscopeClient, pyroscopeRegistry, type AnyClient } from '../helpers/pyroscope-client';

const SERVICE = 'grafana-payments-worker';
const SPACE = 'memory:inuse_space:bytes:space:bytes';
const OBJECTS = 'memory:inuse_objects:count:space:bytes';
const QUERIER = 'querier.v1.QuerierService';

interface Reference {
  bytes: number;
  objects: number;
  /** Function with the most self (leaf) bytes. */
  top: string;
}

/** Totals and top leaf function of a decoded pprof. */
function reference(p: Profile): Reference {
  const s = p.stringTable.strings;
  const fnName = new Map(p.function.map((f) => [String(f.id), s[Number(f.name)]!]));
  const leaf = new Map(p.location.map((l) => [String(l.id), fnName.get(String(l.line[0]!.functionId))!]));
  const bi = p.sampleType.findIndex((t) => s[Number(t.type)] === 'space');
  const oi = p.sampleType.findIndex((t) => s[Number(t.type)] === 'objects');
  const self = new Map<string, number>();
  let bytes = 0;
  let objects = 0;
  for (const sample of p.sample) {
    bytes += Number(sample.value[bi]);
    objects += Number(sample.value[oi]);
    const name = leaf.get(String(sample.locationId[0]))!;
    self.set(name, (self.get(name) ?? 0) + Number(sample.value[bi]));
  }
  const top = [...self.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  return { bytes, objects, top };
}

interface TreeNode {
  name: string;
  start: number;
  total: number;
  self: number;
  children: TreeNode[];
}

/**
 * Decodes flame graph levels the way Grafana does (levelsToTree): offsets
 * are relative to the end of the previous node on the level, and each
 * node lies within a parent of the level above. Throws when one does not.
 */
function decodeLevels(names: string[], levels: { values: bigint[] }[]): { root: TreeNode; nodes: TreeNode[] } {
  const v0 = levels[0]!.values.map(Number);
  const root: TreeNode = { name: names[v0[3]!]!, start: v0[0]!, total: v0[1]!, self: v0[2]!, children: [] };
  const nodes: TreeNode[] = [];
  let parents = [root];
  for (let l = 1; l < levels.length; l++) {
    const v = levels[l]!.values.map(Number);
    const next: TreeNode[] = [];
    let end = 0;
    let p = 0;
    for (let i = 0; i < v.length; i += 4) {
      const node: TreeNode = { name: names[v[i + 3]!]!, start: end + v[i]!, total: v[i + 1]!, self: v[i + 2]!, children: [] };
      end = node.start + node.total;
      while (p < parents.length && node.start + node.total > parents[p]!.start + parents[p]!.total) p++;
      const parent = parents[p];
      if (!parent || node.start < parent.start) throw new Error(`node ${node.name} on level ${l} lies outside every parent`);
      parent.children.push(node);
      next.push(node);
      nodes.push(node);
    }
    parents = next;
  }
  return { root, nodes };
}

function topSelf(nodes: TreeNode[]): string {
  const self = new Map<string, number>();
  for (const n of nodes) self.set(n.name, (self.get(n.name) ?? 0) + n.self);
  return [...self.entries()].sort((a, b) => b[1] - a[1])[0]![0];
}

function checkTree(root: TreeNode): void {
  const walk = (n: TreeNode): void => {
    const children = n.children.reduce((a, c) => a + c.total, 0);
    expect(n.self + children).toBe(n.total);
    n.children.forEach(walk);
  };
  walk(root);
}

describe('Grafana Pyroscope data source -> heapwatch (Connect)', () => {
  let collector: RunningCollector;
  let worker: ChildProcess | undefined;
  let fromMs = 0;
  let toMs = 0;
  let ref: Reference;
  let profiles = 0;

  beforeAll(async () => {
    collector = await startCollectorProcess();
    worker = spawn(process.execPath, ['--require', AGENT_REGISTER, path.join(ROOT, 'test/fixtures/retaining-worker.js')], {
      env: {
        ...process.env,
        HEAPWATCH_COLLECTOR: collector.grpcAddress,
        HEAPWATCH_SERVICE: SERVICE,
        HEAPWATCH_INTERVAL_MS: '500',
        HEAPWATCH_SAMPLING_INTERVAL_BYTES: String(32 * 1024),
        HEAPWATCH_LABELS: 'env=grafana,queue=payments',
        HEAPWATCH_LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    const entry = await waitFor(
      'four stored profiles',
      async () => {
        const { body } = await getJson<{ service: string; profiles: number; firstSeen: string; lastSeen: string }[]>(`${collector.httpUrl}/api/v1/services`);
        const s = body.find((x) => x.service === SERVICE);
        return s && s.profiles >= 4 ? s : undefined;
      },
      90_000,
    );
    worker.kill('SIGKILL');
    worker = undefined;
    // Nothing more arrives: the range is fixed and every answer is comparable.
    await new Promise((r) => setTimeout(r, 1500));
    const { body } = await getJson<{ service: string; profiles: number; firstSeen: string; lastSeen: string }[]>(`${collector.httpUrl}/api/v1/services`);
    const s = body.find((x) => x.service === SERVICE) ?? entry;
    profiles = s.profiles;
    fromMs = Date.parse(s.firstSeen) - 1000;
    toMs = Date.parse(s.lastSeen) + 1000;
    const res = await fetch(`${collector.httpUrl}/api/v1/profile?service=${SERVICE}&from=${fromMs}&to=${toMs}`);
    expect(res.status).toBe(200);
    ref = reference(Profile.decode(zlib.gunzipSync(Buffer.from(await res.arrayBuffer()))));
    expect(ref.bytes).toBeGreaterThan(0);
  });

  afterAll(async () => {
    worker?.kill('SIGKILL');
    await collector?.stop();
  });

  for (const json of [false, true]) {
    describe(json ? 'application/json' : 'application/proto', () => {
      let q: AnyClient;
      const range = () => ({ start: BigInt(fromMs), end: BigInt(toMs) });
      beforeAll(() => {
        q = pyroscopeClient(collector.httpUrl, QUERIER, json);
      });

      it('ProfileTypes (the health check) lists the two in-use types', async () => {
        const r = await q.profileTypes(range());
        expect(r.profileTypes.map((t: { ID: string }) => t.ID)).toEqual([SPACE, OBJECTS]);
        expect(r.profileTypes[0]).toMatchObject({ name: 'memory', sampleType: 'inuse_space', sampleUnit: 'bytes', periodType: 'space', periodUnit: 'bytes' });
      });

      it('GetProfileStats: data ingested, oldest and newest profile', async () => {
        const r = await q.getProfileStats({});
        expect(r.dataIngested).toBe(true);
        expect(Number(r.oldestProfileTime)).toBe(fromMs + 1000);
        expect(Number(r.newestProfileTime)).toBe(toMs - 1000);
      });

      it('LabelNames and LabelValues: service_name and the agent labels', async () => {
        const names = await q.labelNames({ matchers: [`{__profile_type__="${SPACE}"}`], ...range() });
        expect(names.names).toEqual(expect.arrayContaining(['service_name', 'env', 'queue']));
        const services = await q.labelValues({ name: 'service_name', matchers: [], ...range() });
        expect(services.names).toEqual([SERVICE]);
        const queues = await q.labelValues({ name: 'queue', matchers: [`{service_name="${SERVICE}"}`], ...range() });
        expect(queues.names).toEqual(['payments']);
        const none = await q.labelValues({ name: 'queue', matchers: ['{service_name="no-such-service"}'], ...range() });
        expect(none.names).toEqual([]);
        const series = await q.series({ matchers: [`{service_name="${SERVICE}"}`], labelNames: [], ...range() });
        const sets = series.labelsSet.map((s: { labels: { name: string; value: string }[] }) => Object.fromEntries(s.labels.map((l) => [l.name, l.value])));
        expect(sets).toContainEqual({ __profile_type__: SPACE, service_name: SERVICE, env: 'grafana', queue: 'payments' });
      });

      it('SelectMergeStacktraces: the flame graph has the export totals and top function', async () => {
        const r = await q.selectMergeStacktraces({ profileTypeID: SPACE, labelSelector: `{service_name="${SERVICE}"}`, ...range() });
        const g = r.flamegraph;
        expect(Number(g.total)).toBe(ref.bytes);
        const { root, nodes } = decodeLevels(g.names, g.levels);
        expect(root).toMatchObject({ name: 'total', total: ref.bytes });
        checkTree(root);
        expect(topSelf(nodes)).toBe(ref.top);
        expect(Number(g.maxSelf)).toBe(Math.max(...nodes.map((n) => n.self)));

        const objects = await q.selectMergeStacktraces({ profileTypeID: OBJECTS, labelSelector: `{service_name="${SERVICE}"}`, ...range() });
        expect(Number(objects.flamegraph.total)).toBe(ref.objects);

        // Labels filter; {} merges every service (here the one).
        const labelled = await q.selectMergeStacktraces({ profileTypeID: SPACE, labelSelector: `{service_name="${SERVICE}", queue="payments"}`, ...range() });
        expect(Number(labelled.flamegraph.total)).toBe(ref.bytes);
        const all = await q.selectMergeStacktraces({ profileTypeID: SPACE, labelSelector: '{}', ...range() });
        expect(Number(all.flamegraph.total)).toBe(ref.bytes);
        const other = await q.selectMergeStacktraces({ profileTypeID: SPACE, labelSelector: `{service_name="${SERVICE}", queue="other"}`, ...range() });
        expect(Number(other.flamegraph.total)).toBe(0);
      });

      it('SelectMergeStacktraces honours max_nodes, folding the rest into "other"', async () => {
        const full = await q.selectMergeStacktraces({ profileTypeID: SPACE, labelSelector: `{service_name="${SERVICE}"}`, ...range() });
        const fullNodes = decodeLevels(full.flamegraph.names, full.flamegraph.levels).nodes.length;
        expect(fullNodes).toBeGreaterThan(8);
        const r = await q.selectMergeStacktraces({ profileTypeID: SPACE, labelSelector: `{service_name="${SERVICE}"}`, maxNodes: 8n, ...range() });
        const { root, nodes } = decodeLevels(r.flamegraph.names, r.flamegraph.levels);
        const named = nodes.filter((n) => n.name !== 'other');
        expect(named.length).toBeLessThanOrEqual(8);
        expect(nodes.some((n) => n.name === 'other')).toBe(true);
        expect(root.total).toBe(ref.bytes);
        checkTree(root);
      });

      it('SelectSeries: one step over the range is the export total; steps and group_by', async () => {
        const one = await q.selectSeries({ profileTypeID: SPACE, labelSelector: `{service_name="${SERVICE}"}`, ...range(), step: (toMs - fromMs) / 1000 + 1 });
        expect(one.series).toHaveLength(1);
        expect(one.series[0].points).toHaveLength(1);
        expect(Math.abs(one.series[0].points[0].value - ref.bytes)).toBeLessThan(Math.max(50, ref.bytes * 1e-6));
        const steps = await q.selectSeries({ profileTypeID: OBJECTS, labelSelector: `{service_name="${SERVICE}"}`, ...range(), step: 1, groupBy: ['service_name', 'queue'] });
        expect(steps.series).toHaveLength(1);
        expect(steps.series[0].labels.map((l: { name: string; value: string }) => [l.name, l.value])).toEqual([['service_name', SERVICE], ['queue', 'payments']]);
        const points = steps.series[0].points;
        expect(points.length).toBeGreaterThanOrEqual(2);
        expect(points.length).toBeLessThanOrEqual(profiles);
        for (const p of points) {
          expect(Number(p.timestamp)).toBeGreaterThanOrEqual(fromMs);
          expect(Number(p.timestamp)).toBeLessThanOrEqual(toMs);
          expect(p.value).toBeGreaterThan(0);
        }
      });

      it('SelectMergeProfile: the merged pprof has the export totals', async () => {
        const r = await q.selectMergeProfile({ profileTypeID: SPACE, labelSelector: `{service_name="${SERVICE}"}`, ...range() });
        const desc = pyroscopeRegistry().getMessage('google.v1.Profile')!;
        const merged = reference(Profile.decode(toBinary(desc, r)));
        expect(merged).toEqual(ref);
      });

      it('Diff: both sides, with their ticks', async () => {
        const side = { profileTypeID: SPACE, labelSelector: `{service_name="${SERVICE}"}`, ...range() };
        const empty = { ...side, labelSelector: `{service_name="${SERVICE}", queue="other"}` };
        const r = await q.diff({ left: empty, right: side });
        const g = r.flamegraph;
        expect(Number(g.leftTicks)).toBe(0);
        expect(Number(g.rightTicks)).toBe(ref.bytes);
        expect(Number(g.total)).toBe(ref.bytes);
        const root = g.levels[0].values.map(Number);
        expect(root).toEqual([0, 0, 0, 0, ref.bytes, 0, 0]);
        // Every level's right side decodes as a flame graph of the same total.
        const right = g.levels.map((l: { values: bigint[] }) => ({ values: l.values.flatMap((_, i, v) => (i % 7 === 0 ? [v[i + 3]!, v[i + 4]!, v[i + 5]!, v[i + 6]!] : [])) }));
        const { root: tree, nodes } = decodeLevels(g.names, right);
        checkTree(tree);
        expect(topSelf(nodes)).toBe(ref.top);
      });

      it('refuses what it cannot answer with invalid_argument, and says why', async () => {
        const bad = async (call: Promise<unknown>, message: RegExp) => {
          const err = await call.then(() => null, (e: unknown) => e);
          expect(err).toBeInstanceOf(ConnectError);
          expect((err as ConnectError).code).toBe(Code.InvalidArgument);
          expect((err as ConnectError).rawMessage).toMatch(message);
        };
        await bad(q.selectMergeStacktraces({ profileTypeID: 'process_cpu:cpu:nanoseconds:cpu:nanoseconds', labelSelector: '{}', ...range() }), /not served.*inuse_space/);
        await bad(q.selectMergeStacktraces({ profileTypeID: SPACE, labelSelector: '{service_name=~"pay.*"}', ...range() }), /only = matchers/);
        await bad(q.selectMergeStacktraces({ profileTypeID: SPACE, labelSelector: 'service_name', ...range() }), /must be \{name="value"/);
        await bad(q.selectSeries({ profileTypeID: SPACE, labelSelector: '{}', ...range(), step: 0 }), /step/);
        await bad(q.labelValues({ name: '', matchers: [], ...range() }), /name is required/);
        await bad(q.profileTypes({ start: BigInt(toMs), end: BigInt(fromMs) }), /start .* is after end/);
      });
    });
  }

  it('answers protocol errors with Connect codes: unknown method, wrong content type, bad body, GET', async () => {
    const post = (p: string, type: string, body: string | Uint8Array) =>
      fetch(`${collector.httpUrl}${p}`, { method: 'POST', headers: { 'content-type': type }, body });
    let res = await post(`/${QUERIER}/SelectHeatmap`, 'application/proto', '');
    expect(res.status).toBe(501);
    expect(await res.json()).toMatchObject({ code: 'unimplemented' });
    res = await post(`/${QUERIER}/ProfileTypes`, 'text/plain', '');
    expect(res.status).toBe(415);
    expect(await res.json()).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/application\/proto or application\/json/) });
    res = await post(`/${QUERIER}/SelectMergeStacktraces`, 'application/proto', new Uint8Array([0x0a, 0xff, 0xff]));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/not a querier.v1.SelectMergeStacktracesRequest/) });
    res = await post(`/${QUERIER}/LabelNames`, 'application/json', '{"matchers": 5');
    expect(res.status).toBe(400);
    res = await fetch(`${collector.httpUrl}/${QUERIER}/ProfileTypes`);
    expect(res.status).toBe(405);
  });
});
