// Original file: heapwatch/v1/ingest.proto


export interface HolderCaptureRequest {
  'captureId'?: (string);
}

export interface HolderCaptureRequest__Output {
  'captureId': (string);
}
