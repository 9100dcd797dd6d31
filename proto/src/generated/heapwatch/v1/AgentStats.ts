// Original file: heapwatch/v1/ingest.proto

import type { Long } from '@grpc/proto-loader';

export interface AgentStats {
  'profilesSent'?: (number | string | Long);
  'profilesDropped'?: (number | string | Long);
  'samplingTimeUs'?: (number | string | Long);
  'queueLength'?: (number | string | Long);
  'queueBytes'?: (number | string | Long);
  'sendFailures'?: (number | string | Long);
  'forcedGcs'?: (number | string | Long);
  'forcedGcTimeUs'?: (number | string | Long);
  'preciseActivations'?: (number | string | Long);
  'preciseTimeMs'?: (number | string | Long);
  'preciseSwitchTimeUs'?: (number | string | Long);
}

export interface AgentStats__Output {
  'profilesSent': (number);
  'profilesDropped': (number);
  'samplingTimeUs': (number);
  'queueLength': (number);
  'queueBytes': (number);
  'sendFailures': (number);
  'forcedGcs': (number);
  'forcedGcTimeUs': (number);
  'preciseActivations': (number);
  'preciseTimeMs': (number);
  'preciseSwitchTimeUs': (number);
}
