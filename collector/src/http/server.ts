/**
 * The HTTP API. Every answer is JSON except the pprof export; every error is
 * `{ "error": "<what is wrong>" }` with a 4xx (the caller's fault) or 5xx
 * (ours) status.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log';
import { diffScale } from '../query/diff';
import { flameTree } from '../query/flamegraph';
import { toPprof } from '../query/pprof';
import type { ProfileQuery, ProfileStore } from '../store/store';
import { StaticAssets } from './assets';
import { HOUR_MS, MINUTE_MS, SECOND_MS } from '../units';
import type { PostHandler } from './connect';
import { HttpError } from './errors';

export { HttpError } from './errors';

export interface ApiDeps {
  store: ProfileStore;
  log: Logger;
  /** Counters for GET /metrics, by name without the `heapwatch_` prefix. */
  metrics?: () => Record<string, number>;
  /** GET /api/v1/leaks?service=S: the leak report, or null for an unknown service. */
  leaks?: (service: string, evaluate: boolean) => Promise<unknown>;
  /** GET /api/v1/leaks/evidence?service=S: the series behind the report's flagged sites. */
  evidence?: (service: string) => Promise<unknown>;
  /** The web UI's files; default: collector/ui/dist. */
  assets?: StaticAssets;
  /** POST routes by path (the Connect services, Pyroscope's /ingest); each answers its own errors. */
  posts?: Record<string, PostHandler>;
  /** More lines for GET /metrics, in Prometheus text format (alerts, flagged findings). */
  extraMetrics?: () => Promise<string[]>;
}

type Handler = (params: URLSearchParams, res: http.ServerResponse) => Promise<void>;

/** ISO 8601 or Unix milliseconds. */
const MIN_TIME_MS = Date.UTC(1970, 0, 1);
const MAX_TIME_MS = Date.UTC(2262, 0, 1);

export function parseTime(name: string, value: string | null, fallback: number): number {
  if (value === null || value === '') return fallback;
  const ms = /^-?\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new HttpError(400, `${name}=${JSON.stringify(value)} is neither an ISO 8601 time nor Unix milliseconds`);
  }
  // The store's times are DateTime64(3) from 1900 to 2299; a JS Date's range is wider still.
  if (ms < MIN_TIME_MS || ms > MAX_TIME_MS) {
    throw new HttpError(400, `${name}=${JSON.stringify(value)} is outside the times the store holds (${new Date(MIN_TIME_MS).toISOString()} to ${new Date(MAX_TIME_MS).toISOString()})`);
  }
  return ms;
}

function only(params: URLSearchParams, allowed: readonly string[], prefix?: string): void {
  for (const key of params.keys()) {
    if (!allowed.includes(key) && !(prefix && key.startsWith(prefix))) {
      throw new HttpError(400, `unknown parameter ${JSON.stringify(key)}; expected ${[...allowed, ...(prefix ? [`${prefix}<name>`] : [])].join(', ')}`);
    }
  }
}

function requireService(params: URLSearchParams): string {
  const service = params.get('service');
  if (!service) throw new HttpError(400, 'service is required');
  return service;
}

/** service, from, to (or `<prefix>from`, `<prefix>to`) and label.K=V filters; from defaults to an hour before to. */
function profileQuery(params: URLSearchParams, now: number, prefix = ''): ProfileQuery {
  const service = requireService(params);
  const toMs = parseTime(`${prefix}to`, params.get(`${prefix}to`), now);
  const fromMs = parseTime(`${prefix}from`, params.get(`${prefix}from`), toMs - HOUR_MS);
  if (fromMs > toMs) throw new HttpError(400, `${prefix}from is after ${prefix}to`);
  const labels: Record<string, string> = {};
  for (const [k, v] of params) if (k.startsWith('label.')) labels[k.slice('label.'.length)] = v;
  return { service, fromMs, toMs, labels };
}

function booleanParam(params: URLSearchParams, name: string): boolean {
  const v = params.get(name);
  if (v !== null && v !== 'true' && v !== 'false') throw new HttpError(400, `${name} must be true or false`);
  return v === 'true';
}

function sendPprof(res: http.ServerResponse, body: Buffer, filename: string, headers: Record<string, string>): void {
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-disposition': `attachment; filename="${filename.replace(/[^\w.-]/g, '_')}"`,
    'content-length': body.length,
    ...headers,
  });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function routes(deps: ApiDeps): Record<string, Handler> {
  const { store } = deps;
  const requireKnown = async (service: string): Promise<void> => {
    if (!(await store.serviceExists(service))) throw new HttpError(404, `unknown service ${JSON.stringify(service)}`);
  };
  return {
    '/healthz': async (_params, res) => {
      await store.ping();
      sendJson(res, 200, { status: 'ok' });
    },
    '/metrics': async (params, res) => {
      only(params, []);
      const lines: string[] = [];
      for (const [name, value] of Object.entries(deps.metrics?.() ?? {})) {
        const full = `heapwatch_${name}`;
        lines.push(`# TYPE ${full} ${name.endsWith('_total') ? 'counter' : 'gauge'}`, `${full} ${value}`);
      }
      lines.push(...((await deps.extraMetrics?.()) ?? []));
      const mem = process.memoryUsage();
      lines.push('# TYPE heapwatch_collector_rss_bytes gauge', `heapwatch_collector_rss_bytes ${mem.rss}`);
      const text = `${lines.join('\n')}\n`;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    },
    '/api/v1/services': async (params, res) => {
      only(params, []);
      const [services, counts] = await Promise.all([store.services(), store.findingCounts()]);
      const byService = new Map(counts.map((c) => [c.service, c]));
      sendJson(
        res,
        200,
        services.map((s) => {
          const c = byService.get(s.service);
          return { ...s, flaggedLeaks: c?.leaks ?? null, flaggedProcess: c?.process ?? null, evaluatedAt: c?.evaluatedAt ?? null };
        }),
      );
    },
    '/api/v1/profile': async (params, res) => {
      only(params, ['service', 'from', 'to'], 'label.');
      const q = profileQuery(params, Date.now());
      await requireKnown(q.service);
      const merged = await store.mergedProfile(q);
      sendPprof(res, await toPprof(merged), `${q.service}.heap.pb.gz`, {
        'x-heapwatch-profiles': String(merged.profiles),
        'x-heapwatch-instances': String(merged.instances),
      });
    },
    '/api/v1/flamegraph': async (params, res) => {
      only(params, ['service', 'from', 'to'], 'label.');
      const q = profileQuery(params, Date.now());
      await requireKnown(q.service);
      const merged = await store.mergedProfile(q);
      sendJson(res, 200, {
        service: q.service,
        from: new Date(q.fromMs).toISOString(),
        to: new Date(q.toMs).toISOString(),
        profiles: merged.profiles,
        instances: merged.instances,
        stacks: merged.stacks.length,
        ...flameTree(merged.stacks),
      });
    },
    '/api/v1/diff': async (params, res) => {
      only(params, ['service', 'base_from', 'base_to', 'from', 'to', 'normalize', 'format'], 'label.');
      const now = Date.now();
      const q = profileQuery(params, now);
      if (!params.get('base_from') || !params.get('base_to')) throw new HttpError(400, 'base_from and base_to are required');
      const bq = profileQuery(params, now, 'base_');
      const normalize = booleanParam(params, 'normalize');
      const format = params.get('format') ?? 'pprof';
      if (format !== 'pprof' && format !== 'json') throw new HttpError(400, 'format must be pprof or json');
      await requireKnown(q.service);
      const [base, next] = await Promise.all([store.mergedProfile(bq), store.mergedProfile(q)]);
      const scale = diffScale(base, next, normalize);
      if (format === 'pprof') {
        sendPprof(res, await toPprof(next, { profile: base, scale }), `${q.service}.diff.pb.gz`, {
          'x-heapwatch-profiles': String(next.profiles),
          'x-heapwatch-base-profiles': String(base.profiles),
        });
        return;
      }
      sendJson(res, 200, {
        service: q.service,
        base: { from: new Date(bq.fromMs).toISOString(), to: new Date(bq.toMs).toISOString(), profiles: base.profiles, instances: base.instances },
        from: new Date(q.fromMs).toISOString(),
        to: new Date(q.toMs).toISOString(),
        profiles: next.profiles,
        instances: next.instances,
        normalize,
        scale,
        ...flameTree(next.stacks, { stacks: base.stacks, scale }),
      });
    },
    '/api/v1/leaks': async (params, res) => {
      only(params, ['service', 'evaluate']);
      const service = requireService(params);
      if (!deps.leaks) throw new HttpError(501, 'leak detection is not enabled');
      const evaluate = params.get('evaluate');
      if (evaluate !== null && evaluate !== 'true' && evaluate !== 'false') {
        throw new HttpError(400, 'evaluate must be true or false');
      }
      await requireKnown(service);
      sendJson(res, 200, await deps.leaks(service, evaluate === 'true'));
    },
    '/api/v1/leaks/evidence': async (params, res) => {
      only(params, ['service']);
      const service = requireService(params);
      if (!deps.evidence) throw new HttpError(501, 'leak detection is not enabled');
      await requireKnown(service);
      sendJson(res, 200, await deps.evidence(service));
    },
  };
}

export class HttpApi {
  private readonly server: http.Server;
  private readonly handlers: Record<string, Handler>;
  private readonly assets: StaticAssets;

  constructor(private readonly deps: ApiDeps) {
    this.handlers = routes(deps);
    this.assets = deps.assets ?? new StaticAssets();
    this.server = http.createServer((req, res) => this.handle(req, res));
    // A slow or idle client must not pin a socket forever.
    this.server.requestTimeout = MINUTE_MS;
    this.server.headersTimeout = 10 * SECOND_MS;
    this.server.keepAliveTimeout = 5 * SECOND_MS;
  }

  /** Whether the web UI is built and served at `/`. */
  get webUi(): boolean {
    return this.assets.available();
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const post = this.deps.posts?.[url.pathname];
    if (post) {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        sendJson(res, 405, { error: `${req.method} is not allowed; use POST` });
        return;
      }
      post(req, res).catch((err: unknown) => this.fail(url.pathname, res, err));
      return;
    }
    const handler = this.handlers[url.pathname];
    const asset = handler ? undefined : this.assets.lookup(url.pathname);
    if (!handler && !asset) {
      if (req.method === 'POST' && /^\/[\w.]+\/\w+$/.test(url.pathname)) {
        // A Connect client calling a method heapwatch does not serve.
        const text = JSON.stringify({ code: 'unimplemented', message: `${url.pathname.slice(1)} is not implemented by heapwatch` });
        res.writeHead(501, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      const hint = url.pathname === '/' ? ' (the web UI is not built: run `npm run build`)' : '';
      sendJson(res, 404, { error: `no such endpoint: ${url.pathname}${hint}` });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, { error: `${req.method} is not allowed; use GET` });
      return;
    }
    if (asset) {
      this.assets.send(asset, res);
      return;
    }
    if (!handler) return;
    handler(url.searchParams, res).catch((err: unknown) => this.fail(url.pathname, res, err));
  }

  private fail(pathname: string, res: http.ServerResponse, err: unknown): void {
    if (err instanceof HttpError) {
      if (!res.headersSent) sendJson(res, err.status, { error: err.message });
      return;
    }
    this.deps.log.error(`${pathname} failed: ${(err as Error)?.stack ?? String(err)}`);
    if (!res.headersSent) sendJson(res, 500, { error: `internal error: ${(err as Error)?.message ?? String(err)}` });
    else res.destroy();
  }
}
