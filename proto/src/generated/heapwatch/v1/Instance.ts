// Original file: heapwatch/v1/ingest.proto

import type { Long } from '@grpc/proto-loader';

export interface Instance {
  'hostname'?: (string);
  'pid'?: (number);
  'processStartTimeMs'?: (number | string | Long);
  'threadId'?: (number);
  'runtimeVersion'?: (string);
  'agentVersion'?: (string);
}

export interface Instance__Output {
  'hostname': (string);
  'pid': (number);
  'processStartTimeMs': (number);
  'threadId': (number);
  'runtimeVersion': (string);
  'agentVersion': (string);
}
