/**
 * Authentication and tenants over every endpoint (docs/security.md): the
 * real collector in a child process, tokens from a file, two tenants that
 * each write a service of the same name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postRoutes } from '../../collector/src/http/posts';
import { routes, type ApiDeps } from '../../collector/src/http/server';
import type { Ingester } from '../../collector/src/ingest/ingester';
import { startCollectorProcess, tempDir, waitFor, type RunningCollector } from '../helpers/collector';
import { ingest, profileRequest } from '../helpers/ingest';

const T = {
  all: 'default-tenant-read-write-0001',
  readOnly: 'default-tenant-read-only-0002',
  writeA: 'tenant-a-agents-write-0003',
  readA: 'tenant-a-people-read-0004',
  writeB: 'tenant-b-agents-write-0005',
  readB: 'tenant-b-people-read-0006',
};

let collector: RunningCollector;
beforeAll(async () => {
  const dir = tempDir('tokens');
  const file = path.join(dir, 'tokens');
  fs.writeFileSync(
    file,
    [
      '# token scopes [tenant]',
      `${T.readOnly} read`,
      `${T.writeA} write team-a`,
      `${T.readA} read team-a`,
      `${T.writeB} write team-b`,
      '',
      `${T.readB} read team-b`,
    ].join('\n'),
  );
  // The throttle is tested apart (throttle.test.ts); here every route is tried with wrong tokens.
  collector = await startCollectorProcess({ args: ['--tokens-file', file, '--token', T.all, '--leak-interval-ms', '0', '--auth-max-failures', '1000'] });
});
afterAll(async () => {
  await collector?.stop();
});

function get(p: string, token?: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${collector.httpUrl}${p}`, { headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) }, redirect: 'manual' });
}

/** The route table the dispatcher serves; building it needs no live dependencies. */
const ROUTES = routes({} as ApiDeps);
/** The POST routes (Grafana's querier, Pyroscope's and OTLP's ingest); building them runs no ingester. */
const POSTS = postRoutes({} as Ingester, 1 << 20, { error() {}, warn() {}, info() {}, debug() {} });

function post(p: string, token?: string): Promise<Response> {
  return fetch(`${collector.httpUrl}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: '{}',
  });
}

describe('every endpoint requires a token once tokens are configured', () => {
  it('has exactly the public routes probes and the login page need', () => {
    const open = Object.entries(ROUTES).filter(([, r]) => r.access === 'public').map(([p]) => p).sort();
    // A new public route must be added here on purpose, with its reason in docs/security.md.
    expect(open).toEqual(['/healthz', '/login', '/readyz']);
  });

  it('answers 401 without a token and with a wrong one, 403 with a write-only one, on every other route', async () => {
    const guarded = Object.entries(ROUTES).filter(([, r]) => r.access !== 'public').map(([p]) => p);
    expect(guarded.length).toBeGreaterThanOrEqual(4);
    for (const p of [...guarded, '/no/such/endpoint', '/']) {
      const anonymous = await get(`${p}?service=x`);
      expect(anonymous.status, p).toBe(401);
      expect(anonymous.headers.get('www-authenticate'), p).toMatch(/^Bearer/);
      expect((await get(`${p}?service=x`, 'not-a-token-at-all')).status, p).toBe(401);
      expect((await get(`${p}?service=x`, T.writeA)).status, p).toBe(403);
      expect([401, 403]).not.toContain((await get(`${p}?service=x`, T.readA)).status);
    }
  });

  it('guards every POST route by its scope: the querier needs read, ingest needs write', async () => {
    const paths = Object.keys(POSTS);
    expect(paths).toEqual(expect.arrayContaining(['/ingest', '/push.v1.PusherService/Push', '/v1development/profiles', '/v1/profiles', '/querier.v1.QuerierService/SelectMergeStacktraces']));
    for (const [p, r] of Object.entries(POSTS)) {
      expect(['read', 'write'], p).toContain(r.access);
      expect(p.startsWith('/querier.v1.') ? 'read' : 'write', p).toBe(r.access);
      const anonymous = await post(p);
      expect(anonymous.status, p).toBe(401);
      expect(anonymous.headers.get('www-authenticate'), p).toMatch(/^Bearer/);
      expect((await post(p, 'not-a-token-at-all')).status, p).toBe(401);
      // The login cookie is never taken on a POST (a page cannot post with it).
      const cookie = await fetch(`${collector.httpUrl}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', cookie: `heapwatch_token=${T.all}` }, body: '{}' });
      expect(cookie.status, p).toBe(401);
      const [wrong, right] = r.access === 'read' ? [T.writeA, T.readA] : [T.readA, T.writeA];
      expect((await post(p, wrong)).status, p).toBe(403);
      expect([401, 403], p).not.toContain((await post(p, right)).status);
    }
  });

  it('keeps /healthz and /readyz open for probes', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect(await (await get('/readyz')).json()).toEqual({ status: 'ready' });
  });

  it('warns that --token is visible in the process list', () => {
    expect(collector.output()).toMatch(/--token is visible in the process list/);
  });
});

describe('ingest', () => {
  it('requires a token with the write scope', async () => {
    const req = () => profileRequest('ingest-auth', [['f', '/app/f.js', 1]]);
    expect(await ingest(collector.grpcAddress, req())).toBe(grpc.status.UNAUTHENTICATED);
    expect(await ingest(collector.grpcAddress, req(), 'wrong-token')).toBe(grpc.status.UNAUTHENTICATED);
    expect(await ingest(collector.grpcAddress, req(), T.readA)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await ingest(collector.grpcAddress, req(), T.readOnly)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await ingest(collector.grpcAddress, req(), T.all)).toBe(grpc.status.OK);
  });
});

describe('tenants', () => {
  const SERVICE = 'checkout';
  beforeAll(async () => {
    // Same service name in both tenants, different code.
    expect(await ingest(collector.grpcAddress, profileRequest(SERVICE, [['teamAOnlyFunction', '/a/secret-a.js', 7]]), T.writeA)).toBe(grpc.status.OK);
    expect(await ingest(collector.grpcAddress, profileRequest(SERVICE, [['teamBOnlyFunction', '/b/secret-b.js', 9]]), T.writeB)).toBe(grpc.status.OK);
    expect(await ingest(collector.grpcAddress, profileRequest(SERVICE, [['teamBOnlyFunction', '/b/secret-b.js', 9]]), T.writeB)).toBe(grpc.status.OK);
    expect(await ingest(collector.grpcAddress, profileRequest('only-b', [['g', '/b/g.js', 1]]), T.writeB)).toBe(grpc.status.OK);
  });

  async function services(token: string): Promise<{ service: string; profiles: number }[]> {
    const res = await get('/api/v1/services', token);
    expect(res.status).toBe(200);
    return (await res.json()) as { service: string; profiles: number }[];
  }

  it('lists only the services of the token\'s tenant', async () => {
    await waitFor('both tenants stored', async () => ((await services(T.readB)).length === 2 ? true : undefined));
    expect(await services(T.readA)).toEqual([expect.objectContaining({ service: SERVICE, profiles: 1 })]);
    expect(await services(T.readB)).toEqual([
      expect.objectContaining({ service: SERVICE, profiles: 2 }),
      expect.objectContaining({ service: 'only-b', profiles: 1 }),
    ]);
    // The default tenant wrote ingest-auth only.
    expect((await services(T.readOnly)).map((s) => s.service)).toEqual(['ingest-auth']);
  });

  it('answers Grafana\'s querier with the token\'s tenant only', async () => {
    const values = async (token: string) => {
      const res = await fetch(`${collector.httpUrl}/querier.v1.QuerierService/LabelValues`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ name: 'service_name', start: '1', end: String(Date.now() + 60_000) }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { names?: string[] }).names ?? [];
    };
    await waitFor('both tenants stored', async () => ((await services(T.readB)).length === 2 ? true : undefined));
    expect(await values(T.readA)).toEqual([SERVICE]);
    expect(await values(T.readB)).toEqual([SERVICE, 'only-b']);
    const flame = async (token: string) => {
      const res = await fetch(`${collector.httpUrl}/querier.v1.QuerierService/SelectMergeStacktraces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ profileTypeID: 'memory:inuse_space:bytes:space:bytes', labelSelector: `{service_name="${SERVICE}"}`, start: '1', end: String(Date.now() + 60_000) }),
      });
      expect(res.status).toBe(200);
      return JSON.stringify(await res.json());
    };
    const [a, b] = [await flame(T.readA), await flame(T.readB)];
    expect(a).toContain('teamAOnlyFunction');
    expect(a).not.toContain('teamBOnlyFunction');
    expect(b).toContain('teamBOnlyFunction');
    expect(b).not.toContain('teamAOnlyFunction');
  });

  it('merges the profile of the token\'s tenant only', async () => {
    const a = await get(`/api/v1/profile?service=${SERVICE}`, T.readA);
    const b = await get(`/api/v1/profile?service=${SERVICE}`, T.readB);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.headers.get('x-heapwatch-profiles')).toBe('1');
    expect(b.headers.get('x-heapwatch-profiles')).toBe('2');
    const { gunzipSync } = await import('node:zlib');
    const textA = gunzipSync(Buffer.from(await a.arrayBuffer())).toString('latin1');
    const textB = gunzipSync(Buffer.from(await b.arrayBuffer())).toString('latin1');
    expect(textA).toContain('teamAOnlyFunction');
    expect(textA).not.toContain('teamBOnlyFunction');
    expect(textA).not.toContain('secret-b.js');
    expect(textB).toContain('teamBOnlyFunction');
    expect(textB).not.toContain('teamAOnlyFunction');
    // Another tenant's service does not exist for A.
    expect((await get('/api/v1/profile?service=only-b', T.readA)).status).toBe(404);
  });

  it('answers the web UI\'s endpoints with the token\'s tenant only', async () => {
    const now = Date.now();
    const flameA = await get(`/api/v1/flamegraph?service=${SERVICE}`, T.readA);
    const flameB = await get(`/api/v1/flamegraph?service=${SERVICE}`, T.readB);
    expect([flameA.status, flameB.status]).toEqual([200, 200]);
    const textA = JSON.stringify(await flameA.json());
    const textB = JSON.stringify(await flameB.json());
    expect(textA).toContain('teamAOnlyFunction');
    expect(textA).not.toContain('teamBOnlyFunction');
    expect(textB).toContain('teamBOnlyFunction');
    expect(textB).not.toContain('teamAOnlyFunction');
    const diff = await get(`/api/v1/diff?service=${SERVICE}&format=json&base_from=${now - 7200_000}&base_to=${now - 3600_000}`, T.readA);
    expect(diff.status).toBe(200);
    expect(JSON.stringify(await diff.json())).not.toContain('teamBOnlyFunction');
    expect((await get('/api/v1/flamegraph?service=only-b', T.readA)).status).toBe(404);
    expect((await get('/api/v1/leaks/evidence?service=only-b', T.readA)).status).toBe(404);
    expect((await get('/api/v1/leaks/evidence?service=only-b', T.readB)).status).toBe(200);
    // The service list's leak counts come from the tenant's own findings.
    expect(((await (await get('/api/v1/services', T.readA)).json()) as { service: string }[]).map((s) => s.service)).not.toContain('only-b');
  });

  it('evaluates and stores leak reports per tenant', async () => {
    expect((await get(`/api/v1/leaks?service=only-b`, T.readA)).status).toBe(404);
    const a = await get(`/api/v1/leaks?service=${SERVICE}&evaluate=true`, T.readA);
    expect(a.status).toBe(200);
    expect(await a.json()).toMatchObject({ service: SERVICE, leaks: [] });
    // B's stored report is B's own: none stored yet, so it is evaluated now, from B's profiles.
    const b = await get(`/api/v1/leaks?service=only-b`, T.readB);
    expect(b.status).toBe(200);
    expect(await b.json()).toMatchObject({ service: 'only-b' });
  });

  it('gives a write token no way to write into another tenant', async () => {
    // The tenant comes from the token only; a request has no tenant field, and metadata naming one is ignored.
    const req = profileRequest('a-writes-here', [['h', '/a/h.js', 1]]);
    const headers = { 'x-heapwatch-tenant': 'team-b', 'x-scope-orgid': 'team-b', tenant: 'team-b' };
    expect(await ingest(collector.grpcAddress, req, T.writeA, undefined, headers)).toBe(grpc.status.OK);
    await waitFor('stored', async () => ((await services(T.readA)).some((s) => s.service === 'a-writes-here') ? true : undefined));
    expect((await services(T.readB)).some((s) => s.service === 'a-writes-here')).toBe(false);
    expect((await get('/api/v1/profile?service=a-writes-here', T.readB)).status).toBe(404);
  });
});

describe('the browser', () => {
  it('logs in once with ?token= and then reads with an HttpOnly SameSite=Strict cookie', async () => {
    // A page opened without a token goes to the login form.
    const page = await get('/', undefined, { accept: 'text/html,application/xhtml+xml' });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login');
    const form = await get('/login');
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('<form');
    expect((await get(`/login?token=wrong-token`)).status).toBe(401);
    const login = await get(`/login?token=${T.readA}`);
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^heapwatch_token=/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    // A malformed cookie is refused, not a crash.
    expect((await get('/api/v1/services', undefined, { cookie: 'heapwatch_token=%E0%A4%A' })).status).toBe(401);
    const res = await get('/api/v1/services', undefined, { cookie: cookie.split(';')[0]! });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { service: string }[]).map((s) => s.service)).not.toContain('only-b');
  });
});
