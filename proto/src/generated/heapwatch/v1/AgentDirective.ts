// Original file: heapwatch/v1/ingest.proto


export interface AgentDirective {
  'precise'?: (boolean);
  'preciseForMs'?: (number);
  'reason'?: (string);
}

export interface AgentDirective__Output {
  'precise': (boolean);
  'preciseForMs': (number);
  'reason': (string);
}
