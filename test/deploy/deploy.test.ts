/**
 * deploy/ checked as far as a machine without a Docker engine, Envoy or a
 * ClickHouse server allows: every YAML and XML file parses; compose files
 * mount only files that exist; every flag and env var the layouts pass to
 * the collector is accepted by the real CLI parser (`serveOptions`); the
 * ClickHouse cluster config, the compose services, Envoy and the schema's
 * cluster DDL agree with each other; and that DDL is valid ClickHouse syntax
 * according to chDB's parser.
 *
 * YAML is read through python3's PyYAML (the repo has no YAML dependency);
 * where PyYAML is missing those checks are skipped and say so.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INGEST_SERVICE_NAME } from '@heapwatch/proto';
import { schemaStatements } from '../../collector/src/store/schema';
import { MIN_SERVER_VERSION } from '../../collector/src/store/clickhouse';
import { LIVENESS_SERVICE } from '../../collector/src/ingest/grpc-server';

const ROOT = path.resolve(__dirname, '../..');
const DEPLOY = path.join(ROOT, 'deploy');
const CLI = path.join(ROOT, 'collector/dist/cli.js');
const CLUSTER = 'heapwatch';
const requireCjs = createRequire(__filename);
// The built CLI, the code the image runs (test/helpers/global-setup builds it).
const { serveOptions } = requireCjs(CLI) as typeof import('../../collector/src/cli');

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

const FILES = walk(DEPLOY);
const YAML_FILES = FILES.filter((f) => /\.ya?ml$/.test(f));
const XML_FILES = FILES.filter((f) => f.endsWith('.xml'));
const rel = (f: string) => path.relative(ROOT, f);

const python = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
const HAVE_PYYAML = python.status === 0;
const HAVE_PYTHON = python.error === undefined;

/** All YAML documents of every file, parsed by PyYAML (anchors and merges resolved). */
function loadYaml(): Record<string, Json[]> {
  const script = `
import json, sys, yaml
out = {}
for f in sys.argv[1:]:
    with open(f) as fh:
        out[f] = [d for d in yaml.safe_load_all(fh) if d is not None]
print(json.dumps(out))`;
  return JSON.parse(execFileSync('python3', ['-c', script, ...YAML_FILES], { encoding: 'utf8' }));
}

interface XmlNode {
  tag: string;
  attrib: Record<string, string>;
  text: string;
  children: XmlNode[];
}

/** Every XML file as a tree, parsed by python3's xml.etree (fails on malformed XML). */
function loadXml(): Record<string, XmlNode> {
  const script = `
import json, sys, xml.etree.ElementTree as ET
def node(e):
    return {"tag": e.tag, "attrib": e.attrib, "text": (e.text or "").strip(), "children": [node(c) for c in e]}
print(json.dumps({f: node(ET.parse(f).getroot()) for f in sys.argv[1:]}))`;
  return JSON.parse(execFileSync('python3', ['-c', script, ...XML_FILES], { encoding: 'utf8' }));
}

const child = (n: XmlNode, tag: string): XmlNode => {
  const c = n.children.find((x) => x.tag === tag);
  if (!c) throw new Error(`<${n.tag}> has no <${tag}>`);
  return c;
};
const children = (n: XmlNode, tag: string): XmlNode[] => n.children.filter((x) => x.tag === tag);

/** Compose-style `${VAR:-default}` interpolation with an empty environment. */
function interpolate(value: string): string {
  return value.replace(/\$\{([A-Z_]+)(?::-([^}]*))?\}/g, (_m, _name: string, def?: string) => def ?? '');
}

/** The `heapwatch help` text of the built CLI: the flags and env vars of `serve`. */
function help(): { flags: Set<string>; envs: Set<string> } {
  const text = execFileSync(process.execPath, [CLI, 'help'], { encoding: 'utf8' });
  const serve = text.slice(text.indexOf('serve options'), text.indexOf('leaks options'));
  return {
    flags: new Set([...serve.matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]!)),
    envs: new Set([...serve.matchAll(/\[(HEAPWATCH_[A-Z_]+)\]/g)].map((m) => m[1]!)),
  };
}

/** Services of a compose file that run the collector image. */
function collectorServices(compose: Json): [string, Json][] {
  return Object.entries(compose.services as Record<string, Json>).filter(
    ([, s]) => s.build?.dockerfile === 'deploy/Dockerfile' || String(s.image ?? '').startsWith('heapwatch-collector'),
  );
}

function envOf(service: Json): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return Object.fromEntries(env.map((kv: string) => kv.split(/=(.*)/s).slice(0, 2)));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v ?? ''))]));
}

function parseDockerfile(): { copies: string[]; entrypoint: string[]; expose: number[]; user: string; healthcheck: string } {
  const text = fs.readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));
  const copies = lines
    .filter((l) => /^COPY\s/.test(l) && !l.includes('--from='))
    .flatMap((l) => l.trim().split(/\s+/).slice(1, -1));
  const entry = lines.find((l) => l.startsWith('ENTRYPOINT'))!;
  return {
    copies,
    entrypoint: JSON.parse(entry.slice('ENTRYPOINT'.length)),
    expose: lines.filter((l) => l.startsWith('EXPOSE')).flatMap((l) => l.split(/\s+/).slice(1).map(Number)),
    user: lines.find((l) => l.startsWith('USER'))!.split(/\s+/)[1]!,
    healthcheck: lines.find((l) => l.startsWith('HEALTHCHECK'))!,
  };
}

describe('deploy/Dockerfile', () => {
  const df = parseDockerfile();

  it('copies only files that exist and that the .dockerignore lets through', () => {
    const rules = fs
      .readFileSync(path.join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(rules[0]).toBe('*'); // allow-list style: what is not named is not sent
    const allowed = rules.filter((r) => r.startsWith('!')).map((r) => r.slice(1));
    expect(df.copies.length).toBeGreaterThan(5);
    for (const src of df.copies) {
      expect(fs.existsSync(path.join(ROOT, src)), `${src} exists`).toBe(true);
      if (src === '.') continue;
      const ok = allowed.some((a) => src === a || src.startsWith(`${a}/`)) || allowed.some((a) => a.startsWith(`${src}/`));
      expect(ok, `${src} is let through by Dockerfile.dockerignore`).toBe(true);
    }
  });

  it('runs `serve` with flags the CLI accepts, exposes its default ports and probes /healthz', () => {
    const [node, cli, command, ...args] = df.entrypoint;
    expect([node, cli, command]).toEqual(['node', 'collector/dist/cli.js', 'serve']);
    expect(fs.existsSync(path.join(ROOT, cli!))).toBe(true);
    expect(serveOptions(args, {})).toEqual({ host: '0.0.0.0' });
    const text = execFileSync(process.execPath, [CLI, 'help'], { encoding: 'utf8' });
    const grpcDefault = Number(/--grpc-port .*\(default (\d+)\)/.exec(text)![1]);
    const httpDefault = Number(/--http-port .*\(default (\d+)\)/.exec(text)![1]);
    expect(df.expose.sort()).toEqual([httpDefault, grpcDefault].sort());
    expect(df.healthcheck).toContain('/healthz');
    expect(df.healthcheck).toContain(`||${httpDefault}`);
    expect(df.user).not.toMatch(/^(0|root)\b/);
  });
});

describe('XML (ClickHouse and Keeper config)', () => {
  it.skipIf(!HAVE_PYTHON)('every file is well-formed', () => {
    const xml = loadXml();
    expect(Object.keys(xml).length).toBe(XML_FILES.length);
    expect(XML_FILES.length).toBeGreaterThanOrEqual(3);
    for (const [f, root] of Object.entries(xml)) expect(root.tag, rel(f)).toBe('clickhouse');
  });

  it('a broken file is rejected (the check can fail)', () => {
    const bad = spawnSync('python3', ['-c', 'import sys, xml.etree.ElementTree as ET; ET.fromstring(sys.argv[1])', '<clickhouse><a></clickhouse>']);
    expect(bad.status).not.toBe(0);
  });
});

describe.skipIf(!HAVE_PYYAML)('YAML (compose, Envoy, Kubernetes); parsed with PyYAML', () => {
  const yaml = HAVE_PYYAML ? loadYaml() : {};
  const doc = (f: string): Json => yaml[path.join(DEPLOY, f)]![0];
  const { flags, envs } = help();

  it('every file parses', () => {
    expect(Object.keys(yaml).sort()).toEqual([...YAML_FILES].sort());
    for (const f of YAML_FILES) expect(yaml[f]!.length, rel(f)).toBeGreaterThan(0);
  });

  const composeFiles = YAML_FILES.filter((f) => path.basename(f).startsWith('docker-compose'));

  it('compose files mount and build only from files that exist', () => {
    expect(composeFiles.map(rel).sort()).toEqual([
      'deploy/cluster/docker-compose.yml',
      'deploy/single/docker-compose.clickhouse.yml',
      'deploy/single/docker-compose.yml',
    ]);
    for (const f of composeFiles) {
      const dir = path.dirname(f);
      for (const [name, s] of Object.entries(yaml[f]![0].services as Record<string, Json>)) {
        if (s.build) {
          const context = path.resolve(dir, s.build.context);
          expect(context, `${rel(f)} ${name} builds from the repo root`).toBe(ROOT);
          expect(fs.existsSync(path.join(context, s.build.dockerfile))).toBe(true);
        }
        for (const v of (s.volumes ?? []) as string[]) {
          const src = v.split(':')[0]!;
          if (src.startsWith('.') || src.startsWith('/')) expect(fs.existsSync(path.resolve(dir, src)), `${rel(f)} ${name}: ${src}`).toBe(true);
          else expect(Object.keys(yaml[f]![0].volumes ?? {}), `${rel(f)} ${name}: named volume ${src}`).toContain(src);
        }
      }
    }
  });

  it('collector services use only flags and env vars the CLI knows, and the CLI accepts them', () => {
    let checked = 0;
    for (const f of composeFiles) {
      for (const [name, s] of collectorServices(yaml[f]![0])) {
        const args = ((s.command ?? []) as string[]).map(interpolate);
        const env = envOf(s);
        for (const a of args.filter((x) => x.startsWith('--'))) expect(flags, `${rel(f)} ${name}: ${a}`).toContain(a);
        for (const k of Object.keys(env)) expect(envs, `${rel(f)} ${name}: ${k}`).toContain(k);
        // The real parser: strict, so an unknown or malformed flag throws.
        const opts = serveOptions(['--host', '0.0.0.0', ...args], env);
        if (path.basename(path.dirname(f)) === 'cluster') expect(opts.cluster).toBe(CLUSTER);
        if (opts.clickhouseUrl) {
          const host = new URL(opts.clickhouseUrl).hostname;
          expect(Object.keys(yaml[f]![0].services), `${name} points at a service of the file`).toContain(host);
        }
        for (const p of (s.ports ?? []) as string[]) expect(['7800:7800', '7801:7801']).toContain(p);
        checked++;
      }
    }
    expect(checked).toBe(4); // single, single+clickhouse, cluster x2
  });

  it('ClickHouse images are at least MIN_SERVER_VERSION', () => {
    const [minMajor, minMinor] = MIN_SERVER_VERSION;
    let images = 0;
    for (const f of composeFiles) {
      for (const s of Object.values(yaml[f]![0].services as Record<string, Json>)) {
        const m = /^clickhouse\/clickhouse-(?:server|keeper):(\d+)\.(\d+)/.exec(String(s.image ?? ''));
        if (!m) continue;
        images++;
        const [major, minor] = [Number(m[1]), Number(m[2])];
        expect(major > minMajor || (major === minMajor && minor >= minMinor), s.image).toBe(true);
      }
    }
    expect(images).toBeGreaterThanOrEqual(8);
  });

  describe('cluster layout', () => {
    const compose = (): Json => doc('cluster/docker-compose.yml');
    const xml = (): Record<string, XmlNode> => loadXml();
    const clusterXml = (): XmlNode => xml()[path.join(DEPLOY, 'cluster/clickhouse/cluster.xml')]!;

    it('remote_servers `heapwatch` is 2 shards x 2 replicas of the compose ClickHouse services', () => {
      const services = compose().services as Record<string, Json>;
      const cluster = child(child(clusterXml(), 'remote_servers'), CLUSTER);
      const shards = children(cluster, 'shard');
      expect(shards.length).toBe(2);
      const shardValues = new Set<string>();
      for (const shard of shards) {
        expect(child(shard, 'internal_replication').text).toBe('true');
        const replicas = children(shard, 'replica');
        expect(replicas.length).toBe(2);
        const shardOf = new Set<string>();
        for (const r of replicas) {
          const host = child(r, 'host').text;
          const s = services[host];
          expect(s, `${host} is a compose service`).toBeDefined();
          expect(s.hostname).toBe(host);
          const env = envOf(s);
          // {replica} macro = the node's own name; {shard} shared by the shard's replicas.
          expect(env.REPLICA).toBe(host);
          shardOf.add(env.SHARD!);
          expect(s.volumes.some((v: string) => v.startsWith('./clickhouse/cluster.xml:/etc/clickhouse-server/config.d/'))).toBe(true);
        }
        expect(shardOf.size).toBe(1);
        shardValues.add([...shardOf][0]!);
      }
      expect(shardValues.size).toBe(2);
    });

    it('macros and keeper agree with the schema DDL and the compose keepers', () => {
      const root = clusterXml();
      const macros = child(root, 'macros');
      expect(child(macros, 'shard').attrib.from_env).toBe('SHARD');
      expect(child(macros, 'replica').attrib.from_env).toBe('REPLICA');
      const used = new Set(schemaStatements({ retentionDays: 30, cluster: CLUSTER }).flatMap((s) => [...s.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]!)));
      expect([...used].sort()).toEqual(['database', 'replica', 'shard']); // {database} is built in
      const zk = children(child(root, 'zookeeper'), 'node').map((n) => `${child(n, 'host').text}:${child(n, 'port').text}`);
      const keeper = xml()[path.join(DEPLOY, 'cluster/clickhouse/keeper.xml')]!;
      const ks = child(keeper, 'keeper_server');
      const raft = children(child(ks, 'raft_configuration'), 'server').map((s) => child(s, 'hostname').text);
      expect(zk).toEqual(raft.map((h) => `${h}:${child(ks, 'tcp_port').text}`));
      expect(raft.length % 2).toBe(1); // a Raft quorum needs an odd count
      const services = compose().services as Record<string, Json>;
      const ids = raft.map((h) => envOf(services[h]).KEEPER_SERVER_ID);
      expect(ids).toEqual(children(child(ks, 'raft_configuration'), 'server').map((s) => child(s, 'id').text));
    });

    it('Envoy balances gRPC with HTTP/2 and grpc.health.v1 checks, and HTTP with /readyz, over every collector', () => {
      const envoy = doc('cluster/envoy/envoy.yaml');
      const collectors = collectorServices(compose()).map(([n]) => n).sort();
      expect(collectors.length).toBeGreaterThanOrEqual(2);
      const listeners = Object.fromEntries((envoy.static_resources.listeners as Json[]).map((l) => [l.address.socket_address.port_value, l]));
      expect(Object.keys(listeners).sort()).toEqual(['7800', '7801']);
      const published = (compose().services.envoy.ports as string[]).sort();
      expect(published).toEqual(['7800:7800', '7801:7801']);
      const clusters = Object.fromEntries((envoy.static_resources.clusters as Json[]).map((c) => [c.name, c]));
      const routeCluster = (port: number) =>
        listeners[port].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster as string;
      const grpcCluster = clusters[routeCluster(7801)];
      const httpCluster = clusters[routeCluster(7800)];
      expect(listeners[7801].filter_chains[0].filters[0].typed_config.codec_type).toBe('HTTP2');
      expect(grpcCluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config).toHaveProperty('http2_protocol_options');
      expect(grpcCluster.health_checks[0].grpc_health_check.service_name).toBe(INGEST_SERVICE_NAME);
      expect(httpCluster.health_checks[0].http_health_check.path).toBe('/readyz');
      for (const [c, port] of [[grpcCluster, 7801], [httpCluster, 7800]] as const) {
        expect(c.lb_policy).toBe('ROUND_ROBIN');
        const eps = (c.load_assignment.lb_endpoints ?? c.load_assignment.endpoints[0].lb_endpoints) as Json[];
        const addrs = eps.map((e) => e.endpoint.address.socket_address);
        expect(addrs.map((a) => a.address).sort()).toEqual(collectors);
        for (const a of addrs) expect(a.port_value).toBe(port);
      }
    });
  });

  describe('kubernetes', () => {
    const all = (): Json[] => YAML_FILES.filter((f) => f.includes(`${path.sep}kubernetes${path.sep}`)).flatMap((f) => yaml[f]!);
    const byKind = (kind: string): Json[] => all().filter((d) => d.kind === kind);

    it('the Deployment runs 3 collectors whose args and env the CLI accepts', () => {
      const [dep] = byKind('Deployment');
      expect(dep.spec.replicas).toBe(3);
      const labels = dep.spec.template.metadata.labels;
      expect(dep.spec.selector.matchLabels).toEqual(labels);
      const c = dep.spec.template.spec.containers[0];
      const secret = byKind('Secret')[0];
      const env: Record<string, string> = {};
      for (const e of c.env as Json[]) {
        expect(envs, e.name).toContain(e.name);
        if (e.valueFrom) {
          expect(e.valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
          env[e.name] = secret.stringData[e.valueFrom.secretKeyRef.key];
          expect(env[e.name], `${e.name} is in the example Secret`).toBeDefined();
        } else env[e.name] = e.value;
      }
      for (const a of (c.args as string[]).filter((x) => x.startsWith('--'))) expect(flags).toContain(a);
      const opts = serveOptions(['--host', '0.0.0.0', ...c.args], env);
      expect(opts.cluster).toBe(CLUSTER);
      expect(opts.clickhouseUrl).toMatch(/^https?:\/\//);
      expect(opts.tokens).toHaveLength(1);
      expect(opts.role ?? 'all').toBe('all');
      // Probes: ready on /readyz, alive on grpc.health.v1, on the declared ports.
      const ports = Object.fromEntries((c.ports as Json[]).map((p) => [p.name, p.containerPort]));
      expect(ports).toEqual({ http: 7800, grpc: 7801 });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      // gRPC health of '' and the ingest service follows readiness; `liveness` does not.
      expect(c.livenessProbe.grpc).toEqual({ port: 7801, service: LIVENESS_SERVICE });
      expect(c.resources.requests.memory).toBeDefined();
      expect(c.resources.limits.memory).toBeDefined();
      // The pod's uid is the image's non-root user.
      expect(`${dep.spec.template.spec.securityContext.runAsUser}:${dep.spec.template.spec.securityContext.runAsGroup}`).toBe(parseDockerfile().user);
    });

    it('the Services select the Deployment and name its ports', () => {
      const [dep] = byKind('Deployment');
      const labels = dep.spec.template.metadata.labels;
      const containerPorts = new Set((dep.spec.template.spec.containers[0].ports as Json[]).map((p) => p.name));
      const services = byKind('Service');
      expect(services.some((s) => s.spec.clusterIP === 'None')).toBe(true); // headless, for dns:/// round_robin
      for (const s of services) {
        expect(s.spec.selector).toEqual(labels);
        for (const p of s.spec.ports as Json[]) expect(containerPorts).toContain(p.targetPort);
      }
      const [pdb] = byKind('PodDisruptionBudget');
      expect(pdb.spec.selector.matchLabels).toEqual(labels);
    });
  });
});

describe('cluster DDL', () => {
  const statements = schemaStatements({ retentionDays: 30, cluster: CLUSTER });
  // chdb's stateless query runs in this process: only the parser is used
  // (formatQuery), no table is created and no cluster is contacted.
  const chdb = requireCjs('chdb') as { query(sql: string, format: string): string };
  const format = (sql: string) => chdb.query(`SELECT formatQuerySingleLine('${sql.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}')`, 'TSV');

  it('is a Replicated local table plus a Distributed table per table, all ON CLUSTER', () => {
    // Six tables (profiles carries the stack values; leases elects the evaluator; profiles_hourly sums hours;
    // holder_captures keeps what holds off-heap memory), no views.
    expect(statements.length).toBe(12);
    for (const s of statements) {
      expect(s).toMatch(/^CREATE TABLE IF NOT EXISTS \w+ ON CLUSTER heapwatch /); // idempotent: every collector may run it
    }
    expect(statements.filter((s) => /ENGINE = Replicated\w*MergeTree\('\/clickhouse\/tables\/\{shard\}\/\{database\}\/\w+', '\{replica\}'/.test(s)).length).toBe(6);
    expect(statements.filter((s) => /ENGINE = Distributed\(heapwatch, currentDatabase\(\), \w+_local, /.test(s)).length).toBe(6);
  });

  it('parses as ClickHouse SQL (chDB formatQuery)', () => {
    for (const s of statements) {
      const formatted = format(s);
      expect(formatted).toMatch(/^CREATE TABLE IF NOT EXISTS \w+ ON CLUSTER heapwatch/);
    }
  });

  it('the parser check rejects broken SQL', () => {
    const broken = statements[0]!.replace('ENGINE =', 'ENGIN =');
    expect(() => format(broken)).toThrow(/Syntax error/);
  });
});

describe('docker compose config', () => {
  const probe = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;
  const compose: string[] | undefined = probe('docker', ['compose', 'version'])
    ? ['docker', 'compose']
    : probe('docker-compose', ['version'])
      ? ['docker-compose']
      : undefined;

  it.skipIf(compose === undefined)('every compose file passes `config -q` (no engine needed)', () => {
    for (const f of YAML_FILES.filter((x) => path.basename(x).startsWith('docker-compose'))) {
      const r = spawnSync(compose![0]!, [...compose!.slice(1), '-f', f, 'config', '-q'], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status, `${rel(f)}: ${r.stderr}`).toBe(0);
    }
  });
});

describe('documentation', () => {
  it('docs/configuration.md documents every env var of `heapwatch serve`', () => {
    const doc = fs.readFileSync(path.join(DEPLOY, '../docs/configuration.md'), 'utf8');
    for (const env of help().envs) expect(doc, env).toContain(env);
  });

  it('deploy/README.md and docs/storage.md name the oldest supported ClickHouse', () => {
    const version = `${MIN_SERVER_VERSION[0]}.${MIN_SERVER_VERSION[1]}`;
    expect(fs.readFileSync(path.join(DEPLOY, 'README.md'), 'utf8')).toContain(version);
    expect(fs.readFileSync(path.join(DEPLOY, '../docs/storage.md'), 'utf8')).toContain(version);
  });
});
