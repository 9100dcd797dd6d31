// Original file: heapwatch/v1/ingest.proto

import type { Long } from '@grpc/proto-loader';

export interface GcInfo {
  'majorGcs'?: (number | string | Long);
  'lastMajorGcEndMs'?: (number | string | Long);
  'afterMajorGc'?: (boolean);
}

export interface GcInfo__Output {
  'majorGcs': (number);
  'lastMajorGcEndMs': (number);
  'afterMajorGc': (boolean);
}
