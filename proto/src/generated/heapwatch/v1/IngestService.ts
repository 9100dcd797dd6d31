// Original file: heapwatch/v1/ingest.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { IngestRequest as _heapwatch_v1_IngestRequest, IngestRequest__Output as _heapwatch_v1_IngestRequest__Output } from '../../heapwatch/v1/IngestRequest';
import type { IngestResponse as _heapwatch_v1_IngestResponse, IngestResponse__Output as _heapwatch_v1_IngestResponse__Output } from '../../heapwatch/v1/IngestResponse';

export interface IngestServiceClient extends grpc.Client {
  Ingest(argument: _heapwatch_v1_IngestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_heapwatch_v1_IngestResponse__Output>): grpc.ClientUnaryCall;
  Ingest(argument: _heapwatch_v1_IngestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_heapwatch_v1_IngestResponse__Output>): grpc.ClientUnaryCall;
  Ingest(argument: _heapwatch_v1_IngestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_heapwatch_v1_IngestResponse__Output>): grpc.ClientUnaryCall;
  Ingest(argument: _heapwatch_v1_IngestRequest, callback: grpc.requestCallback<_heapwatch_v1_IngestResponse__Output>): grpc.ClientUnaryCall;
  ingest(argument: _heapwatch_v1_IngestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_heapwatch_v1_IngestResponse__Output>): grpc.ClientUnaryCall;
  ingest(argument: _heapwatch_v1_IngestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_heapwatch_v1_IngestResponse__Output>): grpc.ClientUnaryCall;
  ingest(argument: _heapwatch_v1_IngestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_heapwatch_v1_IngestResponse__Output>): grpc.ClientUnaryCall;
  ingest(argument: _heapwatch_v1_IngestRequest, callback: grpc.requestCallback<_heapwatch_v1_IngestResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface IngestServiceHandlers extends grpc.UntypedServiceImplementation {
  Ingest: grpc.handleUnaryCall<_heapwatch_v1_IngestRequest__Output, _heapwatch_v1_IngestResponse>;
  
}

export interface IngestServiceDefinition extends grpc.ServiceDefinition {
  Ingest: MethodDefinition<_heapwatch_v1_IngestRequest, _heapwatch_v1_IngestResponse, _heapwatch_v1_IngestRequest__Output, _heapwatch_v1_IngestResponse__Output>
}
