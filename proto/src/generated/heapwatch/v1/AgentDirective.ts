// Original file: heapwatch/v1/ingest.proto

import type { HolderCaptureRequest as _heapwatch_v1_HolderCaptureRequest, HolderCaptureRequest__Output as _heapwatch_v1_HolderCaptureRequest__Output } from '../../heapwatch/v1/HolderCaptureRequest';

export interface AgentDirective {
  'precise'?: (boolean);
  'preciseForMs'?: (number);
  'reason'?: (string);
  'holders'?: (_heapwatch_v1_HolderCaptureRequest | null);
}

export interface AgentDirective__Output {
  'precise': (boolean);
  'preciseForMs': (number);
  'reason': (string);
  'holders': (_heapwatch_v1_HolderCaptureRequest__Output | null);
}
