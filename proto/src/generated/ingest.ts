import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AgentDirective as _heapwatch_v1_AgentDirective, AgentDirective__Output as _heapwatch_v1_AgentDirective__Output } from './heapwatch/v1/AgentDirective';
import type { AgentStats as _heapwatch_v1_AgentStats, AgentStats__Output as _heapwatch_v1_AgentStats__Output } from './heapwatch/v1/AgentStats';
import type { GcInfo as _heapwatch_v1_GcInfo, GcInfo__Output as _heapwatch_v1_GcInfo__Output } from './heapwatch/v1/GcInfo';
import type { Holder as _heapwatch_v1_Holder, Holder__Output as _heapwatch_v1_Holder__Output } from './heapwatch/v1/Holder';
import type { HolderCapture as _heapwatch_v1_HolderCapture, HolderCapture__Output as _heapwatch_v1_HolderCapture__Output } from './heapwatch/v1/HolderCapture';
import type { HolderCaptureRequest as _heapwatch_v1_HolderCaptureRequest, HolderCaptureRequest__Output as _heapwatch_v1_HolderCaptureRequest__Output } from './heapwatch/v1/HolderCaptureRequest';
import type { IngestRequest as _heapwatch_v1_IngestRequest, IngestRequest__Output as _heapwatch_v1_IngestRequest__Output } from './heapwatch/v1/IngestRequest';
import type { IngestResponse as _heapwatch_v1_IngestResponse, IngestResponse__Output as _heapwatch_v1_IngestResponse__Output } from './heapwatch/v1/IngestResponse';
import type { IngestServiceClient as _heapwatch_v1_IngestServiceClient, IngestServiceDefinition as _heapwatch_v1_IngestServiceDefinition } from './heapwatch/v1/IngestService';
import type { Instance as _heapwatch_v1_Instance, Instance__Output as _heapwatch_v1_Instance__Output } from './heapwatch/v1/Instance';
import type { JobCounters as _heapwatch_v1_JobCounters, JobCounters__Output as _heapwatch_v1_JobCounters__Output } from './heapwatch/v1/JobCounters';
import type { JobTypeCounters as _heapwatch_v1_JobTypeCounters, JobTypeCounters__Output as _heapwatch_v1_JobTypeCounters__Output } from './heapwatch/v1/JobTypeCounters';
import type { ProcessMemory as _heapwatch_v1_ProcessMemory, ProcessMemory__Output as _heapwatch_v1_ProcessMemory__Output } from './heapwatch/v1/ProcessMemory';
import type { QueueDepth as _heapwatch_v1_QueueDepth, QueueDepth__Output as _heapwatch_v1_QueueDepth__Output } from './heapwatch/v1/QueueDepth';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  heapwatch: {
    v1: {
      AgentDirective: MessageTypeDefinition<_heapwatch_v1_AgentDirective, _heapwatch_v1_AgentDirective__Output>
      AgentStats: MessageTypeDefinition<_heapwatch_v1_AgentStats, _heapwatch_v1_AgentStats__Output>
      GcInfo: MessageTypeDefinition<_heapwatch_v1_GcInfo, _heapwatch_v1_GcInfo__Output>
      Holder: MessageTypeDefinition<_heapwatch_v1_Holder, _heapwatch_v1_Holder__Output>
      HolderCapture: MessageTypeDefinition<_heapwatch_v1_HolderCapture, _heapwatch_v1_HolderCapture__Output>
      HolderCaptureRequest: MessageTypeDefinition<_heapwatch_v1_HolderCaptureRequest, _heapwatch_v1_HolderCaptureRequest__Output>
      IngestRequest: MessageTypeDefinition<_heapwatch_v1_IngestRequest, _heapwatch_v1_IngestRequest__Output>
      IngestResponse: MessageTypeDefinition<_heapwatch_v1_IngestResponse, _heapwatch_v1_IngestResponse__Output>
      IngestService: SubtypeConstructor<typeof grpc.Client, _heapwatch_v1_IngestServiceClient> & { service: _heapwatch_v1_IngestServiceDefinition }
      Instance: MessageTypeDefinition<_heapwatch_v1_Instance, _heapwatch_v1_Instance__Output>
      JobCounters: MessageTypeDefinition<_heapwatch_v1_JobCounters, _heapwatch_v1_JobCounters__Output>
      JobTypeCounters: MessageTypeDefinition<_heapwatch_v1_JobTypeCounters, _heapwatch_v1_JobTypeCounters__Output>
      ProcessMemory: MessageTypeDefinition<_heapwatch_v1_ProcessMemory, _heapwatch_v1_ProcessMemory__Output>
      QueueDepth: MessageTypeDefinition<_heapwatch_v1_QueueDepth, _heapwatch_v1_QueueDepth__Output>
    }
  }
}

