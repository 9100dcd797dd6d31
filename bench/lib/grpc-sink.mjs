// A gRPC IngestService that acknowledges every profile without storing it,
// and answers with a directive of the caller's choosing: the collector's side
// of precise mode without a leak detector deciding it, so a benchmark can
// switch an agent's mode at a known moment. With `forwardTo`, it is a proxy
// instead: each request goes on to a real collector and the collector's
// answer comes back, with the chosen directive in place of the collector's.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const { ingestProto } = require('@heapwatch/proto');

/**
 * `directive(n, request)`: the directive for the n-th request (1-based), or
 * undefined to send none (what a collector that predates directives does).
 */
export async function startGrpcSink({ directive = () => undefined, forwardTo } = {}) {
  const stats = { requests: 0, bytes: 0, directives: 0, forwardFailures: 0 };
  const IngestService = ingestProto().heapwatch.v1.IngestService;
  const upstream = forwardTo ? new IngestService(forwardTo, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20 }) : undefined;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20 });
  server.addService(IngestService.service, {
    ingest(call, cb) {
      stats.requests++;
      stats.bytes += call.request.pprofGzip?.length ?? 0;
      const d = directive(stats.requests, call.request);
      if (d) stats.directives++;
      const answer = (stored) => cb(null, d ? { stored, directive: d } : { stored });
      if (!upstream) return answer(true);
      upstream.Ingest(call.request, { deadline: Date.now() + 30_000 }, (err, res) => {
        if (err) {
          stats.forwardFailures++;
          return cb({ code: err.code, details: err.details });
        }
        answer(res.stored);
      });
    },
  });
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise((resolve) => {
        upstream?.close();
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000).unref();
      }),
  };
}
