/**
 * The API's POST routes: Grafana's querier (`querier.v1.QuerierService`,
 * the read scope, reading as the caller's tenant), Pyroscope's ingest
 * (`/ingest` and `push.v1.PusherService/Push`) and OTLP's profiles
 * (`/v1development/profiles`, `/v1/profiles`), the write scope, storing as
 * the caller's tenant. The dispatcher (server.ts) checks the scope.
 */
import type * as http from 'node:http';
import type { Ingester } from '../ingest/ingester';
import { encodeStatus } from '../ingest/otlp-decode';
import type { Logger } from '../log';
import { connectRoutes, type PostHandler } from './connect';
import { OTLP_HTTP_PATHS, otlpHttpRoute } from './otlp-http';
import { pusherService, pyroscopeIngestRoute } from './pyroscope-ingest';
import { querierService } from './querier-service';
import type { PostRoute } from './server';

/** OTLP's 429: a google.rpc.Status in the request's encoding. */
function otlpRefusal(res: http.ServerResponse, message: string): void {
  const json = /^application\/json\b/i.test(String(res.req.headers['content-type'] ?? ''));
  const body = encodeStatus(8 /* RESOURCE_EXHAUSTED */, message, json);
  res.writeHead(429, { 'content-type': json ? 'application/json' : 'application/x-protobuf', 'content-length': body.length });
  res.end(body);
}

/** Write routes are admitted by the dispatcher (server.ts) under the gRPC ingest's shared Admission. */
export function postRoutes(ingester: Ingester, maxBodyBytes: number, log: Logger): Record<string, PostRoute> {
  const onError = (route: string, err: unknown): void => log.error(`${route} failed: ${(err as Error)?.stack ?? String(err)}`);
  const posts: Record<string, PostRoute> = {};
  for (const [path, handler] of Object.entries(connectRoutes([querierService(), pusherService(ingester)], { maxBodyBytes, onError }))) {
    const write = path.startsWith('/push.v1.');
    posts[path] = { access: write ? 'write' : 'read', connect: true, handler };
  }
  posts['/ingest'] = { access: 'write', connect: false, handler: pyroscopeIngestRoute(ingester, maxBodyBytes) };
  const otlp = otlpHttpRoute(ingester, maxBodyBytes, log);
  for (const path of OTLP_HTTP_PATHS) posts[path] = { access: 'write', connect: false, handler: otlp, refusal: otlpRefusal };
  return posts;
}
