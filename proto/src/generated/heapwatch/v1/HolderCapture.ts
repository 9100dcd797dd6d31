// Original file: heapwatch/v1/ingest.proto

import type { Holder as _heapwatch_v1_Holder, Holder__Output as _heapwatch_v1_Holder__Output } from '../../heapwatch/v1/Holder';
import type { Long } from '@grpc/proto-loader';

export interface HolderCapture {
  'captureId'?: (string);
  'takenAtMs'?: (number | string | Long);
  'skipped'?: (string);
  'heapUsedBytes'?: (number | string | Long);
  'maxHeapBytes'?: (number | string | Long);
  'pauseMs'?: (number);
  'parseMs'?: (number);
  'leaves'?: (number | string | Long);
  'offHeapBytes'?: (number | string | Long);
  'unreachable'?: (number | string | Long);
  'holders'?: (_heapwatch_v1_Holder)[];
}

export interface HolderCapture__Output {
  'captureId': (string);
  'takenAtMs': (number);
  'skipped': (string);
  'heapUsedBytes': (number);
  'maxHeapBytes': (number);
  'pauseMs': (number);
  'parseMs': (number);
  'leaves': (number);
  'offHeapBytes': (number);
  'unreachable': (number);
  'holders': (_heapwatch_v1_Holder__Output)[];
}
