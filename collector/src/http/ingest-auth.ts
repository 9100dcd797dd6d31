/**
 * `--token` on the HTTP ingest routes (Pyroscope's /ingest and Push), as on
 * gRPC ingest: `authorization: Bearer TOKEN`, compared in constant time.
 * Pyroscope SDKs send it as their `authToken`.
 */
import { timingSafeEqual } from 'node:crypto';
import type { PostHandler } from './connect';

function matches(header: string | undefined, token: string): boolean {
  const want = Buffer.from(`Bearer ${token}`);
  const got = Buffer.from(header ?? '');
  return got.length === want.length && timingSafeEqual(got, want);
}

export function requireToken(handler: PostHandler, token: string | undefined, connect: boolean): PostHandler {
  if (!token) return handler;
  return async (req, res) => {
    if (matches(req.headers.authorization, token)) return handler(req, res);
    req.resume();
    const body = JSON.stringify(connect ? { code: 'unauthenticated', message: 'missing or wrong bearer token' } : { error: 'missing or wrong bearer token' });
    res.writeHead(401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}
