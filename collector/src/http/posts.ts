/**
 * The API's POST routes: Grafana's querier (`querier.v1.QuerierService`,
 * the read scope, reading as the caller's tenant), Pyroscope's ingest
 * (`/ingest` and `push.v1.PusherService/Push`) and OTLP's profiles
 * (`/v1development/profiles`, `/v1/profiles`), the write scope, storing as
 * the caller's tenant. The dispatcher (server.ts) checks the scope.
 */
import type * as http from 'node:http';
import type { Admission } from '../ingest/admission';
import type { Ingester } from '../ingest/ingester';
import { encodeStatus } from '../ingest/otlp-decode';
import type { Logger } from '../log';
import { connectRoutes, type PostHandler } from './connect';
import { OTLP_HTTP_PATHS, otlpHttpRoute } from './otlp-http';
import { pusherService, pyroscopeIngestRoute } from './pyroscope-ingest';
import { querierService } from './querier-service';
import type { PostRoute } from './server';

/** How a route says "at capacity, retry in `seconds`". */
type Refusal = (res: http.ServerResponse, message: string) => void;

const jsonRefusal =
  (connect: boolean): Refusal =>
  (res, message) => {
    const body = JSON.stringify(connect ? { code: 'resource_exhausted', message } : { error: message });
    res.writeHead(429, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

const otlpRefusal: Refusal = (res, message) => {
  const json = /^application\/json\b/i.test(String(res.req.headers['content-type'] ?? ''));
  const body = encodeStatus(8 /* RESOURCE_EXHAUSTED */, message, json);
  res.writeHead(429, { 'content-type': json ? 'application/json' : 'application/x-protobuf', 'content-length': body.length });
  res.end(body);
};

/**
 * An HTTP ingest route under the gRPC ingest's in-flight bound (one
 * Admission for both ports, admission.ts): past it a request is refused at
 * once, before its body is read, with 429 and Retry-After (the same hint
 * gRPC callers get as grpc-retry-pushback-ms, in whole seconds).
 */
function admitted(admission: Admission, refuse: Refusal, handler: PostHandler): PostHandler {
  return async (req, res, ctx) => {
    const refused = admission.admit();
    if (refused !== undefined) {
      req.resume();
      const seconds = Math.max(1, Math.ceil(admission.pushbackMs() / 1000));
      res.setHeader('retry-after', String(seconds));
      refuse(res, `${refused}; retry in ${seconds} s`);
      return;
    }
    let completed = false;
    try {
      await handler(req, res, ctx);
      completed = res.statusCode < 500;
    } finally {
      admission.release(completed);
    }
  };
}

export function postRoutes(ingester: Ingester, maxBodyBytes: number, log: Logger, admission: Admission): Record<string, PostRoute> {
  const onError = (route: string, err: unknown): void => log.error(`${route} failed: ${(err as Error)?.stack ?? String(err)}`);
  const posts: Record<string, PostRoute> = {};
  for (const [path, handler] of Object.entries(connectRoutes([querierService(), pusherService(ingester)], { maxBodyBytes, onError }))) {
    const write = path.startsWith('/push.v1.');
    posts[path] = { access: write ? 'write' : 'read', connect: true, handler: write ? admitted(admission, jsonRefusal(true), handler) : handler };
  }
  posts['/ingest'] = { access: 'write', connect: false, handler: admitted(admission, jsonRefusal(false), pyroscopeIngestRoute(ingester, maxBodyBytes)) };
  const otlp = admitted(admission, otlpRefusal, otlpHttpRoute(ingester, maxBodyBytes, log));
  for (const path of OTLP_HTTP_PATHS) posts[path] = { access: 'write', connect: false, handler: otlp };
  return posts;
}
