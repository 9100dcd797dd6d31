/**
 * The HTTP API. Every answer is JSON except the pprof export; every error is
 * `{ "error": "<what is wrong>" }` with a 4xx (the caller's fault) or 5xx
 * (ours) status.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Access, AccessResult } from '../auth/access';
import { bearer, OPEN, type Principal, type Scope } from '../auth/tokens';
import type { Readiness } from '../health/readiness';
import { isRefusal, type Admission, type Refusal } from '../ingest/admission';
import type { Logger } from '../log';
import { diffScale } from '../query/diff';
import { flameTree } from '../query/flamegraph';
import { LimitError, type Limiter } from '../query/limiter';
import { toPprof } from '../query/pprof';
import type { ProfileQuery, ProfileStore, TenantStore } from '../store/store';
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
  /** GET /api/v1/leaks?service=S: the leak report of `store`'s tenant, or null for a service it does not have. */
  leaks?: (store: TenantStore, service: string, evaluate: boolean) => Promise<unknown>;
  /** GET /api/v1/leaks/evidence?service=S: the series behind the report's flagged sites. */
  evidence?: (store: TenantStore, service: string) => Promise<unknown>;
  /** The web UI's files; default: collector/ui/dist. */
  assets?: StaticAssets;
  /** POST routes by path (the Connect services, Pyroscope's /ingest); each answers its own errors. */
  posts?: Record<string, PostRoute>;
  /** More lines for GET /metrics, in Prometheus text format (alerts, the caller's tenant's flagged findings). */
  extraMetrics?: (tenant: string) => Promise<string[]>;
  /** Tokens and the throttle; every route but the public ones requires the read scope when tokens are configured. */
  access: Access;
  /** Caps concurrent API reads (collector.ts). */
  reads: Limiter;
  /**
   * Ingest capacity shared with gRPC (ingest/admission.ts): every POST
   * route with the write scope is admitted here, on its headers, before its
   * body is read; refused, it is answered 429 with Retry-After.
   */
  admission?: Admission;
  readiness?: Readiness;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
}

/** What a handler gets: the query, and the store of the caller's tenant (never the whole store). */
export interface RequestContext {
  params: URLSearchParams;
  store: TenantStore;
  principal: Principal;
  /** Whether the request came over TLS. */
  secure: boolean;
  /** The peer's address (the throttle's key). */
  address: string;
}

type Handler = (ctx: RequestContext, res: http.ServerResponse) => Promise<void>;

/**
 * A POST route: `read` (the Connect querier) or `write` (Pyroscope's
 * ingest), checked by the dispatcher like any route; the handler gets the
 * caller's tenant and its store. The token comes only from the
 * authorization header, never the login cookie, so a page the browser
 * opens cannot post with it.
 */
export interface PostRoute {
  access: Scope;
  /** A Connect method: a refusal is a Connect error (`{code, message}`). */
  connect: boolean;
  handler: PostHandler;
  /** Writes the 429 body in the route's own protocol (OTLP's google.rpc.Status); JSON when absent. */
  refusal?: (res: http.ServerResponse, message: string) => void;
}

export interface Route {
  /**
   * `public`: answered without a token (liveness and readiness probes carry
   * no secret; the login page takes one). `read`: requires a token with the
   * read scope whenever any token is configured. The dispatcher checks this
   * before the route runs; a route without it does not type-check.
   */
  access: 'public' | 'read';
  /** Runs under the API's concurrency cap on reads. */
  limited: boolean;
  handler: Handler;
}

/** The cookie the browser login sets (docs/security.md#the-browser). */
export const TOKEN_COOKIE = 'heapwatch_token';

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

function cookieToken(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k !== TOKEN_COOKIE) continue;
    try {
      return decodeURIComponent(v.join('='));
    } catch {
      return v.join('='); // malformed escapes: compared as sent, and refused
    }
  }
  return undefined;
}

const LOGIN_FORM = `<!doctype html><meta charset="utf-8"><title>heapwatch login</title>
<form method="get" action="/login"><label>Token <input name="token" type="password" autofocus></label> <button>Log in</button></form>\n`;

async function requireKnown(store: TenantStore, service: string): Promise<void> {
  if (!(await store.serviceExists(service))) throw new HttpError(404, `unknown service ${JSON.stringify(service)}`);
}

export function routes(deps: ApiDeps): Record<string, Route> {
  const route = (access: Route['access'], limited: boolean, handler: Handler): Route => ({ access, limited, handler });
  return {
    '/healthz': route('public', false, async (_ctx, res) => {
      sendJson(res, 200, { status: 'ok' });
    }),
    '/readyz': route('public', false, async (_ctx, res) => {
      const r = await deps.readiness?.check();
      if (!r || r.ready) sendJson(res, 200, { status: 'ready' });
      else sendJson(res, 503, { status: 'not ready', reasons: r.reasons });
    }),
    '/login': route('public', false, async ({ params, secure, address }, res) => {
      const token = params.get('token');
      if (token === null) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(LOGIN_FORM) });
        res.end(LOGIN_FORM);
        return;
      }
      // Checked (and throttled) as the dispatcher checks any request; by
      // hand here because the login page itself is public.
      const a = deps.access.check(address, token, 'read');
      if (!a.ok) {
        refuse(res, a);
        return;
      }
      const cookie = [`${TOKEN_COOKIE}=${encodeURIComponent(token)}`, 'HttpOnly', 'SameSite=Strict', 'Path=/', `Max-Age=${12 * 3600}`];
      if (secure) cookie.push('Secure');
      res.writeHead(303, { 'set-cookie': cookie.join('; '), location: '/', 'content-length': 0 });
      res.end();
    }),
    '/metrics': route('read', false, async ({ params, principal }, res) => {
      only(params, []);
      const lines: string[] = [];
      for (const [name, value] of Object.entries(deps.metrics?.() ?? {})) {
        const full = `heapwatch_${name}`;
        lines.push(`# TYPE ${full} ${name.endsWith('_total') ? 'counter' : 'gauge'}`, `${full} ${value}`);
      }
      if (deps.readiness) {
        const r = await deps.readiness.check();
        lines.push('# TYPE heapwatch_ready gauge', `heapwatch_ready ${r.ready ? 1 : 0}`);
        lines.push('# TYPE heapwatch_not_ready_reason gauge');
        for (const code of ['store_unreachable', 'inserts_failing', 'store_behind'] as const) {
          lines.push(`heapwatch_not_ready_reason{reason="${code}"} ${r.codes.includes(code) ? 1 : 0}`);
        }
      }
      lines.push(...((await deps.extraMetrics?.(principal.tenant)) ?? []));
      const mem = process.memoryUsage();
      lines.push('# TYPE heapwatch_collector_rss_bytes gauge', `heapwatch_collector_rss_bytes ${mem.rss}`);
      const text = `${lines.join('\n')}\n`;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }),
    '/api/v1/services': route('read', true, async ({ params, store }, res) => {
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
    }),
    '/api/v1/profile': route('read', true, async ({ params, store }, res) => {
      only(params, ['service', 'from', 'to'], 'label.');
      const q = profileQuery(params, Date.now());
      await requireKnown(store, q.service);
      const merged = await store.mergedProfile(q);
      sendPprof(res, await toPprof(merged), `${q.service}.heap.pb.gz`, {
        'x-heapwatch-profiles': String(merged.profiles),
        'x-heapwatch-instances': String(merged.instances),
      });
    }),
    '/api/v1/flamegraph': route('read', true, async ({ params, store }, res) => {
      only(params, ['service', 'from', 'to'], 'label.');
      const q = profileQuery(params, Date.now());
      await requireKnown(store, q.service);
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
    }),
    '/api/v1/diff': route('read', true, async ({ params, store }, res) => {
      only(params, ['service', 'base_from', 'base_to', 'from', 'to', 'normalize', 'format'], 'label.');
      const now = Date.now();
      const q = profileQuery(params, now);
      if (!params.get('base_from') || !params.get('base_to')) throw new HttpError(400, 'base_from and base_to are required');
      const bq = profileQuery(params, now, 'base_');
      const normalize = booleanParam(params, 'normalize');
      const format = params.get('format') ?? 'pprof';
      if (format !== 'pprof' && format !== 'json') throw new HttpError(400, 'format must be pprof or json');
      await requireKnown(store, q.service);
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
    }),
    // Limited inside: a stored report is a read, an evaluation takes a slot
    // of its own cap, and concurrent evaluations of one service are one (collector.ts).
    '/api/v1/leaks': route('read', false, async ({ params, store }, res) => {
      only(params, ['service', 'evaluate']);
      const service = requireService(params);
      if (!deps.leaks) throw new HttpError(501, 'leak detection is not enabled');
      const evaluate = params.get('evaluate');
      if (evaluate !== null && evaluate !== 'true' && evaluate !== 'false') {
        throw new HttpError(400, 'evaluate must be true or false');
      }
      const report = await deps.leaks(store, service, evaluate === 'true');
      if (report === null) throw new HttpError(404, `unknown service ${JSON.stringify(service)}`);
      sendJson(res, 200, report);
    }),
    '/api/v1/leaks/evidence': route('read', false, async ({ params, store }, res) => {
      only(params, ['service']);
      const service = requireService(params);
      if (!deps.evidence) throw new HttpError(501, 'leak detection is not enabled');
      const evidence = await deps.evidence(store, service);
      if (evidence === null) throw new HttpError(404, `unknown service ${JSON.stringify(service)}`);
      sendJson(res, 200, evidence);
    }),
  };
}

/** The answer to a request whose token was refused. */
function refuse(res: http.ServerResponse, a: Exclude<AccessResult, { ok: true }>, post?: PostRoute): void {
  // A Connect client reads `{code, message}`; the status is the same.
  const connect = post?.connect ?? false;
  const body = (code: string, message: string) => (connect ? { code, message } : { error: message });
  if (a.reason === 'throttled') {
    res.setHeader('retry-after', String(Math.ceil(a.retryAfterMs / 1000)));
    sendJson(res, 429, body('resource_exhausted', a.message));
  } else if (a.reason === 'forbidden') {
    sendJson(res, 403, body('permission_denied', a.message));
  } else {
    res.setHeader('www-authenticate', 'Bearer realm="heapwatch"');
    sendJson(res, 401, body('unauthenticated', post ? `${a.message}: send "authorization: Bearer TOKEN"` : `${a.message}: send "authorization: Bearer TOKEN", or log in at /login`));
  }
}

/**
 * What an HTTP ingest request is assumed to wait at most, for admission's
 * deadline check: HTTP carries no deadline, and Pyroscope's SDKs time out
 * after 10 s.
 */
const HTTP_INGEST_BUDGET_MS = 10 * SECOND_MS;

/** 429 with Retry-After (whole seconds, rounded up), and the connection closed so the body is not read. */
function refuseIngest(res: http.ServerResponse, r: Refusal, post: PostRoute): void {
  res.setHeader('retry-after', String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))));
  res.setHeader('connection', 'close');
  if (post.refusal) post.refusal(res, r.refused);
  else sendJson(res, 429, post.connect ? { code: 'resource_exhausted', message: r.refused } : { error: r.refused });
}

export class HttpApi {
  private readonly server: http.Server;
  private readonly routes: Record<string, Route>;
  private readonly assets: StaticAssets;

  constructor(private readonly deps: ApiDeps) {
    this.routes = routes(deps);
    this.assets = deps.assets ?? new StaticAssets();
    const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => this.handle(req, res);
    this.server = deps.tls ? https.createServer({ cert: deps.tls.cert, key: deps.tls.key }, listener) : http.createServer(listener);
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

  /**
   * Every request passes here: authentication (unless the route is public,
   * and before an unknown path is told apart from a known one), then the
   * method, then the route under the read cap.
   */
  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const post = this.deps.posts?.[url.pathname];
    const route = post ? undefined : this.routes[url.pathname];
    const secure = this.deps.tls !== undefined;
    const address = req.socket.remoteAddress ?? '';
    let principal: Principal = OPEN;
    if (route?.access !== 'public') {
      const token = post ? bearer(req.headers.authorization) : bearer(req.headers.authorization) ?? cookieToken(req.headers.cookie);
      const a = this.deps.access.check(address, token, post?.access ?? 'read');
      if (!a.ok) {
        // A browser opening a page is sent to log in; a program gets the status.
        if (!post && a.reason === 'unauthenticated' && req.method === 'GET' && /\btext\/html\b/.test(req.headers.accept ?? '')) {
          res.writeHead(303, { location: '/login', 'content-length': 0 });
          res.end();
        } else refuse(res, a, post);
        return;
      }
      principal = a.principal;
    }
    if (post) {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        sendJson(res, 405, { error: `${req.method} is not allowed; use POST` });
        return;
      }
      const ctx = { store: this.deps.store.forTenant(principal.tenant), tenant: principal.tenant };
      const run = (): Promise<void> => post.handler(req, res, ctx);
      // The querier's reads share the API's read cap; ingest shares gRPC's admission.
      if (post.access === 'read') this.deps.reads.run(run).catch((err: unknown) => this.fail(url.pathname, res, err));
      else this.admitted(req, res, post, run).catch((err: unknown) => this.fail(url.pathname, res, err));
      return;
    }
    // The web UI's files are behind the same check as the API (a browser
    // without a token is sent to /login above).
    const asset = route ? undefined : this.assets.lookup(url.pathname);
    if (!route && !asset) {
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
    if (!route) return;
    const ctx: RequestContext = { params: url.searchParams, store: this.deps.store.forTenant(principal.tenant), principal, secure, address };
    const run = (): Promise<void> => route.handler(ctx, res);
    (route.limited ? this.deps.reads.run(run) : run()).catch((err: unknown) => this.fail(url.pathname, res, err));
  }

  /**
   * Runs an ingest route under the shared admission (admission.ts): on its
   * headers, with its declared length, before its body is read. Refused, it
   * is answered 429 with Retry-After and the connection closed, so the body
   * is not read (HTTP/1.1 has no other way to stop an upload). The request
   * holds its place until its answer is sent or its connection goes, and at
   * most maxHoldMs.
   */
  private async admitted(req: http.IncomingMessage, res: http.ServerResponse, post: PostRoute, run: () => Promise<void>): Promise<void> {
    const admission = this.deps.admission;
    if (!admission) return run();
    const entered = admission.enter(HTTP_INGEST_BUDGET_MS);
    if (isRefusal(entered)) return refuseIngest(res, entered, post);
    const ticket = entered;
    const length = Number(req.headers['content-length']);
    const refused = Number.isSafeInteger(length) && length > 0 ? ticket.addBytes(length) : undefined;
    if (refused !== undefined) {
      ticket.leave(false);
      return refuseIngest(res, refused, post);
    }
    const timer = setTimeout(() => ticket.leave(false), admission.opts.maxHoldMs);
    timer.unref();
    res.once('close', () => {
      clearTimeout(timer);
      // Answered: stored, or refused for what it held (4xx but 429).
      ticket.leave(res.writableFinished && res.statusCode < 500 && res.statusCode !== 429);
    });
    await run();
  }

  private fail(pathname: string, res: http.ServerResponse, err: unknown): void {
    if (err instanceof HttpError) {
      if (!res.headersSent) sendJson(res, err.status, { error: err.message });
      return;
    }
    if (err instanceof LimitError) {
      if (res.headersSent) res.destroy();
      else {
        res.setHeader('retry-after', String(err.retryAfterSeconds));
        sendJson(res, 503, { error: err.message });
      }
      return;
    }
    this.deps.log.error(`${pathname} failed: ${(err as Error)?.stack ?? String(err)}`);
    if (!res.headersSent) sendJson(res, 500, { error: `internal error: ${(err as Error)?.message ?? String(err)}` });
    else res.destroy();
  }
}
