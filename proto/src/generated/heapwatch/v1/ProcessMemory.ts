// Original file: heapwatch/v1/ingest.proto

import type { Long } from '@grpc/proto-loader';

export interface ProcessMemory {
  'rssBytes'?: (number | string | Long);
  'heapUsedBytes'?: (number | string | Long);
  'heapTotalBytes'?: (number | string | Long);
  'externalBytes'?: (number | string | Long);
  'arrayBuffersBytes'?: (number | string | Long);
  'heapSizeLimitBytes'?: (number | string | Long);
}

export interface ProcessMemory__Output {
  'rssBytes': (number);
  'heapUsedBytes': (number);
  'heapTotalBytes': (number);
  'externalBytes': (number);
  'arrayBuffersBytes': (number);
  'heapSizeLimitBytes': (number);
}
