import type { IngestRequest } from '@heapwatch/proto';

/** Marks the transport thread so the register modules never start an agent inside it. */
export const TRANSPORT_WORKER_MARK = 'heapwatchTransportWorker';

export interface TransportSettings {
  collector: string;
  token: string | undefined;
  tls: boolean;
  /** grpc-js reconnect backoff bounds; kept below the agent's own cap so a restarted collector is found quickly. */
  initialReconnectBackoffMs: number;
  maxReconnectBackoffMs: number;
}

export type ToTransport =
  | { type: 'send'; id: number; request: IngestRequest; timeoutMs: number }
  | { type: 'close' };

export interface SendResult {
  ok: boolean;
  /** gRPC status code on failure (grpc.status). */
  code?: number;
  details?: string;
  stored?: boolean;
}

export type FromTransport = { type: 'result'; id: number } & SendResult;
