// Original file: heapwatch/v1/ingest.proto

import type { Instance as _heapwatch_v1_Instance, Instance__Output as _heapwatch_v1_Instance__Output } from '../../heapwatch/v1/Instance';
import type { ProcessMemory as _heapwatch_v1_ProcessMemory, ProcessMemory__Output as _heapwatch_v1_ProcessMemory__Output } from '../../heapwatch/v1/ProcessMemory';
import type { AgentStats as _heapwatch_v1_AgentStats, AgentStats__Output as _heapwatch_v1_AgentStats__Output } from '../../heapwatch/v1/AgentStats';
import type { GcInfo as _heapwatch_v1_GcInfo, GcInfo__Output as _heapwatch_v1_GcInfo__Output } from '../../heapwatch/v1/GcInfo';
import type { JobCounters as _heapwatch_v1_JobCounters, JobCounters__Output as _heapwatch_v1_JobCounters__Output } from '../../heapwatch/v1/JobCounters';
import type { HolderCapture as _heapwatch_v1_HolderCapture, HolderCapture__Output as _heapwatch_v1_HolderCapture__Output } from '../../heapwatch/v1/HolderCapture';
import type { Long } from '@grpc/proto-loader';

export interface IngestRequest {
  'profileId'?: (string);
  'service'?: (string);
  'labels'?: ({[key: string]: string});
  'instance'?: (_heapwatch_v1_Instance | null);
  'startTimeMs'?: (number | string | Long);
  'endTimeMs'?: (number | string | Long);
  'pprofGzip'?: (Buffer | Uint8Array | string);
  'memory'?: (_heapwatch_v1_ProcessMemory | null);
  'agent'?: (_heapwatch_v1_AgentStats | null);
  'gc'?: (_heapwatch_v1_GcInfo | null);
  'inliningDisabled'?: (boolean);
  'jobs'?: (_heapwatch_v1_JobCounters | null);
  'holders'?: (_heapwatch_v1_HolderCapture | null);
}

export interface IngestRequest__Output {
  'profileId': (string);
  'service': (string);
  'labels': ({[key: string]: string});
  'instance': (_heapwatch_v1_Instance__Output | null);
  'startTimeMs': (number);
  'endTimeMs': (number);
  'pprofGzip': (Buffer);
  'memory': (_heapwatch_v1_ProcessMemory__Output | null);
  'agent': (_heapwatch_v1_AgentStats__Output | null);
  'gc': (_heapwatch_v1_GcInfo__Output | null);
  'inliningDisabled': (boolean);
  'jobs': (_heapwatch_v1_JobCounters__Output | null);
  'holders': (_heapwatch_v1_HolderCapture__Output | null);
}
