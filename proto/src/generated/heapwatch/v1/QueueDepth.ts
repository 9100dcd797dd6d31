// Original file: heapwatch/v1/ingest.proto

import type { Long } from '@grpc/proto-loader';

export interface QueueDepth {
  'queue'?: (string);
  'waiting'?: (number | string | Long);
  'readAtMs'?: (number | string | Long);
}

export interface QueueDepth__Output {
  'queue': (string);
  'waiting': (number);
  'readAtMs': (number);
}
