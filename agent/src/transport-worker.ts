/**
 * The gRPC client runs in this worker thread, not on the host's thread.
 * Why: grpc-js deliberately holds the Node process open while a call is in
 * flight (a ref'd deadline timer, a ref'd "callRefTimer" while the call waits
 * for a connection, a ref'd HTTP/2 session while it is active; grpc-node PRs
 * #1580, #2322). An agent must never keep its host alive, and a collector
 * that accepts TCP but never answers would hold a finished worker for the
 * whole RPC deadline. The main thread unref()s this Worker, so nothing here
 * can delay the host's exit. Protobuf encoding and HTTP/2 framing also stay
 * off the host's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { ingestProto, type IngestServiceClient } from '@heapwatch/proto';
import type { FromTransport, ToTransport, TransportSettings } from './transport-protocol';

const settings = (workerData as { settings: TransportSettings }).settings;

const credentials = settings.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
const Ctor = ingestProto().heapwatch.v1.IngestService;
const client: IngestServiceClient = new Ctor(settings.collector, credentials, {
  // grpc-js defaults back off up to 120 s between reconnects; a restarted
  // collector would then stay unseen long after it is back.
  'grpc.initial_reconnect_backoff_ms': settings.initialReconnectBackoffMs,
  'grpc.max_reconnect_backoff_ms': settings.maxReconnectBackoffMs,
  'grpc.primary_user_agent': 'heapwatch-agent',
});

function reply(msg: FromTransport): void {
  parentPort?.postMessage(msg);
}

parentPort?.on('message', (msg: ToTransport) => {
  if (msg.type === 'close') {
    client.close();
    parentPort?.close();
    return;
  }
  const metadata = new grpc.Metadata();
  if (settings.token !== undefined) metadata.set('authorization', `Bearer ${settings.token}`);
  try {
    client.ingest(msg.request, metadata, { deadline: Date.now() + msg.timeoutMs }, (err, res) => {
      if (err) reply({ type: 'result', id: msg.id, ok: false, code: err.code, details: err.details });
      else reply({ type: 'result', id: msg.id, ok: true, stored: res?.stored ?? false });
    });
  } catch (e) {
    reply({ type: 'result', id: msg.id, ok: false, code: grpc.status.INTERNAL, details: String(e) });
  }
});
