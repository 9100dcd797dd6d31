// Original file: heapwatch/v1/ingest.proto

import type { AgentDirective as _heapwatch_v1_AgentDirective, AgentDirective__Output as _heapwatch_v1_AgentDirective__Output } from '../../heapwatch/v1/AgentDirective';

export interface IngestResponse {
  'stored'?: (boolean);
  'directive'?: (_heapwatch_v1_AgentDirective | null);
}

export interface IngestResponse__Output {
  'stored': (boolean);
  'directive': (_heapwatch_v1_AgentDirective__Output | null);
}
