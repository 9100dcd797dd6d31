/** One profile over real gRPC, with an optional bearer token and channel credentials. */
import * as grpc from '@grpc/grpc-js';
import { healthProto, ingestProto, type IngestRequest } from '@heapwatch/proto';
import { buildProfile, gzipProfile, type TestFrame } from './pprof';

export function profileRequest(service: string, frames: TestFrame[], bytes = 4096): IngestRequest {
  return {
    profileId: `${service}-${Math.random()}`,
    service,
    instance: { hostname: 'h', pid: 1, processStartTimeMs: 1, threadId: 0 },
    startTimeMs: Date.now() - 1000,
    endTimeMs: Date.now(),
    pprofGzip: gzipProfile(buildProfile([{ frames, objects: 1, bytes }])),
  };
}

/** The call's status code (OK when stored). */
export function ingest(
  address: string,
  req: IngestRequest,
  token?: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  extraMetadata: Record<string, string> = {},
): Promise<grpc.status> {
  const client = new (ingestProto().heapwatch.v1.IngestService)(address, credentials);
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  for (const [k, v] of Object.entries(extraMetadata)) metadata.set(k, v);
  return new Promise((resolve) =>
    client.Ingest(req, metadata, { deadline: Date.now() + 30_000 }, (err) => {
      client.close();
      resolve(err ? err.code : grpc.status.OK);
    }),
  );
}

/** grpc.health.v1 Check: the status, and the `heapwatch-not-ready-reason` trailers. */
export function healthCheck(address: string, service: string): Promise<{ status: string; reasons: string[] }> {
  const client = new (healthProto().grpc.health.v1.Health)(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    let status: string | undefined;
    // grpc-js calls back before it emits the status with the trailers.
    const call = client.Check({ service }, { deadline: Date.now() + 30_000 }, (err, res) => {
      if (err) {
        client.close();
        reject(err);
      } else status = String(res!.status);
    });
    call.on('status', (s) => {
      client.close();
      if (status !== undefined) resolve({ status, reasons: s.metadata.get('heapwatch-not-ready-reason').map(String).filter(Boolean) });
    });
  });
}
