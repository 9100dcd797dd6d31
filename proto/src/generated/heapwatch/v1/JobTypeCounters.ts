// Original file: heapwatch/v1/ingest.proto

import type { Long } from '@grpc/proto-loader';

export interface JobTypeCounters {
  'queue'?: (string);
  'name'?: (string);
  'completed'?: (number | string | Long);
  'failed'?: (number | string | Long);
  'runTimeUs'?: (number | string | Long);
  'waitTimeMs'?: (number | string | Long);
  'waited'?: (number | string | Long);
}

export interface JobTypeCounters__Output {
  'queue': (string);
  'name': (string);
  'completed': (number);
  'failed': (number);
  'runTimeUs': (number);
  'waitTimeMs': (number);
  'waited': (number);
}
