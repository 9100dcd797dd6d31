// Original file: heapwatch/v1/ingest.proto


export interface IngestResponse {
  'stored'?: (boolean);
}

export interface IngestResponse__Output {
  'stored': (boolean);
}
