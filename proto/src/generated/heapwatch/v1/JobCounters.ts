// Original file: heapwatch/v1/ingest.proto

import type { JobTypeCounters as _heapwatch_v1_JobTypeCounters, JobTypeCounters__Output as _heapwatch_v1_JobTypeCounters__Output } from '../../heapwatch/v1/JobTypeCounters';
import type { QueueDepth as _heapwatch_v1_QueueDepth, QueueDepth__Output as _heapwatch_v1_QueueDepth__Output } from '../../heapwatch/v1/QueueDepth';
import type { Long } from '@grpc/proto-loader';

export interface JobCounters {
  'types'?: (_heapwatch_v1_JobTypeCounters)[];
  'droppedJobs'?: (number | string | Long);
  'queues'?: (_heapwatch_v1_QueueDepth)[];
}

export interface JobCounters__Output {
  'types': (_heapwatch_v1_JobTypeCounters__Output)[];
  'droppedJobs': (number);
  'queues': (_heapwatch_v1_QueueDepth__Output)[];
}
