/**
 * The collector as an operator runs it: a bearer token on ingest, and the
 * standard grpc.health.v1 service that load balancers and probes call.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthProto, ingestProto, type IngestRequest } from '@heapwatch/proto';
import { startCollectorProcess, type RunningCollector } from '../helpers/collector';
import { buildProfile, gzipProfile } from '../helpers/pprof';

let collector: RunningCollector;
beforeAll(async () => {
  collector = await startCollectorProcess({ args: ['--token', 's3cret'] });
});
afterAll(async () => {
  await collector?.stop();
});

function ingest(token: string | undefined): Promise<grpc.status> {
  const client = new (ingestProto().heapwatch.v1.IngestService)(collector.grpcAddress, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  const req: IngestRequest = {
    profileId: `auth-${Math.random()}`,
    service: 'auth-worker',
    instance: { hostname: 'h', pid: 1, processStartTimeMs: 1, threadId: 0 },
    startTimeMs: Date.now() - 1000,
    endTimeMs: Date.now(),
    pprofGzip: gzipProfile(buildProfile([{ frames: [['f', '/app/f.js', 1]], objects: 1, bytes: 64 }])),
  };
  return new Promise((resolve) =>
    client.Ingest(req, metadata, { deadline: Date.now() + 20_000 }, (err) => {
      client.close();
      resolve(err ? err.code : grpc.status.OK);
    }),
  );
}

describe('collector with --token', () => {
  it('refuses ingest without the token or with a wrong one, and takes it with the right one', async () => {
    expect(await ingest(undefined)).toBe(grpc.status.UNAUTHENTICATED);
    expect(await ingest('wrong')).toBe(grpc.status.UNAUTHENTICATED);
    expect(await ingest('s3cret')).toBe(grpc.status.OK);
    const services = (await (await fetch(`${collector.httpUrl}/api/v1/services`, { headers: { authorization: 'Bearer s3cret' } })).json()) as { service: string; profiles: number }[];
    expect(services).toEqual([expect.objectContaining({ service: 'auth-worker', profiles: 1 })]);
  });

  it('answers grpc.health.v1 Check as SERVING, for the server and for the ingest service', async () => {
    const Health = healthProto().grpc.health.v1.Health;
    const client = new Health(collector.grpcAddress, grpc.credentials.createInsecure());
    const check = (service: string) =>
      new Promise<string>((resolve, reject) =>
        client.Check({ service }, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(String(res!.status)))),
      );
    expect(await check('')).toBe('SERVING');
    expect(await check('heapwatch.v1.IngestService')).toBe('SERVING');
    expect(await check('liveness')).toBe('SERVING');
    await expect(check('no.such.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    client.close();
  });
});
