// Original file: heapwatch/v1/ingest.proto

import type { Long } from '@grpc/proto-loader';

export interface Holder {
  'owner'?: (string);
  'ownerKind'?: (string);
  'container'?: (string);
  'items'?: (number | string | Long);
  'function'?: (string);
  'file'?: (string);
  'line'?: (number);
  'column'?: (number);
  'offHeapBytes'?: (number | string | Long);
  'heapBytes'?: (number | string | Long);
  'objects'?: (number | string | Long);
  'path'?: (string);
}

export interface Holder__Output {
  'owner': (string);
  'ownerKind': (string);
  'container': (string);
  'items': (number);
  'function': (string);
  'file': (string);
  'line': (number);
  'column': (number);
  'offHeapBytes': (number);
  'heapBytes': (number);
  'objects': (number);
  'path': (string);
}
