// A lean gRPC client for heapwatch.v1.IngestService/Ingest, for a load
// generator that plays thousands of agents from one process.
//
// Why not @grpc/grpc-js, which the agent uses: one process sending for 2,000
// agents spent 2/3 of its CPU copying the 189 KiB profile (protobuf encoding,
// then grpc-js framing it into a new buffer) on every attempt, shed retries
// included, and starved before the collector was loaded (measured with
// --cpu-prof). 2,000 real agents do that work in 2,000 processes. Here a
// request is the gRPC frame header and the small fields, encoded per
// snapshot (a few hundred bytes), followed by the profile field, encoded once
// per distinct profile and shared by every request that carries it: nothing
// large is allocated or copied per request.
//
// It speaks the same protocol as grpc-js's client on the wire: HTTP/2 POST,
// `grpc-timeout`, status in the trailers (or a trailers-only response), and
// cancels the stream at its deadline (DEADLINE_EXCEEDED, code 4).
import * as http2 from 'node:http2';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { ingestProto } = require('@heapwatch/proto');

const PATH = '/heapwatch.v1.IngestService/Ingest';
const PPROF_FIELD = 7; // IngestRequest.pprof_gzip
export const status = { OK: 0, CANCELLED: 1, DEADLINE_EXCEEDED: 4, INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, UNAVAILABLE: 14, INTERNAL: 13 };

function varint(n) {
  const out = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** The pprof_gzip field (tag, length, bytes) of a profile, encoded once and shared. */
export function profileField(pprofGzip) {
  return Buffer.concat([varint((PPROF_FIELD << 3) | 2), varint(pprofGzip.length), pprofGzip]);
}

const serialize = () => ingestProto().heapwatch.v1.IngestService.service.Ingest.requestSerialize;

/**
 * A request as the two chunks it is sent in: the frame header with the
 * request's other fields (without pprofGzip), and the shared profile field.
 */
export function encodeRequest(fields, field) {
  const small = serialize()({ ...fields, pprofGzip: Buffer.alloc(0) });
  const head = Buffer.allocUnsafe(5 + small.length);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(small.length + field.length, 1);
  small.copy(head, 5);
  return [head, field];
}

export class RawIngestClient {
  constructor(address) {
    // One connection carries the requests of many simulated agents at once
    // (a real agent has one in flight): past Node's default 10 MB of
    // session memory, the client itself resets every stream with
    // ENHANCE_YOUR_CALM, which the collector never sees.
    this.session = http2.connect(`http://${address}`, { maxSessionMemory: 4096 });
    this.session.on('error', () => {});
  }

  /** cb(err) with err = { code, details, metadata: { get(name): string[] } } or null. */
  ingest([head, field], deadlineMs, cb) {
    let done = false;
    const trailers = {};
    const finish = (code, details) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (code === status.OK) return cb(null);
      cb({ code, details, metadata: { get: (name) => (trailers[name] === undefined ? [] : [String(trailers[name])]) } });
    };
    let stream;
    try {
      stream = this.session.request({
        ':method': 'POST',
        ':path': PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${Math.max(1, Math.round(deadlineMs))}m`,
      });
    } catch (err) {
      // The session is closing or gone: as grpc-js, UNAVAILABLE.
      setImmediate(() => finish(status.UNAVAILABLE, String(err?.message ?? err)));
      return;
    }
    const timer = setTimeout(() => {
      finish(status.DEADLINE_EXCEEDED, 'Deadline exceeded');
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, deadlineMs);
    const onHeaders = (h) => {
      Object.assign(trailers, h);
      if (h['grpc-status'] !== undefined) finish(Number(h['grpc-status']), h['grpc-message'] ?? '');
    };
    stream.on('response', onHeaders);
    stream.on('trailers', onHeaders);
    stream.on('data', () => {});
    stream.on('error', (err) => finish(status.UNAVAILABLE, String(err?.message ?? err)));
    stream.on('close', () => finish(stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? status.UNAVAILABLE : status.INTERNAL, `stream closed (${stream.rstCode}) without a status`));
    stream.write(head);
    stream.end(field);
  }

  close() {
    this.session.close();
  }
}
