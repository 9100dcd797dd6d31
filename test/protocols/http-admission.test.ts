/**
 * The HTTP ingest routes (Pyroscope's /ingest and Push, OTLP's
 * /v1development/profiles) share the gRPC ingest's in-flight bound: with
 * --max-in-flight-requests 1, a request whose body is still arriving holds
 * the one slot, and every other ingest request, on either port, is refused
 * at once (429 with Retry-After; RESOURCE_EXHAUSTED with a pushback) until
 * it ends.
 */
import * as http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollectorProcess, waitFor, type RunningCollector } from '../helpers/collector';
import { encodeRequest, exportClient, heapRequest, StatusType } from '../helpers/otlp';
import { buildProfile, gzipProfile } from '../helpers/pprof';

const STACKS = [{ frames: [['hold', '/app/hold.js', 1]] as [string, string, number][], objects: 1, bytes: 4096 }];

describe('HTTP ingest under the shared in-flight bound', () => {
  let collector: RunningCollector;

  beforeAll(async () => {
    collector = await startCollectorProcess({ args: ['--leak-interval-ms', '0', '--max-in-flight-requests', '1'] });
  });
  afterAll(async () => {
    await collector?.stop();
  });

  it('refuses ingest on both ports while a slow upload holds the only slot, and admits again once it ends', async () => {
    const url = new URL(`${collector.httpUrl}/ingest?name=slow-upload`);
    const heap = gzipProfile(buildProfile(STACKS));
    // Headers and half the body, then nothing: the request is admitted and waits for the rest.
    const slow = http.request({ host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: 'POST', headers: { 'content-length': heap.length } });
    const slowAnswer = new Promise<number>((resolve, reject) => {
      slow.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      slow.on('error', reject);
    });
    slow.write(heap.subarray(0, heap.length >> 1));

    const otlp = encodeRequest(heapRequest({ 'service.name': 'refused-otlp' }, [{ timeMs: Date.now() - 1000, stacks: STACKS }]));
    const refused = await waitFor('the slot taken', async () => {
      const res = await fetch(`${collector.httpUrl}/v1development/profiles`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: otlp });
      return res.status === 429 ? res : undefined;
    });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const status = StatusType().toObject(StatusType().decode(Buffer.from(await refused.arrayBuffer())));
    expect(status).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, message: expect.stringMatching(/at capacity: 1 requests in flight.*retry in \d+ m?s/) });

    const ingest = await fetch(`${collector.httpUrl}/ingest?name=refused-pyroscope`, { method: 'POST', body: heap });
    expect(ingest.status).toBe(429);
    expect(await ingest.json()).toEqual({ error: expect.stringMatching(/at capacity/) });
    const push = await fetch(`${collector.httpUrl}/push.v1.PusherService/Push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(push.status).toBe(429);
    expect(await push.json()).toMatchObject({ code: 'resource_exhausted' });
    // The gRPC port shares the bound.
    const client = exportClient(collector.grpcAddress);
    try {
      const err = (await client.export(otlp).then(() => null, (e: unknown) => e)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(err.metadata.get('grpc-retry-pushback-ms')).toHaveLength(1);

      // The rest of the slow body: stored, and the slot is free again.
      slow.end(heap.subarray(heap.length >> 1));
      expect(await slowAnswer).toBe(200);
      await waitFor('the slot free', async () => (await client.export(otlp).then(() => true, () => undefined)));
    } finally {
      client.close();
    }
    // What was refused left nothing behind; what was admitted is stored.
    const names = await waitFor('both stored', async () => {
      const res = await fetch(`${collector.httpUrl}/api/v1/services`);
      const list = ((await res.json()) as { service: string }[]).map((s) => s.service).sort();
      return list.length >= 2 ? list : undefined;
    });
    expect(names).toEqual(['refused-otlp', 'slow-upload']);
  });
});
