/**
 * The HTTP API. Every answer is JSON except the pprof export; every error is
 * `{ "error": "<what is wrong>" }` with a 4xx (the caller's fault) or 5xx
 * (ours) status.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log';
import { toPprof } from '../query/pprof';
import type { ProfileStore } from '../store/store';
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
  /** POST routes by path (the Connect services, Pyroscope's /ingest); each answers its own errors. */
  posts?: Record<string, PostHandler>;
  /** More lines for GET /metrics, in Prometheus text format (alerts, flagged findings). */
  extraMetrics?: () => Promise<string[]>;
}

type Handler = (params: URLSearchParams, res: http.ServerResponse) => Promise<void>;

/** ISO 8601 or Unix milliseconds. */
export function parseTime(name: string, value: string | null, fallback: number): number {
  if (value === null || value === '') return fallback;
  const ms = /^-?\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new HttpError(400, `${name}=${JSON.stringify(value)} is neither an ISO 8601 time nor Unix milliseconds`);
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

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function routes(deps: ApiDeps): Record<string, Handler> {
  const { store } = deps;
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
      sendJson(res, 200, await store.services());
    },
    '/api/v1/profile': async (params, res) => {
      only(params, ['service', 'from', 'to'], 'label.');
      const service = requireService(params);
      const now = Date.now();
      const toMs = parseTime('to', params.get('to'), now);
      const fromMs = parseTime('from', params.get('from'), toMs - HOUR_MS);
      if (fromMs > toMs) throw new HttpError(400, 'from is after to');
      const labels: Record<string, string> = {};
      for (const [k, v] of params) if (k.startsWith('label.')) labels[k.slice('label.'.length)] = v;
      if (!(await store.serviceExists(service))) throw new HttpError(404, `unknown service ${JSON.stringify(service)}`);
      const merged = await store.mergedProfile({ service, fromMs, toMs, labels });
      const body = await toPprof(merged);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename="${service.replace(/[^\w.-]/g, '_')}.heap.pb.gz"`,
        'content-length': body.length,
        'x-heapwatch-profiles': String(merged.profiles),
        'x-heapwatch-instances': String(merged.instances),
      });
      res.end(body);
    },
    '/api/v1/leaks': async (params, res) => {
      only(params, ['service', 'evaluate']);
      const service = requireService(params);
      if (!deps.leaks) throw new HttpError(501, 'leak detection is not enabled');
      const evaluate = params.get('evaluate');
      if (evaluate !== null && evaluate !== 'true' && evaluate !== 'false') {
        throw new HttpError(400, 'evaluate must be true or false');
      }
      if (!(await store.serviceExists(service))) throw new HttpError(404, `unknown service ${JSON.stringify(service)}`);
      sendJson(res, 200, await deps.leaks(service, evaluate === 'true'));
    },
  };
}

export class HttpApi {
  private readonly server: http.Server;
  private readonly handlers: Record<string, Handler>;

  constructor(private readonly deps: ApiDeps) {
    this.handlers = routes(deps);
    this.server = http.createServer((req, res) => this.handle(req, res));
    // A slow or idle client must not pin a socket forever.
    this.server.requestTimeout = MINUTE_MS;
    this.server.headersTimeout = 10 * SECOND_MS;
    this.server.keepAliveTimeout = 5 * SECOND_MS;
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
    if (!handler) {
      if (req.method === 'POST' && /^\/[\w.]+\/\w+$/.test(url.pathname)) {
        // A Connect client calling a method heapwatch does not serve.
        const text = JSON.stringify({ code: 'unimplemented', message: `${url.pathname.slice(1)} is not implemented by heapwatch` });
        res.writeHead(501, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      sendJson(res, 404, { error: `no such endpoint: ${url.pathname}` });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, { error: `${req.method} is not allowed; use GET` });
      return;
    }
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
