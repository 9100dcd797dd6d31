/**
 * The heapwatch.v1 messages alone, for encoding and decoding without a gRPC
 * library: `@heapwatch/proto/messages`. It loads the same ingest.proto as
 * ./index.ts (so the wire format cannot drift from the contract), with
 * protobufjs only: the agent uses it to speak gRPC over node:http2 without
 * pulling @grpc/grpc-js into the host process.
 */
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

export type { IngestRequest } from './generated/heapwatch/v1/IngestRequest';
export type { IngestResponse, IngestResponse__Output } from './generated/heapwatch/v1/IngestResponse';
export type { Instance } from './generated/heapwatch/v1/Instance';
export type { ProcessMemory } from './generated/heapwatch/v1/ProcessMemory';
export type { AgentStats } from './generated/heapwatch/v1/AgentStats';

/** Same values as PROTO_ROOT/INGEST_PROTO in ./index.ts, kept here so this module never loads grpc-js. */
const PROTO_ROOT = path.join(__dirname, '..');
const INGEST_PROTO = 'heapwatch/v1/ingest.proto';

/** The fully-qualified method path of IngestService.Ingest, as it goes on the wire (`:path`). */
export const INGEST_METHOD_PATH = '/heapwatch.v1.IngestService/Ingest';

export interface IngestMessages {
  IngestRequest: protobuf.Type;
  IngestResponse: protobuf.Type;
}

let messages: IngestMessages | undefined;

/**
 * IngestRequest/IngestResponse, parsed once per process. Field names are
 * camelCase (`keepCase: false`), as with @grpc/proto-loader and the generated
 * types; int64/uint64 fields accept numbers when encoding.
 */
export function ingestMessages(): IngestMessages {
  if (!messages) {
    const root = new protobuf.Root();
    root.loadSync(path.join(PROTO_ROOT, INGEST_PROTO), { keepCase: false });
    root.resolveAll();
    messages = {
      IngestRequest: root.lookupType('heapwatch.v1.IngestRequest'),
      IngestResponse: root.lookupType('heapwatch.v1.IngestResponse'),
    };
  }
  return messages;
}
