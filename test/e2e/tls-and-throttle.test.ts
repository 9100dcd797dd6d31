/**
 * TLS on both ports (a CA and a server certificate for 127.0.0.1 made with
 * openssl at test time), the agent's transport trusting that CA, and the
 * throttle of failed authentications on both ports.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Http2Transport } from '../../agent/src/transport';
import { startCollectorProcess, tempDir, type RunningCollector } from '../helpers/collector';
import { ingest, profileRequest } from '../helpers/ingest';

const TOKEN = 'tls-test-token-read-write-0001';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A CA, and a certificate for IP 127.0.0.1 that it signed. */
function makeCerts(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string) => path.join(dir, n);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=heapwatch test CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

/** The image's HEALTHCHECK command, run as Docker would run it: its exit status. */
function dockerHealthcheck(env: Record<string, string>): number {
  const dockerfile = fs.readFileSync(path.join(__dirname, '../../deploy/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const line = dockerfile.split('\n').find((l) => l.startsWith('HEALTHCHECK'))!;
  const script = /CMD node -e "(.*)"\s*$/.exec(line)![1]!;
  const run = spawnSync(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, ...env }, timeout: 30_000 });
  return run.status ?? -1;
}

function httpsGet(url: string, ca: Buffer | undefined, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

describe.skipIf(!hasOpenssl())('TLS (needs openssl)', () => {
  let collector: RunningCollector;
  let certs: { ca: string; cert: string; key: string };
  beforeAll(async () => {
    certs = makeCerts(tempDir('tls'));
    collector = await startCollectorProcess({
      args: ['--tls-cert', certs.cert, '--tls-key', certs.key],
      env: { HEAPWATCH_TOKEN: TOKEN },
    });
  });
  afterAll(async () => {
    await collector?.stop();
  });

  it('serves HTTPS that a client trusting the CA reads with a token', async () => {
    expect(collector.httpUrl).toMatch(/^https:/);
    const ca = fs.readFileSync(certs.ca);
    expect(await httpsGet(`${collector.httpUrl}/healthz`, ca)).toBe(200);
    expect(await httpsGet(`${collector.httpUrl}/api/v1/services`, ca)).toBe(401);
    expect(await httpsGet(`${collector.httpUrl}/api/v1/services`, ca, TOKEN)).toBe(200);
    // Without the CA the certificate is not trusted.
    await expect(httpsGet(`${collector.httpUrl}/healthz`, undefined)).rejects.toThrow();
  });

  it("the image's HEALTHCHECK passes over TLS when HEAPWATCH_TLS_CERT is set, and fails over plain HTTP", () => {
    const port = new URL(collector.httpUrl).port;
    expect(dockerHealthcheck({ HEAPWATCH_HTTP_PORT: port, HEAPWATCH_TLS_CERT: certs.cert })).toBe(0);
    expect(dockerHealthcheck({ HEAPWATCH_HTTP_PORT: port })).toBe(1);
  });

  it('serves gRPC over TLS: a TLS client with the CA is taken, a plaintext one is not', async () => {
    const ca = fs.readFileSync(certs.ca);
    const req = () => profileRequest('tls-worker', [['f', '/app/f.js', 1]]);
    expect(await ingest(collector.grpcAddress, req(), TOKEN, grpc.credentials.createSsl(ca))).toBe(grpc.status.OK);
    expect(await ingest(collector.grpcAddress, req(), TOKEN)).toBe(grpc.status.UNAVAILABLE);
  });

  it('the agent sends over TLS with HEAPWATCH_TLS_CA, and fails without it', async () => {
    const withCa = new Http2Transport({ collector: collector.grpcAddress, token: TOKEN, tls: false, tlsCa: certs.ca });
    const sent = await withCa.send(profileRequest('tls-agent', [['g', '/app/g.js', 2]]), 20_000);
    withCa.close();
    expect(sent).toMatchObject({ ok: true, stored: true });
    const systemRoots = new Http2Transport({ collector: collector.grpcAddress, token: TOKEN, tls: true });
    const refused = await systemRoots.send(profileRequest('tls-agent', [['g', '/app/g.js', 2]]), 20_000);
    systemRoots.close();
    expect(refused.ok).toBe(false);
  });
});

describe('throttling of failed authentication', () => {
  let collector: RunningCollector;
  beforeAll(async () => {
    collector = await startCollectorProcess({ env: { HEAPWATCH_TOKEN: TOKEN, HEAPWATCH_AUTH_MAX_FAILURES: '5' } });
  });
  afterAll(async () => {
    await collector?.stop();
  });

  it('refuses an address for the rest of the minute after 5 failures, even with the right token, on both ports', async () => {
    const get = (token: string) => fetch(`${collector.httpUrl}/api/v1/services`, { headers: { authorization: `Bearer ${token}` } });
    expect((await get(TOKEN)).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await get(`guess-${i}`)).status).toBe(401);
    const blocked = await get(TOKEN);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await ingest(collector.grpcAddress, profileRequest('t', [['f', '/f.js', 1]]), TOKEN)).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Probes stay open, the image's HEALTHCHECK included.
    expect((await fetch(`${collector.httpUrl}/healthz`)).status).toBe(200);
    expect(dockerHealthcheck({ HEAPWATCH_HTTP_PORT: new URL(collector.httpUrl).port })).toBe(0);
  });
});
