/**
 * OTLP/HTTP for the profiles signal: `POST /v1development/profiles` (the
 * path OTLP exporters use while the signal is in development) and
 * `/v1/profiles`, with an `ExportProfilesServiceRequest` as binary protobuf
 * (`application/x-protobuf`) or OTLP/JSON (`application/json`), gzipped or
 * not. Answered in the same encoding: 200 with an
 * `ExportProfilesServiceResponse`, or a `google.rpc.Status` with 400 (the
 * request is wrong: OTLP clients do not retry it), 413, 415, 429 with
 * Retry-After, or 503 (retry later). The write scope and the tenant are the
 * dispatcher's (server.ts); decoding and mapping are otlp-profiles.ts'.
 */
import type * as http from 'node:http';
import { status } from '@grpc/grpc-js';
import { IngestError } from '../ingest/errors';
import type { Ingester } from '../ingest/ingester';
import { encodeExportResponse, encodeStatus } from '../ingest/otlp-decode';
import { checkRevision, exportProfiles, OTLP_REVISION_HEADER } from '../ingest/otlp-profiles';
import type { Logger } from '../log';
import { OverloadedError } from '../store/batcher';
import { RefusedByStoreError } from '../store/insert-errors';
import { readBody } from './body';
import type { PostHandler } from './connect';
import { HttpError } from './errors';

export const OTLP_HTTP_PATHS = ['/v1development/profiles', '/v1/profiles'] as const;

/** gRPC's code for an HTTP status (google.rpc.Status carries gRPC codes). */
function grpcCode(httpStatus: number): status {
  if (httpStatus === 400 || httpStatus === 415) return status.INVALID_ARGUMENT;
  if (httpStatus === 413 || httpStatus === 429) return status.RESOURCE_EXHAUSTED;
  return status.UNAVAILABLE;
}

/** A header's values: a repeated one arrives joined with ", ". */
function headerValues(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(','));
}

export function otlpHttpRoute(ingester: Ingester, maxBodyBytes: number, log: Pick<Logger, 'warn' | 'error'>): PostHandler {
  return async (req: http.IncomingMessage, res: http.ServerResponse, { tenant }) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const json = type === 'application/json';
    const send = (code: number, body: Uint8Array, headers: Record<string, string> = {}): void => {
      res.writeHead(code, { 'content-type': json ? 'application/json' : 'application/x-protobuf', 'content-length': body.length, ...headers });
      res.end(body);
    };
    const fail = (code: number, message: string, headers?: Record<string, string>): void => {
      req.resume(); // whatever of the body is left unread
      send(code, encodeStatus(grpcCode(code), message, json), headers);
    };
    try {
      if (!json && type !== 'application/x-protobuf' && type !== 'application/protobuf') {
        throw new HttpError(415, `content-type ${JSON.stringify(type)} is not supported; use application/x-protobuf or application/json`);
      }
      checkRevision(headerValues(req.headers[OTLP_REVISION_HEADER]));
      const body = await readBody(req, maxBodyBytes);
      send(200, encodeExportResponse(await exportProfiles(ingester, body, json, tenant), json));
    } catch (err) {
      if (err instanceof HttpError) fail(err.status, err.message);
      else if (err instanceof IngestError) fail(err.code === status.INVALID_ARGUMENT ? 400 : err.code === status.RESOURCE_EXHAUSTED ? 429 : 503, err.message, err.code === status.INVALID_ARGUMENT ? {} : { 'retry-after': '1' });
      else if (err instanceof RefusedByStoreError) fail(400, err.message);
      else if (err instanceof OverloadedError) {
        log.warn(err.message);
        fail(429, `${err.message}; retry later`, { 'retry-after': '1' });
      } else {
        log.error(`OTLP export failed: ${(err as Error)?.stack ?? String(err)}`);
        fail(503, 'the store did not take the profiles; retry later', { 'retry-after': '5' });
      }
    }
  };
}
