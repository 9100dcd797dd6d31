/**
 * The heapwatch gRPC contract, loaded at run time from the .proto files that
 * ship beside this module. The TypeScript types under ./generated are produced
 * from the same files by `npm run generate -w proto`; a test fails when they
 * drift.
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as IngestProto } from './generated/ingest';
import type { ProtoGrpcType as HealthProto } from './generated/health';

export type { IngestRequest, IngestRequest__Output } from './generated/heapwatch/v1/IngestRequest';
export type { IngestResponse, IngestResponse__Output } from './generated/heapwatch/v1/IngestResponse';
export type { IngestServiceClient, IngestServiceHandlers } from './generated/heapwatch/v1/IngestService';
export type { Instance, Instance__Output } from './generated/heapwatch/v1/Instance';
export type { ProcessMemory, ProcessMemory__Output } from './generated/heapwatch/v1/ProcessMemory';
export type { AgentStats, AgentStats__Output } from './generated/heapwatch/v1/AgentStats';
export type { GcInfo, GcInfo__Output } from './generated/heapwatch/v1/GcInfo';
export type { AgentDirective, AgentDirective__Output } from './generated/heapwatch/v1/AgentDirective';
export type { Holder, Holder__Output } from './generated/heapwatch/v1/Holder';
export type { HealthClient, HealthHandlers } from './generated/grpc/health/v1/Health';
export type { HealthCheckResponse__Output } from './generated/grpc/health/v1/HealthCheckResponse';

/** Where the .proto sources live: the include root for both contracts. */
export const PROTO_ROOT = path.join(__dirname, '..');
export const INGEST_PROTO = 'heapwatch/v1/ingest.proto';
export const HEALTH_PROTO = 'grpc/health/v1/health.proto';

/** The options the generated types were made with; they must stay in step. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let ingest: IngestProto | undefined;
let health: HealthProto | undefined;

/** heapwatch.v1, loaded once per process. */
export function ingestProto(): IngestProto {
  ingest ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(INGEST_PROTO, LOADER_OPTIONS),
  ) as unknown as IngestProto;
  return ingest;
}

/** grpc.health.v1, loaded once per process. */
export function healthProto(): HealthProto {
  health ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(HEALTH_PROTO, LOADER_OPTIONS),
  ) as unknown as HealthProto;
  return health;
}

/** The fully-qualified gRPC service names, as health checks and load balancers name them. */
export const INGEST_SERVICE_NAME = 'heapwatch.v1.IngestService';
