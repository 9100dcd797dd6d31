import { status } from '@grpc/grpc-js';

/**
 * An ingest failure with the gRPC status the agent should see. The agent
 * drops a profile on INVALID_ARGUMENT (retrying cannot fix it) and retries on
 * RESOURCE_EXHAUSTED and UNAVAILABLE.
 */
export class IngestError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'IngestError';
  }
}

export const invalid = (message: string): IngestError => new IngestError(status.INVALID_ARGUMENT, message);
