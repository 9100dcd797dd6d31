/**
 * The Connect protocol's unary calls (connectrpc.com/docs/protocol), the
 * part Grafana's Pyroscope data source and Pyroscope's SDKs use:
 * `POST /<package>.<Service>/<Method>` with a protobuf (`application/proto`)
 * or JSON (`application/json`) body, answered in the same encoding; an
 * error is JSON `{"code": "<connect code>", "message": "..."}` with the
 * HTTP status the protocol maps the code to. Messages are encoded and
 * decoded with protobufjs from the .proto files under proto/pyroscope/.
 */
import type * as http from 'node:http';
import type * as protobuf from 'protobufjs';
import { PROTO_ROOT } from '@heapwatch/proto';
import { protoRoot } from '../protos';
import { readBody } from './body';
import type { TenantStore } from '../store/store';
import { HttpError } from './errors';

export type ConnectCode =
  | 'invalid_argument'
  | 'not_found'
  | 'unimplemented'
  | 'internal'
  | 'unavailable'
  | 'resource_exhausted'
  | 'unauthenticated';

const STATUS: Record<ConnectCode, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  not_found: 404,
  resource_exhausted: 429,
  internal: 500,
  unimplemented: 501,
  unavailable: 503,
};

export class ConnectError extends Error {
  constructor(
    readonly code: ConnectCode,
    message: string,
  ) {
    super(message);
  }
}

/** Connect's code for an HTTP status the body reader gave (413, 415, 400). */
function codeOfStatus(status: number): ConnectCode {
  if (status === 413) return 'resource_exhausted';
  if (status === 401) return 'unauthenticated';
  if (status === 404) return 'not_found';
  if (status >= 500) return 'internal';
  return 'invalid_argument';
}

/** Who calls: the caller's tenant (its token's) and that tenant's store. */
export interface CallContext {
  tenant: string;
  store: TenantStore;
}

/** A method's request as plain data (int64 as numbers, enums as names), and its answer. */
export type MethodImpl = (request: Record<string, unknown>, ctx: CallContext) => Promise<Record<string, unknown> | RawAnswer>;

/** An answer already encoded as the output message's binary form (a pprof). */
export class RawAnswer {
  constructor(readonly bytes: Uint8Array) {}
}

export interface ConnectService {
  /** Fully qualified, e.g. `querier.v1.QuerierService`. */
  name: string;
  methods: Record<string, MethodImpl>;
}

export type PostHandler = (req: http.IncomingMessage, res: http.ServerResponse, ctx: CallContext) => Promise<void>;

/** The Pyroscope contracts (proto/pyroscope/), loaded once per process. */
export function pyroscopeProtos(): protobuf.Root {
  return protoRoot(PROTO_ROOT, ['pyroscope/querier/v1/querier.proto', 'pyroscope/push/v1/push.proto']);
}

const TO_PLAIN: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true };
const TO_JSON: protobuf.IConversionOptions = { longs: String, enums: String, bytes: String, json: true };

type Codec = 'proto' | 'json';

function codecOf(req: http.IncomingMessage): Codec {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/proto' || type === 'application/protobuf') return 'proto';
  if (type === 'application/json') return 'json';
  throw new HttpError(415, `content-type ${JSON.stringify(type)} is not supported; use application/proto or application/json`);
}

function sendError(res: http.ServerResponse, code: ConnectCode, message: string, status = STATUS[code]): void {
  const text = JSON.stringify({ code, message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The POST routes of `services`, by path. */
export function connectRoutes(
  services: readonly ConnectService[],
  opts: { maxBodyBytes: number; onError: (path: string, err: unknown) => void },
): Record<string, PostHandler> {
  const protos = pyroscopeProtos();
  const routes: Record<string, PostHandler> = {};
  for (const service of services) {
    const svc = protos.lookupService(service.name);
    for (const [name, impl] of Object.entries(service.methods)) {
      const method = svc.methods[name];
      if (!method) throw new Error(`${service.name} has no method ${name} in proto/pyroscope`);
      const input = protos.lookupType(method.requestType);
      const output = protos.lookupType(method.responseType);
      const route = `/${service.name}/${name}`;
      routes[route] = async (req, res, ctx) => {
        try {
          const codec = codecOf(req);
          const body = await readBody(req, opts.maxBodyBytes);
          let message: protobuf.Message;
          try {
            message = codec === 'proto' ? input.decode(body) : input.fromObject(body.length ? JSON.parse(body.toString('utf8')) : {});
          } catch (err) {
            throw new ConnectError('invalid_argument', `the body is not a ${input.fullName.slice(1)} (${codec}): ${(err as Error).message}`);
          }
          const answer = await impl(input.toObject(message, TO_PLAIN), ctx);
          let bytes: Uint8Array;
          if (codec === 'proto') {
            bytes = answer instanceof RawAnswer ? answer.bytes : output.encode(output.fromObject(answer)).finish();
          } else {
            const msg = answer instanceof RawAnswer ? output.decode(answer.bytes) : output.fromObject(answer);
            bytes = Buffer.from(JSON.stringify(output.toObject(msg, TO_JSON)));
          }
          res.writeHead(200, { 'content-type': `application/${codec}`, 'content-length': bytes.length });
          res.end(bytes);
        } catch (err) {
          if (err instanceof ConnectError) sendError(res, err.code, err.message);
          else if (err instanceof HttpError) sendError(res, codeOfStatus(err.status), err.message, err.status);
          else {
            opts.onError(route, err);
            if (!res.headersSent) sendError(res, 'internal', `internal error: ${(err as Error)?.message ?? String(err)}`);
            else res.destroy();
          }
        }
      };
    }
  }
  return routes;
}
